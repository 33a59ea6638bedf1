"""Helpers shared by the test modules (fixtures live in conftest.py): toy corpora and configs, the real
`seqkit` command in a subprocess, and checks of one-line errors and pictures."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np

from seqkit import config as config_lib
from seqkit.config import checks
from seqkit.data.toy import make_pairs
from seqkit.viz import plots

# --- toy data and configs ----------------------------------------------------------------------------


def write_toy(directory: Path, task: str, train_count: int = 2000, dev_count: int = 60) -> str:
    """Writes {directory}/{train,dev}.{src,tgt}; returns the directory as a string."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (("train", train_count, 1), ("dev", dev_count, 2)):
        pairs = make_pairs(task, count, seed)
        (directory / f"{split}.src").write_text("".join(s + "\n" for s, _ in pairs))
        (directory / f"{split}.tgt").write_text("".join(t + "\n" for _, t in pairs))
    return str(directory)


def _with_sections(values: dict, sections: dict) -> config_lib.Config:
    for name, body in sections.items():
        values[name] = {**values.get(name, {}), **body}
    # the defaults' keys that the chosen model type or tokenizer does not read (a new run refuses them)
    config = config_lib.from_dict(values, "test")
    for key in checks.unread_keys(config):
        section, name = key.split(".")
        if name not in sections.get(section, {}):
            values[section].pop(name, None)
    return config_lib.from_dict(values, "test")


def toy_config(data_dir: str, **sections) -> config_lib.Config:
    """A tiny model on a toy corpus; `sections` override, e.g. model={"cell": "lstm"}."""
    values = {
        "data": {
            "train": f"{data_dir}/train",
            "dev": f"{data_dir}/dev",
            "src_lang": "src",
            "tgt_lang": "tgt",
        },
        "tokenizer": {"vocab_size": 16},
        "model": {"embedding_size": 32, "encoder_hidden_size": 32, "decoder_hidden_size": 64, "dropout": 0.0},
        "train": {"batch_tokens": 400, "max_steps": 500, "valid_every": 250, "log_every": 50, "seed": 7},
    }
    return _with_sections(values, sections)


LINES = [
    "the quick brown fox jumps over the lazy dog",
    "a stitch in time saves nine",
    "all that glitters is not gold",
    "every cloud has a silver lining",
]


def write_text(directory: Path) -> Path:
    """A language model's {train,dev}.txt: LINES, 25 times over for training."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.txt").write_text("\n".join(LINES * 25) + "\n")
    (directory / "dev.txt").write_text("\n".join(LINES) + "\n")
    return directory


def lm_config(data_dir: Path, **sections) -> config_lib.Config:
    """A character LSTM language model on `write_text`'s lines; `sections` override."""
    values = {
        "data": {"train": f"{data_dir}/train", "dev": f"{data_dir}/dev", "tgt_lang": "txt"},
        "tokenizer": {"type": "char"},
        "model": {"type": "lm", "embedding_size": 48, "decoder_hidden_size": 96, "dropout": 0.0},
        "train": {"batch_tokens": 256, "bptt_length": 32, "max_steps": 400, "valid_every": 200, "seed": 3},
    }
    return _with_sections(values, sections)


# --- the command line ----------------------------------------------------------------------------------


def seqkit(*args, stdin: str | bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    """The real `seqkit` command in a subprocess, as pipelines run it."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run(
        [sys.executable, "-m", "seqkit", *map(str, args)],
        input=data,
        capture_output=True,
        cwd=cwd,
        timeout=300,
    )


def seqkit_here(*args, stdin: str | bytes | None = None) -> subprocess.CompletedProcess:
    """`seqkit` run in this process through typer's CliRunner: the exit code and the stdout and stderr
    bytes of the real command, without an interpreter's start-up and imports (about 1.5 s a call). For
    checks of what a command writes; tests of the process itself (signals, terminals, torchrun, how
    stdout and stderr part) use `seqkit`."""
    from rich.console import Console
    from typer.testing import CliRunner

    from seqkit import console
    from seqkit.cli import app

    arguments = [str(a) for a in args]
    shown = console.stderr
    # as in a subprocess whose stderr is a pipe: no colours, whatever this process's stderr is
    console.stderr = Console(stderr=True, soft_wrap=True, color_system=None)
    try:
        result = CliRunner().invoke(app, arguments, input=stdin, catch_exceptions=False, prog_name="seqkit")
    finally:
        console.stderr = shown
    return subprocess.CompletedProcess(arguments, result.exit_code, result.stdout_bytes, result.stderr_bytes)


def keep(path: Path, facts) -> None:
    """Keeps `facts` (a command's CompletedProcess, what a run left) at `path`: for a test whose commands run
    in the background process (conftest's `prepared_in_background`) and which checks them later (kept)."""
    path.write_bytes(pickle.dumps(facts))


def kept(path: Path):
    """What keep kept at `path`."""
    return pickle.loads(path.read_bytes())


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str, exit_code: int = 1) -> str:
    """Exit code 1 (README "Errors and exit codes": every user error), nothing on stdout, one `error:` line
    on stderr that names each fragment."""
    err = result.stderr.decode()
    assert result.returncode == exit_code, (result.returncode, err)
    assert result.stdout == b""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# --- pictures ---------------------------------------------------------------------------------------------


def png_pixels(data: bytes) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(data), format="png")


def distinct_colours(pixels: np.ndarray) -> int:
    """How many colours a picture's pixels (height, width, channels in [0, 1]) have."""
    # each pixel's channels as one integer: np.unique over rows (axis=0) takes seconds on a large picture
    channels = np.round(pixels * 255).astype(np.int64).reshape(-1, pixels.shape[-1])
    return len(np.unique(channels @ (256 ** np.arange(channels.shape[1], dtype=np.int64))))


def assert_picture(data: bytes, size_inches: tuple[float, float]) -> np.ndarray:
    """A PNG of the expected pixel size that is not one flat colour; returns its pixels."""
    pixels = png_pixels(data)
    assert pixels.shape[:2] == (round(size_inches[1] * plots.DPI), round(size_inches[0] * plots.DPI))
    assert distinct_colours(pixels) > 10
    return pixels


def data_parallel_train_args(data_dir: str, out, steps: int, valid_every: int) -> list[str]:
    """`seqkit train` arguments of a tiny toy run whose weights several processes can reproduce exactly
    (no dropout: the processes' masks would differ; one thread each)."""
    return [
        "train", "--output", str(out), "--max-steps", str(steps),
        "--set", f"data.train={data_dir}/train", "--set", f"data.dev={data_dir}/dev",
        "--set", "data.src_lang=src", "--set", "data.tgt_lang=tgt", "--set", "tokenizer.vocab_size=16",
        "--set", "model.embedding_size=16", "--set", "model.encoder_hidden_size=16",
        "--set", "model.decoder_hidden_size=32", "--set", "model.dropout=0.0",
        "--set", "train.batch_tokens=400", "--set", f"train.valid_every={valid_every}", "--set", "train.threads=1",
    ]  # fmt: skip


def torchrun_environment(
    rank: int, world_size: int, local_rank: int, local_world_size: int, port: int
) -> dict:
    """The environment torchrun gives a worker (what seqkit reads of it, and init_process_group's env://):
    for starting the workers of a multi-node layout directly, without paying for a launcher each."""
    import os

    return {
        **os.environ,
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(local_rank),
        "LOCAL_WORLD_SIZE": str(local_world_size),
        "GROUP_RANK": str(rank // local_world_size),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "TORCHELASTIC_RUN_ID": f"test-{port}",
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_workers(arguments: list[list[str]], nodes: bool = False) -> list[tuple[int, bytes]]:
    """The workers torchrun starts, each `python -m seqkit` with its own arguments (rank order) and
    torchrun's environment, without the launcher: processes of one machine, or (`nodes`) one process on
    each of as many "machines", all on 127.0.0.1 -> each worker's exit code and stderr, in rank order."""
    port, count = free_port(), len(arguments)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "seqkit", *map(str, args)],
            env=torchrun_environment(rank, count, 0 if nodes else rank, 1 if nodes else count, port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for rank, args in enumerate(arguments)
    ]
    ended = []
    try:
        for worker in workers:
            _, err = worker.communicate(timeout=300)
            ended.append((worker.returncode, err))
    finally:  # (one timed out: the others do not outlive the test)
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    return ended
