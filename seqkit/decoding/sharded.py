"""Translating one large file with the processes torchrun starts (back-translation of a corpus):

    torchrun --nproc-per-node N -m seqkit translate MODEL IN -o OUT

Process r translates lines r, r + N, r + 2N, ... and writes them, in that order, to a part file beside
OUT. When every part is complete, the first process interleaves them into OUT (line i is the
(i // N)-th line of part i % N), written to a temporary name and renamed: OUT appears whole, in input
order, or not at all.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from seqkit import outputs
from seqkit.errors import ConfigError
from seqkit.runtime.distributed import World


def check_shareable(inputs: list[Path]) -> None:
    """Every process reads every input file and keeps its share: a pipe (`-`, a FIFO, a shell's
    `<(cmd)`) would hand each process another part of the stream instead, and the lines of the output
    would be lost or misplaced without an error."""
    for path in inputs:
        # (a shell's <(cmd) is /dev/fd/N, which torchrun's processes do not inherit: "no such file")
        pipe = str(path) == "-" or path.parent in (Path("/dev/fd"), Path("/proc/self/fd"))
        if pipe or (path.exists() and not path.is_file()):
            raise ConfigError(
                f"{path}: under torchrun every process reads each input, and a pipe or stream would give "
                "each only a part of its lines; write it to a file first (or translate without torchrun)"
            )


def shard(lines: Iterable[str], world: World) -> Iterator[str]:
    """This process's share of the lines: every size-th one from its rank on."""
    return islice(lines, world.rank, None, world.size)


def part_path(output: Path, rank: int) -> Path:
    """Beside OUT (on the shared file system of a multi-node run); for an OUT that is a device or a FIFO
    (/dev/null, a shell's >(cmd)), in the temporary directory: never files among the devices."""
    if outputs.is_replaceable(output):
        return output.with_name(f".{outputs.short_name(output)}.part-{rank}.tmp")
    run = os.environ.get("TORCHELASTIC_RUN_ID", "none")  # the same in every process torchrun starts
    return Path(tempfile.gettempdir()) / f".seqkit-{run}-{outputs.short_name(output)}.part-{rank}.tmp"


def write_part(output: Path, world: World, results: Iterable[str]) -> None:
    """This process's translations, one per line, into its part file."""
    path = part_path(output, world.rank)
    with outputs.terminable():  # (torchrun stops the others with SIGTERM when one fails)
        try:
            with open(path, "w", encoding="utf-8") as f:
                for line in results:
                    f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise


def _interleaved(parts: list) -> Iterator[bytes]:
    while True:
        for part in parts:
            line = part.readline()
            if not line:  # the shares differ by at most one line, and the later ranks' are the shorter
                return
            yield line


def merge(output: Path, world: World) -> None:
    """On the first process: the parts interleaved into `output`, in input order; the parts removed."""
    paths = [part_path(output, rank) for rank in range(world.size)]
    try:
        with contextlib.ExitStack() as opened:  # (a part that cannot be opened closes the others)
            parts = [opened.enter_context(open(path, "rb")) for path in paths]
            with outputs.writing(output) as f:  # temp-and-rename, or a device or FIFO written through
                with outputs.lines_into(f, output) as stream:
                    stream.writelines(_interleaved(parts))
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
