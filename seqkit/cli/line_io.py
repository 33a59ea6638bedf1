"""The lines of the commands that answer line by line (translate, generate, predict): their input, from
files or stdin, and their output, to stdout or to a file written whole or not at all."""

from __future__ import annotations

import sys
from pathlib import Path

from seqkit.errors import ConfigError, DataError


def input_lines(inputs: list[Path] | None, column: int | None = None):
    """Lines of every input file in turn, or of stdin; with `column`, that column of tab-separated lines."""
    from seqkit.data.formats import iter_column
    from seqkit.data.text import iter_lines

    if column is not None and column < 1:
        raise ConfigError(f"--column {column}: columns count from 1")
    for path in inputs or [Path("-")]:
        yield from (iter_column(path, column) if column else iter_lines(path))


def source_name(path: Path) -> str | None:
    """How errors name an input file's lines (`FILE:N`); None for stdin, whose lines are `input line N`."""
    return None if str(path) == "-" else str(path)


def typed(inputs: list[Path] | None) -> bool:
    """Whether a person types the input (stdin, or `-` among the inputs, on a terminal): then each line is
    answered at once."""
    return (not inputs or any(str(path) == "-" for path in inputs)) and sys.stdin.isatty()


def check_output(
    output: Path | None, inputs: list[Path] | None, model_dir: Path | None = None, option: str = "--output"
) -> None:
    """Before any work: an output that cannot be written is an error now, not after the last line; and
    one that is also an input file, or a file of the model read, would destroy it with the results."""
    if output is None:
        return
    from seqkit import outputs

    try:
        outputs.check_writable(output)
    except OSError as e:
        raise DataError(f"{option} {outputs.describe(e)}") from None
    if not outputs.is_replaceable(output):  # a device or FIFO is written through, never replaced
        return
    for path in inputs or []:
        if output.exists() and path.exists() and path.samefile(output):
            raise ConfigError(
                f"{option} {output} is also an input file ({path}); write the results elsewhere"
            )
    if model_dir is not None and _owns(model_dir, output):
        raise ConfigError(
            f"{option} {output} is a file of the model directory {model_dir}; write the results elsewhere"
        )


def check_png(output: Path | None, option: str) -> None:
    """A picture is written as PNG: another file name's suffix (curves.pdf) would hold PNG bytes, unsaid."""
    if output is not None and output.suffix and output.suffix.lower() != ".png":
        from seqkit import outputs

        if outputs.is_replaceable(output):  # (a device or FIFO is written through, whatever its name)
            raise ConfigError(f"{option} {output}: seqkit draws PNG pictures; give a name ending in .png")


def _owns(model_dir: Path, path: Path) -> bool:
    """Whether `path` is a file of the model directory or export read (an export's rule imports no torch:
    a deployment without it writes with -o too)."""
    from seqkit.export import runtime

    if runtime.is_export(model_dir):
        return runtime.owns(model_dir, path)
    from seqkit import modeldir

    return modeldir.owns(model_dir, path)


def write_lines(lines, output: Path | None) -> None:
    """To stdout line by line (flushed, for pipes), or to `output` through a temp file renamed into place
    when every line is written (gzipped when its name ends in .gz): a failure leaves no partial file, and
    no corpus is held in memory. (An input's errors are DataErrors, so an OSError here is the output's.)"""
    if output is None:
        for line in lines:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        return
    from seqkit import outputs

    try:
        with outputs.writing(output) as f:  # a device or FIFO is written through
            with outputs.lines_into(f, output) as stream:
                for line in lines:
                    stream.write(line.encode("utf-8") + b"\n")
    except BrokenPipeError:  # `-o /dev/stdout | head -1`: the reader has what it wanted, as on stdout
        raise
    except OSError as e:
        raise DataError(f"--output {outputs.describe(OSError(e.errno, e.strerror, str(output)))}") from None
