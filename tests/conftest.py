"""Shared fixtures: toy corpora on disk, and the trained models that many tests reuse (each trained once
per session). Plain helpers are in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqkit.training import lm as train_lm
from seqkit.training import seq2seq as train_seq2seq
from tests.helpers import lm_config, toy_config, write_text, write_toy

torch.set_num_threads(1)  # tiny models: threads only add noise


@pytest.fixture(scope="session")
def reverse_data(tmp_path_factory) -> str:
    return write_toy(tmp_path_factory.mktemp("reverse"), "reverse")


@pytest.fixture(scope="session")
def reverse_model(tmp_path_factory, reverse_data) -> Path:
    """A GRU model trained on the toy reverse task (a few seconds)."""
    model_dir = tmp_path_factory.mktemp("models") / "reverse"
    train_seq2seq.train(toy_config(reverse_data, train={"max_steps": 600, "valid_every": 300}), model_dir)
    return model_dir


@pytest.fixture(scope="session")
def lm_data(tmp_path_factory) -> Path:
    return write_text(tmp_path_factory.mktemp("lm-data"))


@pytest.fixture(scope="session")
def char_lm(tmp_path_factory, lm_data) -> Path:
    """A character language model that has memorised helpers.LINES (a few seconds)."""
    model_dir = tmp_path_factory.mktemp("models") / "char-lm"
    train_lm.train(lm_config(lm_data), model_dir)
    return model_dir
