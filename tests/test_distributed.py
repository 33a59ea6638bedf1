"""Data-parallel training: two CPU processes as two "nodes" on 127.0.0.1 (the workers of the README's
multi-node command, the same on every machine but for --node-rank) reach the weights of one process with
the same total batch; the run resumes under torchrun, two processes on one node."""

from __future__ import annotations

import subprocess
import sys

import torch
from safetensors.torch import load_file

from seqkit.training import checkpoint
from seqkit.training import log as training_log
from seqkit.training.log import StartRecord, ValidRecord
from tests.helpers import data_parallel_train_args, free_port, seqkit_here, torchrun_environment

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def _arguments(data_dir: str, out, steps: int = 12) -> list[str]:
    return data_parallel_train_args(data_dir, out, steps, valid_every=6)


def test_two_nodes_train_like_one_process_with_the_same_total_batch_and_resume(tmp_path, reverse_data):
    one = seqkit_here(*_arguments(reverse_data, tmp_path / "one"))  # one process: this one
    assert one.returncode == 0, one.stderr.decode()
    # two "nodes" of one process each: the workers `torchrun --nnodes 2 --node-rank R --nproc-per-node 1`
    # starts on each machine, with their environment (the launchers are left out; the resume below goes
    # through torchrun itself)
    port = free_port()
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "seqkit", *_arguments(reverse_data, tmp_path / f"node{rank}")],
            env=torchrun_environment(rank, 2, 0, 1, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for rank in (0, 1)
    ]
    for node in nodes:
        _, err = node.communicate(timeout=300)
        assert node.returncode == 0, err.decode()
    two = tmp_path / "node0"
    assert checkpoint.latest(two).name == "step-00000012"
    assert checkpoint.latest(tmp_path / "node1") is None  # only the first process of all writes the run
    a = load_file(checkpoint.latest(tmp_path / "one") / checkpoint.WEIGHTS)
    b = load_file(checkpoint.latest(two) / checkpoint.WEIGHTS)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    starts = [training_log.read(run)[0] for run in (tmp_path / "one", two)]
    assert all(isinstance(s, StartRecord) for s in starts) and [s.processes for s in starts] == [1, 2]
    # the same training figures, logged once (by rank 0)
    logs = [training_log.of_kind(training_log.read(run), ValidRecord) for run in (tmp_path / "one", two)]
    assert [r.step for r in logs[1]] == [6, 12]
    for x, y in zip(*logs, strict=True):
        assert abs(x.scores["ppl"] - y.scores["ppl"]) < 1e-3 * x.scores["ppl"]
    # a distributed run resumes too, under torchrun, two processes on one node, from rank 0's checkpoint
    longer = [
        *TORCHRUN,
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "seqkit",
        *_arguments(reverse_data, two, 18),
    ]
    resumed = subprocess.run(longer, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert resumed.stderr.decode().count("restored step 12") == 1  # reported once, by rank 0
    assert checkpoint.latest(two).name == "step-00000018"
