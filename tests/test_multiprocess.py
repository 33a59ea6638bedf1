"""Outgrowing one machine: training as two torchrun "nodes" on 127.0.0.1 reaches the weights of one
process with the same total batch, and a file translated by two processes equals the file translated by
one, byte for byte."""

from __future__ import annotations

import socket
import subprocess
import sys

import torch
from safetensors.torch import load_file

from seqkit.training import checkpoint
from tests.helpers import data_parallel_train_args

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(data_dir: str, out) -> list[str]:
    return ["-m", "seqkit", *data_parallel_train_args(data_dir, out, steps=8, valid_every=8)]


def test_two_nodes_on_localhost_train_like_one_process(tmp_path, reverse_data):
    one = subprocess.run(
        [sys.executable, *_train(reverse_data, tmp_path / "one")], capture_output=True, timeout=300
    )
    assert one.returncode == 0, one.stderr.decode()
    # the README's multi-node command: the same on every machine but for --node-rank
    port = str(_free_port())
    nodes = [
        subprocess.Popen(
            [
                *TORCHRUN,
                "--nnodes",
                "2",
                "--node-rank",
                str(rank),
                "--nproc-per-node",
                "1",
                "--master-addr",
                "127.0.0.1",
                "--master-port",
                port,
                *_train(reverse_data, tmp_path / f"node{rank}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    for node in nodes:
        _, err = node.communicate(timeout=300)
        assert node.returncode == 0, err.decode()
    a = load_file(checkpoint.latest(tmp_path / "one") / checkpoint.WEIGHTS)
    b = load_file(checkpoint.latest(tmp_path / "node0") / checkpoint.WEIGHTS)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    assert checkpoint.latest(tmp_path / "node1") is None  # only the first process writes the run


def test_sharded_translation_equals_one_process_byte_for_byte(tmp_path, reverse_model, reverse_data):
    source = tmp_path / "source.txt"
    text = open(f"{reverse_data}/dev.src").read().splitlines()
    source.write_text("\n".join([*text[:25], "", *text[25:40]]) + "\n")  # 41 lines, one empty: unequal shares
    single = subprocess.run(
        [sys.executable, "-m", "seqkit", "translate", str(reverse_model), str(source), "-o", str(tmp_path / "one.txt")],
        capture_output=True, timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr.decode()
    for processes in ("3",):
        out = tmp_path / f"sharded-{processes}.txt"
        run = subprocess.run(
            [*TORCHRUN, "--standalone", "--nproc-per-node", processes, "-m", "seqkit", "translate",
             str(reverse_model), str(source), "-o", str(out)],
            capture_output=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr.decode()
        assert out.read_bytes() == (tmp_path / "one.txt").read_bytes()
        assert len(out.read_text().splitlines()) == 41
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no part left


def test_sharded_translation_needs_files_and_an_output(reverse_model):
    run = subprocess.run(
        [*TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "seqkit", "translate", str(reverse_model)],
        capture_output=True, timeout=300, input=b"a b\n",
    )  # fmt: skip
    assert run.returncode != 0
    assert (
        b"under torchrun, translate shares out the lines of input files into one --output FILE" in run.stderr
    )
