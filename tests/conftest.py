"""Shared fixtures: toy corpora on disk, and one tiny trained model reused by the decoding tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqkit import config as config_lib
from seqkit.data.toy import make_pairs
from seqkit.training import lm as train_lm
from seqkit.training import seq2seq as train_seq2seq

torch.set_num_threads(1)  # tiny models: threads only add noise


def write_toy(directory: Path, task: str, train_count: int = 2000, dev_count: int = 60) -> str:
    """Writes {directory}/{train,dev}.{src,tgt}; returns the directory as a string."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (("train", train_count, 1), ("dev", dev_count, 2)):
        pairs = make_pairs(task, count, seed)
        (directory / f"{split}.src").write_text("".join(s + "\n" for s, _ in pairs))
        (directory / f"{split}.tgt").write_text("".join(t + "\n" for _, t in pairs))
    return str(directory)


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
    for name, body in sections.items():
        values[name] = {**values.get(name, {}), **body}
    return config_lib.from_dict(values, "test")


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
def char_lm_dir(tmp_path_factory) -> Path:
    """A small character LSTM language model with tied embeddings, trained briefly (a few seconds)."""
    data = tmp_path_factory.mktemp("lm-text")
    lines = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine"] * 40
    (data / "train.txt").write_text("\n".join(lines) + "\n")
    (data / "dev.txt").write_text("\n".join(lines[:2]) + "\n")
    cfg = config_lib.from_dict(
        {
            "data": {"train": f"{data}/train", "dev": f"{data}/dev", "tgt_lang": "txt"},
            "tokenizer": {"type": "char"},
            "model": {
                "type": "lm",
                "cell": "lstm",
                "embedding_size": 32,
                "decoder_hidden_size": 32,
                "decoder_layers": 2,
                "tie_embeddings": True,
                "dropout": 0.0,
            },
            "train": {
                "batch_tokens": 256,
                "bptt_length": 32,
                "max_steps": 100,
                "valid_every": 50,
                "log_every": 25,
            },
        },
        "test",
    )
    model_dir = tmp_path_factory.mktemp("models") / "char-lm"
    train_lm.train(cfg, model_dir)
    return model_dir
