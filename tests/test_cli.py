"""The command line itself: --version, -h."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from tests.helpers import seqkit, seqkit_here


def test_version_prints_the_installed_version():
    result = seqkit("--version")  # the real command: what a user or a bug report sees
    assert result.returncode == 0 and result.stderr == b""
    assert result.stdout.decode() == f"seqkit {version('seqkit')}\n"


@pytest.mark.parametrize("command", [[], ["train"], ["translate"], ["generate"], ["evaluate"], ["info"]])
def test_h_is_help(command):
    long = seqkit_here(*command, "--help")
    short = seqkit_here(*command, "-h")
    assert long.returncode == short.returncode == 0
    assert short.stdout == long.stdout and b"Usage: seqkit" in long.stdout
    assert short.stderr == long.stderr == b""


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["translate", "--no-such-flag"], b"No such option: --no-such-flag"),
        (["translate"], b"Missing argument 'MODEL_DIR'"),
        (["train", "--max-steps"], b"Option '--max-steps' requires an argument"),
    ],
)
def test_usage_mistakes_exit_2_with_the_usage_on_stderr(args, said):
    """README "Errors and exit codes": a missing argument or an unknown flag is Typer's usage message."""
    result = seqkit_here(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == b"" and said in result.stderr


def test_every_option_whose_metavar_is_its_name_declares_its_flag():
    """typer 0.27 (the version some machines carry, a GPU image among them) took a metavar equal to the
    parameter's upper-cased name for the option's own name: `--DEVICE`, and `--device` was unknown. An
    explicit flag (`typer.Option("--device", metavar="DEVICE")`) works on every typer."""
    import ast
    from pathlib import Path

    import seqkit.cli

    unnamed = []
    for path in sorted(Path(seqkit.cli.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            targets = [(a.arg, a.annotation) for a in getattr(getattr(node, "args", None), "args", [])]
            targets += [(t.id, node.value) for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            for name, annotation in targets:
                for call in ast.walk(annotation) if annotation is not None else []:
                    if not (isinstance(call, ast.Call) and ast.unparse(call.func) == "typer.Option"):
                        continue
                    metavar = next((k.value.value for k in call.keywords if k.arg == "metavar"), None)
                    if (
                        not call.args
                        and metavar is not None
                        and metavar.lower() == name.lower().replace("option", "")
                    ):
                        unnamed.append(f"{path.name}: {name}")
    assert unnamed == []
