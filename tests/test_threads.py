"""A training's thread count when nothing sets it: the cores other processes leave free (runtime/threads.py)."""

from __future__ import annotations

import pytest
import torch

from seqkit.runtime import threads
from seqkit.training import log as training_log
from seqkit.training import seq2seq as train_seq2seq
from tests.helpers import toy_config, write_toy


@pytest.mark.parametrize(
    ("cores", "load", "machine_cores", "free"),
    [
        (2, 0.1, 2, 2),  # idle
        (2, 0.6, 2, 2),  # a little background work is not a process on a core
        (2, 0.8, 2, 1),  # another process has kept a core busy
        (2, 1.9, 2, 1),  # another 2-thread training
        (2, 6.0, 2, 1),  # never fewer than one
        (4, 1.0, 4, 3),
        (2, 8.0, 64, 2),  # a container's 2 cores on a 64-core host with 8 busy: probably not ours
    ],
)
def test_free_cores(cores, load, machine_cores, free):
    assert threads.free_cores(cores, load, machine_cores) == free


@pytest.fixture
def two_busy_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.9, 1.5, 1.0))
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)


def test_what_decides(two_busy_cores, monkeypatch):
    assert threads.training_threads(0, 2) == (1, "load average 1.9 on 2 cores")
    assert threads.training_threads(0, 1) == (None, "default")  # never more than torch's own
    assert threads.training_threads(2, 2) == (2, "train.threads")
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert threads.training_threads(0, 2) == (None, "default")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.training_threads(0, 2) == (None, "OMP_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.training_threads(0, 2) == (None, "torchrun")
    # a system without sched_getaffinity (macOS) counts the machine's cores
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.9, 1.9, 1.9))
    monkeypatch.delattr(threads.os, "sched_getaffinity")
    assert threads.training_threads(0, 2) == (1, "load average 1.9 on 2 cores")


def test_a_training_on_busy_cores_takes_one_thread(two_busy_cores, tmp_path):
    data = write_toy(tmp_path / "data", "reverse", train_count=200, dev_count=10)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_seq2seq.train(toy_config(data, train={"max_steps": 2, "valid_every": 2}), tmp_path / "run")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    (start,) = [r for r in training_log.read_all(tmp_path / "run") if r.kind == "start"]
    assert start.threads == 1
