"""Recurrent language models and `seqkit generate`: memorise, reproduce, sample reproducibly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from seqkit import config as config_lib
from seqkit import modeldir
from seqkit.decoding.search import choose_tokens
from seqkit.training import lm as train_lm
from tests.cli_helpers import assert_one_line_error, seqkit

LINES = [
    "the quick brown fox jumps over the lazy dog",
    "a stitch in time saves nine",
    "all that glitters is not gold",
    "every cloud has a silver lining",
]


def lm_config(data_dir: Path, **sections) -> config_lib.Config:
    values = {
        "data": {"train": f"{data_dir}/train", "dev": f"{data_dir}/dev", "tgt_lang": "txt"},
        "tokenizer": {"type": "char"},
        "model": {"type": "lm", "embedding_size": 48, "decoder_hidden_size": 96, "dropout": 0.0},
        "train": {"batch_tokens": 256, "bptt_length": 32, "max_steps": 400, "valid_every": 200, "seed": 3},
    }
    for name, body in sections.items():
        values[name] = {**values.get(name, {}), **body}
    return config_lib.from_dict(values, "test")


def write_text(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.txt").write_text("\n".join(LINES * 25) + "\n")
    (directory / "dev.txt").write_text("\n".join(LINES) + "\n")
    return directory


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory) -> Path:
    data = write_text(tmp_path_factory.mktemp("lm-data"))
    model_dir = tmp_path_factory.mktemp("lm") / "char"
    train_lm.train(lm_config(data), model_dir)
    return model_dir


def _generate(model_dir, *args, stdin=None) -> list[str]:
    result = seqkit("generate", model_dir, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().split("\n")[:-1]


def test_memorised_text_is_reproduced_greedily_and_stops_at_end_of_line(char_lm):
    prompts = [line[:5] for line in LINES]
    assert _generate(char_lm, *prompts, "--temperature", "0") == LINES
    # prompts from stdin, one output line per prompt line, an empty prompt starts a new line
    out = _generate(char_lm, "--temperature", "0", stdin="a sti\n\nall t\n")
    assert len(out) == 3 and out[0] == LINES[1] and out[2] == LINES[2]
    assert out[1] and out[1][0] in {line[0] for line in LINES}  # some line start: the context is only EOS


def test_max_tokens_bounds_the_continuation(char_lm):
    (text,) = _generate(char_lm, "the q", "--temperature", "0", "--max-tokens", "6")
    assert text == "the quick b"


def test_sampling_is_reproducible_and_top_k_1_is_greedy(char_lm):
    args = ("", "e", "--temperature", "1.5", "--num-samples", "3", "--max-tokens", "30")
    first = _generate(char_lm, *args, "--seed", "5")
    assert len(first) == 6
    assert first == _generate(char_lm, *args, "--seed", "5")
    assert first != _generate(char_lm, *args, "--seed", "6")
    greedy = _generate(char_lm, "a", "all", "--temperature", "0")
    assert _generate(char_lm, "a", "all", "--top-k", "1", "--temperature", "2") == greedy


@pytest.mark.parametrize(
    ("option", "fragments"),
    [
        (["--top-p", "0"], ["generate.top_p", "in (0, 1]"]),
        (["--top-p", "1.5"], ["generate.top_p"]),
        (["--temperature", "-1"], ["generate.temperature", "0 (greedy) or positive"]),
        (["--top-k", "-3"], ["generate.top_k"]),
        (["--max-tokens", "0"], ["generate.max_tokens"]),
    ],
)
def test_bad_sampling_options_are_clear_errors(char_lm, option, fragments):
    assert_one_line_error(seqkit("generate", char_lm, "a", *option), *fragments)


def test_model_types_are_not_mixed_up(char_lm, reverse_model):
    assert_one_line_error(
        seqkit("generate", reverse_model, "a"), "model.type = seq2seq", "seqkit translate", "model.type = lm"
    )
    assert_one_line_error(seqkit("translate", char_lm, stdin="a\n"), "language model", "seqkit generate")


def test_evaluate_reports_perplexity_and_bits_per_char(char_lm, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(LINES) + "\n")
    result = seqkit("evaluate", "--model", char_lm, "-r", text, "--json")
    assert result.returncode == 0, result.stderr.decode()
    scores = json.loads(result.stdout)["perplexity"]
    assert scores["perplexity"] < 1.3  # memorised
    assert math.isclose(
        scores["bits_per_char"], math.log2(scores["perplexity"]), rel_tol=1e-6
    )  # chars = tokens
    shuffled = tmp_path / "shuffled.txt"
    shuffled.write_text("\n".join(" ".join(reversed(line.split())) for line in LINES) + "\n")
    worse = json.loads(seqkit("evaluate", "--model", char_lm, "-r", shuffled, "--json").stdout)["perplexity"]
    assert worse["perplexity"] > 2 * scores["perplexity"]


def test_training_log_of_a_language_model(char_lm):
    records = modeldir.read_log(char_lm)
    valid = [r for r in records if r["kind"] == "valid"]
    assert [r["step"] for r in valid] == [200, 400]
    assert valid[-1]["dev_bpc"] < valid[0]["dev_bpc"]
    assert records[-1]["best_dev_ppl"] == min(r["dev_ppl"] for r in valid)


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_sentencepiece_lstm_and_tied_embeddings(tmp_path, cell):
    data = write_text(tmp_path / "data")
    cfg = lm_config(
        data,
        tokenizer={"type": "sentencepiece", "vocab_size": 40},
        model={"cell": cell, "embedding_size": 64, "decoder_hidden_size": 64, "tie_embeddings": True},
        train={"max_steps": 300, "valid_every": 300},
    )
    train_lm.train(cfg, tmp_path / "model")
    _, tokenizer, model = modeldir.load(tmp_path / "model")
    assert model.output.weight is model.embedding.weight  # still tied after loading
    (text,) = _generate(tmp_path / "model", "a stitch", "--temperature", "0")
    assert text == LINES[1]


def test_choose_tokens_top_k_and_top_p():
    probs = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.5, 0.3, 0.15, 0.05]])  # ids 0-3 are special
    logits = probs.clamp_min(1e-9).log().expand(4000, -1)
    generator = torch.Generator().manual_seed(0)
    top_p = choose_tokens(logits, 1.0, 0, 0.7, generator)  # 0.5 + 0.3 reaches 0.7
    assert set(top_p.tolist()) == {4, 5}
    top_k = choose_tokens(logits, 1.0, 3, 1.0, generator)
    assert set(top_k.tolist()) == {4, 5, 6}
    free = choose_tokens(logits, 1.0, 0, 1.0, generator)
    assert set(free.tolist()) == {4, 5, 6, 7} and abs((free == 4).float().mean().item() - 0.5) < 0.05
    assert choose_tokens(logits[:1], 0.0, 0, 1.0, generator).tolist() == [4]


def test_terminal_output_streams_the_same_text(char_lm):
    """On a terminal the text is written piece by piece; it must add up to what a pipe gets."""
    import os
    import pty
    import subprocess
    import sys

    args = [sys.executable, "-m", "seqkit", "generate", str(char_lm), "a st", "every", "--temperature", "0"]
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 1024)
        except OSError:  # the terminal closes when the process ends
            break
        if not data:
            break
        chunks.append(data)
    assert process.wait(timeout=120) == 0
    os.close(leader)
    assert b"".join(chunks).decode().replace("\r\n", "\n") == f"{LINES[1]}\n{LINES[3]}\n"
