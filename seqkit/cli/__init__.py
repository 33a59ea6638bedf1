"""The `seqkit` command line: parse options, call the library, turn errors into one line and an exit code.

This module holds the app, the options several commands share and the one way out of every command
(`user_errors`); the commands are in the modules beside it, one per kind of work: `training` (train,
config), `decoding` (translate, generate), `shortlisting` (shortlist), `predicting` (predict), `scoring`
(evaluate, average), `looking` (plot, inspect, info), `serving` (serve, export). Importing them
registers them with the app."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperArgument, TyperCommand

from seqkit import __version__, errors
from seqkit import config as config_lib
from seqkit.errors import SeqkitError

if TYPE_CHECKING:
    from seqkit.api import Model


class _Argument(TyperArgument):
    """A positional argument shown as POSIX tools show them: its metavar (`MODEL_DIR`, `[FILE]...`) in the
    usage line and in its help row, with no type label such as <path> or <list[Path]>."""

    def display_type_rich(self, ctx) -> str | None:
        return None

    def _rich_display_name(self) -> str:
        return self.display_name_raw

    def _usage_display_name(self) -> str:
        return self.display_name_raw

    def get_usage_pieces(self, ctx) -> list[str]:
        # a hidden argument takes what a list option leaves (`-m bleu chrf`): it is no argument of its own
        return [] if self.hidden else super().get_usage_pieces(ctx)


class _Command(TyperCommand):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _Argument  # the same parameter, another way of showing it


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Recurrent sequence models from the shell: translation, language models, classification, forecasting.",
)


def _show_version(value: bool) -> None:
    if value:
        try:  # flushed here: at the interpreter's exit a full device was exit 120 and a bare warning
            sys.stdout.write(f"seqkit {__version__}\n")
            sys.stdout.flush()
        except BrokenPipeError:  # a reader gone, as every command ends then (click's own would be exit 1)
            _silence_stdout()
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Recurrent sequence models from the shell: translation, language models, classification, forecasting."""


def _builtin(section: str, key: str) -> object:
    return getattr(getattr(config_lib.Config(), section), key)  # seqkit/config: the one place of defaults


def model_default(section: str, key: str) -> str:
    """Help text for an option whose default is the model's own config: names the key, and seqkit's
    default for it, which applies unless the model was trained with another value."""
    return f"[default: the model's {section}.{key}, {_builtin(section, key)} unless trained otherwise]"


def config_default(section: str, key: str) -> str:
    """Help text for a shorthand of a config key: the config file's value, else seqkit's default."""
    return f"[default: the config's {section}.{key}, else {_builtin(section, key)}]"


ModelDirArgument = Annotated[
    Path, typer.Argument(metavar="MODEL_DIR", help="Model directory written by `seqkit train`.")
]
ModelOrExportArgument = Annotated[
    Path,
    typer.Argument(
        metavar="MODEL_DIR", help="Model directory written by `seqkit train` (or `seqkit export`)."
    ),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", metavar="FILE", help="TOML config file.")
]
OverridesOption = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="SECTION.KEY=VALUE", help="Override one config key (repeatable)."),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        metavar="DEVICE",
        help="auto (CUDA when torch sees a GPU, else the CPU), cpu, cuda or cuda:N.",
    ),
]
QuantizeOption = Annotated[
    bool,
    typer.Option(
        help="int8 linear and GRU/LSTM layers (CPU only): faster; what it costs in bench/README.md."
    ),
]


def output_file(text: str | Path) -> Path:
    """An --output FILE as typed. Path() drops a trailing / (and /.), so `-o results/` replaced a file
    named results where the shell says "Is a directory"; and `-` made a file named -."""
    if isinstance(text, Path):  # (a default)
        return text
    if text == "-":
        raise typer.BadParameter("'-' is not a file name here; leave out the option to write to stdout")
    if text.endswith(("/", "/.")):
        raise typer.BadParameter(f"{text!r} names a directory; give a file name")
    return Path(text)


def user_errors(command):
    """Every command's way out: SeqkitError and OSError (a permission, a full disk, a read-only file
    system, a directory where a file was expected, stdout on a full device) as one `error: ...` line on
    stderr and exit 1; Ctrl-C as 130; a closed pipe (`seqkit ... | head`) as silence and exit 0. Stdout
    is flushed here, inside, so that its errors meet these handlers rather than the interpreter's exit."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from seqkit import console, outputs

        try:
            result = command(*args, **kwargs)
            sys.stdout.flush()
            return result
        except SeqkitError as e:
            console.error(str(e))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.error("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:  # e.g. `seqkit translate ... | head`: the reader has all it wants
            _silence_stdout()
            raise typer.Exit(0) from None
        except ModuleNotFoundError as e:
            # a package a deployment left out (seqkit installed without its dependencies to run an export,
            # README "Without torch"): named in one line, with the install; seqkit's own modules stay bugs
            package = (e.name or "").split(".")[0]
            if not package or package == "seqkit":
                raise
            console.error(_missing_package(package, command.__name__))
            raise typer.Exit(1) from None
        except (MemoryError, RuntimeError) as e:
            if not errors.out_of_memory(e):
                raise
            fix = MEMORY_FIXES.get(command.__name__, "a smaller model or batch")
            console.error(errors.memory_message(e, fix))
            raise typer.Exit(1) from None
        except OSError as e:
            if e.filename is None:  # stdout's own: what is still buffered would fail again at exit
                _silence_stdout()
            console.error(outputs.describe(e, resumes=command.__name__ == "train"))
            raise typer.Exit(1) from None

    return wrapper


# what makes a failed allocation smaller, by command
MEMORY_FIXES = {
    "train": errors.TRAINING_MEMORY_FIX,
    "translate": "a smaller --batch-size or --beam-size",
    "generate": "a smaller --num-samples or --max-tokens",
    "evaluate": "shorter lines, or a smaller decode.batch_size in the model's config.toml",
    "predict": "a smaller --batch-size",
}


# the commands an export runs (without torch): for the others, torch is the only way
EXPORT_RUNS = ("translate", "generate", "serve", "info")


def _missing_package(package: str, command: str) -> str:
    """The one line for a command that needs `package`, which is not installed."""
    if package == "torch" and command in EXPORT_RUNS:
        return (
            f"{command} needs torch here, which is not installed: a trained model directory runs with torch "
            '(pip install torch); without it, run an export (`seqkit export`, README "Without torch")'
        )
    return f"{command} needs the Python package {package}, which is not installed: pip install {package}"


def _open_closed_standard_streams() -> None:
    """A process started with stdin, stdout or stderr closed (`<&-`, `>&-`: a daemon, a cron job) has
    None for it, and the first use was a traceback, after the work (exit 1 for a written model). Such a
    stream reads nothing and writes nowhere, as /dev/null."""
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))  # noqa: SIM115 (for the process)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit has nowhere to fail (what the
    Python docs advise for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main() -> None:
    from seqkit.runtime import allocator

    _open_closed_standard_streams()
    if hasattr(sys.stdout, "reconfigure"):  # results are UTF-8, as in -o files, whatever the locale says
        # (its error handler kept: surrogateescape writes a path of non-UTF-8 bytes back as it was given)
        sys.stdout.reconfigure(encoding="utf-8", errors=sys.stdout.errors)
    allocator.configure()  # before torch builds its first product: it reads these settings once
    try:
        app()
    except BrokenPipeError:  # --help or --version to a reader gone (every command's own: user_errors)
        _silence_stdout()
        sys.exit(0)
    except OSError as e:  # --help or --version onto a full device: one line, as the commands say it
        from seqkit import console, outputs

        _silence_stdout()
        console.error(outputs.describe(e))
        sys.exit(1)


def load_model(model_dir: Path, device: str, precision: str = "fp32", quantize: bool = False) -> Model:
    """`seqkit.load` for a command: its errors name the options (`--device cuda:9`)."""
    from seqkit import loading

    return loading.load_named(model_dir, device, precision, quantize, ("--device", "--precision"))


# the commands, registered with `app` as they are imported (after it and what they share exist), in the
# order `seqkit -h` lists them
# isort: off
from seqkit.cli import training  # noqa: E402, F401
from seqkit.cli import decoding  # noqa: E402, F401
from seqkit.cli import shortlisting  # noqa: E402, F401
from seqkit.cli import predicting  # noqa: E402, F401
from seqkit.cli import scoring  # noqa: E402, F401
from seqkit.cli import looking  # noqa: E402, F401
from seqkit.cli import serving  # noqa: E402, F401
# isort: on
