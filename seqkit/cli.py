"""The `seqkit` command line: parse options, call the library, turn errors into one line and an exit code."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand

from seqkit import __version__
from seqkit import config as config_lib
from seqkit.errors import ConfigError, DataError, ModelDirError, SeqkitError


class _Argument(TyperArgument):
    """A positional argument shown as POSIX tools show them: its metavar (`MODEL_DIR`, `[FILE]...`) in the
    usage line and in its help row, with no type label such as <path> or <list[Path]>."""

    def display_type_rich(self, ctx) -> str | None:
        return None

    def _rich_display_name(self) -> str:
        return self.display_name_raw

    def _usage_display_name(self) -> str:
        return self.display_name_raw


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
    help="Recurrent sequence models from the shell: train, translate, evaluate.",
)


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"seqkit {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Recurrent sequence models from the shell: train, translate, evaluate."""


def _builtin(section: str, key: str) -> object:
    return getattr(getattr(config_lib.Config(), section), key)  # config.py: the one place of defaults


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
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", metavar="FILE", help="TOML config file.")
]
OverridesOption = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="SECTION.KEY=VALUE", help="Override one config key (repeatable)."),
]
DeviceOption = Annotated[
    str,
    typer.Option(metavar="DEVICE", help="auto (CUDA when torch sees a GPU, else the CPU), cpu or cuda."),
]


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
        except OSError as e:
            if e.filename is None:  # stdout's own: what is still buffered would fail again at exit
                _silence_stdout()
            console.error(outputs.describe(e, resumes=command.__name__ == "train"))
            raise typer.Exit(1) from None

    return wrapper


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit has nowhere to fail (what the
    Python docs advise for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


@app.command(cls=_Command)
@user_errors
def train(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="DIR", help="Model directory; an existing run in it is continued."
        ),
    ] = None,
    config: ConfigOption = None,
    overrides: OverridesOption = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR", help="Continue this run's latest checkpoint (its config, then any changes)."
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Start a new run in a directory that holds an earlier seqkit run, replacing that run's "
            "files (seqkit deletes only files it wrote).",
        ),
    ] = False,
    max_steps: Annotated[
        int | None,
        typer.Option(
            metavar="N", help=f"Shorthand for --set train.max_steps=N. {config_default('train', 'max_steps')}"
        ),
    ] = None,
    max_epochs: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help=f"Shorthand for --set train.max_epochs=N. {config_default('train', 'max_epochs')}",
        ),
    ] = None,
    max_minutes: Annotated[
        float | None,
        typer.Option(
            metavar="M",
            help=f"Shorthand for --set train.max_minutes=M. {config_default('train', 'max_minutes')}",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            metavar="N", help=f"Shorthand for --set train.seed=N. {config_default('train', 'seed')}"
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            metavar="DEVICE",
            help="auto, cpu or cuda: --set train.device=D. " + config_default("train", "device"),
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only errors and the closing line.")
    ] = False,
    precision: Annotated[
        str | None,
        typer.Option(
            metavar="PRECISION",
            help="fp32, bf16 or fp16 autocast: --set train.precision=P. "
            + config_default("train", "precision"),
        ),
    ] = None,
) -> None:
    """Train an encoder-decoder with attention on a parallel corpus, or a language model (model.type = "lm").

    Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and exits (130 / 143); running the
    same command again, or `--resume DIR`, continues exactly where it stopped."""
    from seqkit import console, model_types, modeldir, outputs
    from seqkit.runtime import distributed
    from seqkit.training import checkpoint
    from seqkit.training.loop import TrainingInterrupted

    if output is not None and resume is not None and output != resume:
        raise ConfigError(f"--output {output} and --resume {resume} differ; give one directory")
    if overwrite and resume is not None:
        raise ConfigError("--overwrite starts a new run and --resume continues one; give one of them")
    run_dir = resume or output
    if run_dir is None:
        raise ConfigError(
            "--output is required: the model directory to create (or --resume DIR to continue one)"
        )
    # before anything is read or written: never a directory of somebody else's (a 0.1 run: --resume)
    outputs.check_claimable(run_dir, "--resume" if resume else "--output", adopt=resume is not None)
    resuming = not overwrite and checkpoint.latest(run_dir) is not None
    if resume is not None and not resuming:
        raise ModelDirError(f"{resume}: no checkpoint to resume; start a run with --output {resume}")
    stored = modeldir.load_config(run_dir) if resuming else None
    shorthands = {
        "max_steps": max_steps,
        "max_epochs": max_epochs,
        "max_minutes": max_minutes,
        "seed": seed,
        "device": device,
        "precision": precision,
    }
    extra = [f"train.{key}={value}" for key, value in shorthands.items() if value is not None]
    cfg = config_lib.load(config, [*(overrides or []), *extra], base=stored)
    speaks = os.environ.get("RANK", "0") == "0"  # under torchrun, the first process reports for all
    if stored is not None:
        changes = config_lib.resume_changes(stored, cfg, run_dir)
        if speaks and not quiet:
            console.stderr.print(
                f"resuming {run_dir}; config changes: {'; '.join(changes) if changes else 'none'}",
                highlight=False,
            )
    together = False  # whether every process ends the same way (see distributed.leave)
    try:
        model_types.of(cfg).train(cfg, run_dir, console.TrainingProgress(quiet), resuming, overwrite)
        together = True
    except TrainingInterrupted as e:
        together = True
        if speaks:
            console.stderr.print(
                f"stopped by {e} at step {e.step:,}; checkpoint saved. Continue with: seqkit train --resume {run_dir}",
                highlight=False,
            )
        raise typer.Exit(128 + e.signal_number) from None
    finally:
        distributed.leave(together)


@app.command("config", cls=_Command)
@user_errors
def show_config(
    config: ConfigOption = None,
    overrides: OverridesOption = None,
) -> None:
    """Print the resolved configuration as TOML: every key, what it does and its default. With no file,
    seqkit's defaults: a starting point for your own config file."""
    sys.stdout.write(config_lib.commented_toml(config_lib.load(config, overrides or [])))


def _input_lines(inputs: list[Path] | None, column: int | None = None):
    """Lines of every input file in turn, or of stdin; with `column`, that column of tab-separated lines."""
    from seqkit.data.formats import iter_column
    from seqkit.data.text import iter_lines

    if column is not None and column < 1:
        raise ConfigError(f"--column {column}: columns count from 1")
    for path in inputs or [Path("-")]:
        yield from (iter_column(path, column) if column else iter_lines(path))


def _typed(inputs: list[Path] | None) -> bool:
    """Whether a person types the input (stdin on a terminal): then each line is answered at once."""
    return not inputs and sys.stdin.isatty()


def _write_lines(lines, output: Path | None) -> None:
    """To stdout line by line (flushed, for pipes), or to `output` through a temp file and a rename."""
    if output is None:
        for line in lines:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        return
    from seqkit import outputs

    text = "".join(line + "\n" for line in lines)  # everything first: a failure leaves no partial file
    try:
        outputs.write_bytes(output, text.encode("utf-8"))  # a device or FIFO is written through
    except OSError as e:
        raise DataError(f"--output {outputs.describe(OSError(e.errno, e.strerror, str(output)))}") from None


@app.command(cls=_Command)
@user_errors
def translate(
    model_dir: ModelDirArgument,
    inputs: Annotated[
        list[Path] | None, typer.Argument(metavar="[FILE]...", help="Input files (.gz too); stdin when none.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write here instead of stdout.")
    ] = None,
    beam_size: Annotated[
        int | None,
        typer.Option(metavar="N", help="Beam size; 1 = greedy. " + model_default("decode", "beam_size")),
    ] = None,
    length_penalty: Annotated[
        float | None,
        typer.Option(
            metavar="ALPHA",
            help="GNMT length penalty; 0 = none. " + model_default("decode", "length_penalty"),
        ),
    ] = None,
    nbest: Annotated[
        int,
        typer.Option(
            metavar="N", help="Write the N best hypotheses with scores, one JSON object per input line."
        ),
    ] = 0,
    batch_size: Annotated[
        int | None,
        typer.Option(metavar="N", help="Sentences per batch. " + model_default("decode", "batch_size")),
    ] = None,
    max_length_ratio: Annotated[
        float | None,
        typer.Option(
            metavar="RATIO",
            help="Output limit: ratio x source length + offset. "
            + model_default("decode", "max_length_ratio"),
        ),
    ] = None,
    max_input_pieces: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="A longer input line is an error naming it (split such lines first). "
            + model_default("decode", "max_input_pieces"),
        ),
    ] = None,
    device: DeviceOption = "auto",
    precision: Annotated[
        str, typer.Option(metavar="PRECISION", help="fp32, or bf16 / fp16 autocast of the larger products.")
    ] = "fp32",
    quantize: Annotated[
        bool,
        typer.Option(
            help="int8 linear and GRU/LSTM layers (CPU only): faster, BLEU cost in bench/README.md."
        ),
    ] = False,
    column: Annotated[
        int | None,
        typer.Option(metavar="N", help="Translate column N (from 1) of tab-separated input lines."),
    ] = None,
    attention: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Also write, for input line N, DIR/line-00000N.png (attention heatmap of the best output) "
            "and DIR/line-00000N.json (its pieces and weights); N counts lines over all inputs, from 1.",
        ),
    ] = None,
) -> None:
    """Translate text, one output line per input line, in order. Under torchrun, the processes share the
    lines of the input files and write one --output in input order."""
    from seqkit import api
    from seqkit.decoding import sharded
    from seqkit.runtime import devices, distributed

    target = devices.resolve(device, distributed.local_rank())
    sharing = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if sharing and (output is None or not inputs or attention is not None):
        raise ConfigError(
            "under torchrun, translate shares out the lines of input files into one --output FILE: give "
            "both (and no --attention)"
        )
    if quantize and target.type != "cpu":
        raise ConfigError(
            "--quantize: int8 decoding runs on the CPU; add --device cpu or leave out --quantize"
        )
    model = api.load(model_dir, device, precision, quantize)
    from seqkit.model_types import require_task

    require_task(model.config, "translate", model_dir)
    decode = model.decode_settings(
        "command-line options",
        beam_size=beam_size,
        length_penalty=length_penalty,
        batch_size=batch_size,
        max_length_ratio=max_length_ratio,
        max_input_pieces=max_input_pieces,
    )
    if nbest < 0 or nbest > decode.beam_size:
        raise ConfigError(
            f"--nbest {nbest}: must be between 1 and the beam size ({decode.beam_size}); raise --beam-size"
        )
    lines = _input_lines(inputs, column)
    chunk_lines = 1 if _typed(inputs) else None
    world = distributed.join(target) if sharing else distributed.SINGLE
    if sharing:
        torch_threads(distributed.threads_per_process())
        lines = sharded.shard(lines, world)
    translated = model.translate_stream(lines, decode, max(1, nbest), attention is not None, chunk_lines)
    results: Iterator[str]
    if attention:
        from seqkit.viz import reports

        with_files = reports.with_attention_files(attention, (list(r.nbest) for r in translated))
        results = (nbest_json(o[:nbest]) if nbest else o[0].text if o else "" for o in with_files)
    else:
        results = (nbest_json(r.nbest) if nbest else r.text for r in translated)
    if not sharing:
        _write_lines(results, output)
        return
    assert output is not None
    together = False
    try:
        sharded.write_part(output, world, results)
        world.barrier()  # every part complete
        if world.is_main:
            sharded.merge(output, world)
        together = True
    finally:
        distributed.leave(together)


def torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


def nbest_json(options) -> str:
    """One input line's n-best list: {"hypotheses": [{"text", "score", "log_prob"}, ...]} best first."""
    import json

    return json.dumps(
        {"hypotheses": [{"text": o.text, "score": o.score, "log_prob": o.log_prob} for o in options]},
        ensure_ascii=False,
    )


@app.command(cls=_Command)
@user_errors
def generate(
    model_dir: Annotated[
        Path, typer.Argument(metavar="MODEL_DIR", help='Language model directory (model.type = "lm").')
    ],
    prompts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PROMPT]...", help="Prompts; one per stdin line when none (an empty one starts afresh)."
        ),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="New tokens per sample at most. " + model_default("generate", "max_tokens")
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(metavar="T", help="0 = greedy. " + model_default("generate", "temperature")),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            metavar="K",
            help="Sample from the k likeliest tokens; 0 = all. " + model_default("generate", "top_k"),
        ),
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option(
            metavar="P", help="Nucleus: the smallest set reaching p. " + model_default("generate", "top_p")
        ),
    ] = None,
    num_samples: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="Output lines per prompt. " + model_default("generate", "num_samples")
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(metavar="N", help="Same seed, same output. " + model_default("generate", "seed")),
    ] = None,
    device: DeviceOption = "auto",
) -> None:
    """Sample text from a language model: each prompt and its continuation on one line."""
    from seqkit import api
    from seqkit.model_types import require_task

    model = api.load(model_dir, device)
    require_task(model.config, "generate", model_dir)
    settings = model.generate_settings(
        "command-line options",
        max_tokens=max_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        num_samples=num_samples,
        seed=seed,
    )
    if prompts:
        lines = iter(prompts)
    elif sys.stdin.isatty():
        lines = iter([""])  # nothing piped in: one text from nothing
    else:
        lines = _input_lines(None)
    if sys.stdout.isatty():  # a person is watching: show the text as it comes

        def show(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()

        for _ in model.generate_stream(lines, settings, on_text=show):
            sys.stdout.write("\n")
    else:
        _write_lines(model.generate_stream(lines, settings), None)


@app.command(cls=_Command)
@user_errors
def evaluate(
    hypotheses: Annotated[
        list[Path] | None, typer.Option("--hyp", "-i", metavar="FILE", help="System output (repeatable).")
    ] = None,
    references: Annotated[
        list[Path] | None, typer.Option("--ref", "-r", metavar="FILE", help="Reference file (repeatable).")
    ] = None,
    names: Annotated[
        list[str] | None, typer.Option("--name", metavar="NAME", help="A label for each --hyp, in order.")
    ] = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            "-m",
            metavar="METRIC...",
            help="bleu, chrf, ter: `-m bleu chrf` or `-m bleu,chrf`. [default: all three]",
        ),
    ] = None,
    more_metrics: Annotated[list[str] | None, typer.Argument(hidden=True, metavar="[METRIC]...")] = None,
    column: Annotated[
        int | None,
        typer.Option(metavar="N", help="The references are column N (from 1) of tab-separated files."),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model",
            metavar="DIR",
            help="Perplexity of --ref under this model (given --source for seq2seq).",
        ),
    ] = None,
    source: Annotated[
        Path | None, typer.Option("--source", "-s", metavar="FILE", help="Source file, for perplexity.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout instead of a table.")] = False,
    device: DeviceOption = "auto",
) -> None:
    """Score hypotheses against references (BLEU, chrF, TER), and/or a model's perplexity on --ref.
    Without -i or --model, the hypotheses are read from stdin: `seqkit translate M < src | seqkit evaluate
    -r ref`."""
    from seqkit import console, model_types
    from seqkit.scoring.evaluation import score_systems

    if more_metrics and not metrics:
        raise DataError(
            f"unexpected argument {more_metrics[0]!r}: give system output with -i FILE (or on stdin)"
        )
    if not references:
        raise DataError("--ref is required: give the reference file(s) with -r")
    if column is not None and column < 1:
        raise ConfigError(f"--column {column}: columns count from 1")
    if not hypotheses and model_dir is None:
        if sys.stdin.isatty():
            raise DataError(
                "nothing to evaluate: give system output with -i or on stdin, or a model with --model"
            )
        hypotheses = [Path("-")]
    chosen = [*(metrics or ["bleu,chrf,ter"]), *(more_metrics or [])]
    rows = score_systems(hypotheses, references, names or [], chosen, column) if hypotheses else []
    perplexity = None
    if model_dir is not None:
        from seqkit.runtime import devices

        perplexity = model_types.perplexity(model_dir, source, references[0], devices.resolve(device))
    console.print_evaluation(rows, perplexity, as_json)


@app.command(cls=_Command)
@user_errors
def average(
    model_dir: Annotated[
        Path, typer.Argument(metavar="MODEL_DIR", help="Model directory whose checkpoints to average.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="DIR", help="New model directory to write.")
    ],
    last: Annotated[int, typer.Option(metavar="N", help="How many of the newest checkpoints.")] = 2,
) -> None:
    """Average the weights of a run's newest checkpoints into a new model directory."""
    from seqkit import console
    from seqkit.training import checkpoint

    if last < 1:
        raise ConfigError(f"--last {last}: must be at least 1")
    names = checkpoint.average(model_dir, output, last)
    console.stderr.print(f"averaged {', '.join(names)} into {output}", highlight=False)


@app.command(cls=_Command)
@user_errors
def plot(
    model_dirs: Annotated[
        list[Path],
        typer.Argument(metavar="MODEL_DIR...", help="Model directories; several are drawn together."),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write a PNG here.")
    ] = None,
    terminal: Annotated[
        bool | None,
        typer.Option(help="Draw in text on stdout. [default: when stdout is a terminal and no --output]"),
    ] = None,
    x: Annotated[
        str, typer.Option(metavar="AXIS", help="The x axis: step, or time (minutes of training).")
    ] = "step",
) -> None:
    """Training curves from the training log: perplexity, token accuracy, dev BLEU/chrF, gradient norm."""
    from seqkit import console
    from seqkit.viz import curves

    if x not in ("step", "time"):
        raise ConfigError(f"--x {x}: must be step or time")
    if terminal is None:
        terminal = output is None and sys.stdout.isatty()
    if output is None and not terminal:
        reason = "--no-terminal" if sys.stdout.isatty() else "stdout is not a terminal"
        raise ConfigError(
            f"{reason}: nothing to draw on; give --output FILE.png, or --terminal for text charts"
        )
    runs = [curves.read_curves(model_dir) for model_dir in model_dirs]
    if output is not None:
        from seqkit.viz import reports

        reports.write_curves(output, runs, x)
        console.stderr.print(f"wrote {output}", highlight=False)
    if terminal:
        from seqkit.viz import textplots

        sys.stdout.write(textplots.curves_text(runs, x, colour=sys.stdout.isatty()) + "\n")


@app.command(cls=_Command)
@user_errors
def inspect(
    model_dir: ModelDirArgument,
    text: Annotated[str, typer.Option(metavar="TEXT", help="The sentence to translate, or an LM's prompt.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="DIR", help="Directory for the pictures and trace.json.")
    ] = Path("inspect"),
    beam_size: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Beam size for the translation; 1 = greedy. " + model_default("decode", "beam_size"),
        ),
    ] = None,
) -> None:
    """Hidden states, gates and attention of one sentence: PNGs in --output, the attention as text on stdout."""
    from seqkit import console, model_types
    from seqkit.viz import reports, textplots

    if not text.strip() and text != "":
        raise ConfigError("--text: only whitespace; give a sentence")
    cfg, tokenizer, model = model_types.load(model_dir)
    model_type = model_types.of(cfg)
    if beam_size is not None and model_type.task != "translate":
        raise ConfigError(f"--beam-size: a {model_type.title} reads the prompt, nothing is searched; drop it")
    cfg = config_lib.with_overrides(cfg, {"decode": {"beam_size": beam_size}}, "command-line options")
    inspection = model_type.inspect(model, tokenizer, cfg, text)
    reports.prepare_directory(output, "--output")
    written = reports.write_inspection(output, inspection)
    if inspection.attention is not None:
        sys.stdout.write(f"output: {inspection.output}\n{textplots.attention_text(inspection.attention)}\n")
    console.stderr.print(f"wrote {', '.join(str(path) for path in written)}", highlight=False)


@app.command(cls=_Command)
@user_errors
def serve(
    model_dir: ModelDirArgument,
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Address to bind (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option(metavar="N", help="Lines decoded together at most.")] = 64,
    max_lines: Annotated[int, typer.Option(metavar="N", help="Lines per request at most (413).")] = 256,
    max_chars: Annotated[int, typer.Option(metavar="N", help="Characters per line at most (413).")] = 2000,
    max_queue: Annotated[int, typer.Option(metavar="N", help="Requests waiting at most (503).")] = 64,
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Longest wait for an answer (504).")
    ] = 60.0,
    device: DeviceOption = "auto",
) -> None:
    """Serve a model over HTTP with JSON: POST /translate, POST /generate, GET /health, GET /info (docs at
    /docs). SIGTERM finishes the queued requests, then exits 0."""
    from seqkit import api, server

    for name, value in (("--max-batch", max_batch), ("--max-lines", max_lines), ("--max-chars", max_chars),
                        ("--max-queue", max_queue)):  # fmt: skip
        if value < 1:
            raise ConfigError(f"{name} {value}: must be at least 1")
    if not 0 < timeout < float("inf"):
        raise ConfigError(f"--timeout {timeout}: must be a positive number of seconds")
    if not 0 <= port < 65536:
        raise ConfigError(f"--port {port}: must be between 0 and 65535")
    model = api.load(model_dir, device)
    server.serve(model, host, port, server.Limits(max_batch, max_lines, max_chars, max_queue, timeout))


@app.command(cls=_Command)
@user_errors
def info(
    model_dir: ModelDirArgument,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout instead of tables.")] = False,
    vocab: Annotated[
        bool,
        typer.Option(
            "--vocab", help="The whole vocabulary instead: id, piece, and its count in the training data."
        ),
    ] = False,
) -> None:
    """Layers with output shapes and parameter counts, vocabulary, training summary and file sizes."""
    from seqkit import console
    from seqkit.viz import summary

    if vocab:
        console.print_vocabulary(summary.vocabulary(model_dir), as_json)
        return
    console.print_info(summary.summarize(model_dir), as_json)


def main() -> None:
    from seqkit.runtime import allocator

    allocator.configure()  # before torch builds its first product: it reads these settings once
    app()
