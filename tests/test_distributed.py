"""Data-parallel training: two CPU processes under torchrun reach what one process reaches."""

from __future__ import annotations

import subprocess
import sys

import torch
from safetensors.torch import load_file

from seqkit.training import checkpoint
from seqkit.training import log as training_log
from seqkit.training.log import StartRecord, ValidRecord
from tests.helpers import data_parallel_train_args, seqkit_here


def _arguments(data_dir: str, out, steps: int = 12) -> list[str]:
    return data_parallel_train_args(data_dir, out, steps, valid_every=6)


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def test_two_processes_train_like_one_with_the_same_total_batch(tmp_path, reverse_data):
    one = seqkit_here(*_arguments(reverse_data, tmp_path / "one"))  # one process: this one
    assert one.returncode == 0, one.stderr.decode()
    two = subprocess.run(
        [*TORCHRUN, "-m", "seqkit", *_arguments(reverse_data, tmp_path / "two")],
        capture_output=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr.decode()
    a = load_file(checkpoint.latest(tmp_path / "one") / checkpoint.WEIGHTS)
    b = load_file(checkpoint.latest(tmp_path / "two") / checkpoint.WEIGHTS)
    assert checkpoint.latest(tmp_path / "two").name == "step-00000012"
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    starts = [training_log.read(tmp_path / run)[0] for run in ("one", "two")]
    assert all(isinstance(s, StartRecord) for s in starts) and [s.processes for s in starts] == [1, 2]
    # the same training figures, logged once (by rank 0)
    logs = [training_log.of_kind(training_log.read(tmp_path / run), ValidRecord) for run in ("one", "two")]
    assert [r.step for r in logs[1]] == [6, 12]
    for x, y in zip(*logs, strict=True):
        assert abs(x.scores["ppl"] - y.scores["ppl"]) < 1e-3 * x.scores["ppl"]
    # a distributed run resumes too (under torchrun again), from rank 0's checkpoint
    longer = [*TORCHRUN, "-m", "seqkit", *_arguments(reverse_data, tmp_path / "two", steps=18)]
    resumed = subprocess.run(longer, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert resumed.stderr.decode().count("restored step 12") == 1  # reported once, by rank 0
    assert checkpoint.latest(tmp_path / "two").name == "step-00000018"
