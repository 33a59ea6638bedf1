"""Attention weights out of greedy and beam search, and `translate --attention DIR`."""

from __future__ import annotations

import json

import pytest
import torch

from seqkit import config as config_lib
from seqkit import modeldir, plots, textplots
from seqkit.data.toy import make_pairs
from seqkit.inference import translate_nbest
from tests.cli_helpers import seqkit
from tests.test_curves import assert_picture

SOURCES = [src for src, _ in make_pairs("reverse", 12, seed=5)]


def _decode(model_dir, beam_size: int, lines=SOURCES, batch_size: int = 64):
    cfg, tokenizer, model = modeldir.load(model_dir)
    decode = config_lib.with_overrides(
        cfg, {"decode": {"beam_size": beam_size, "batch_size": batch_size}}, "test"
    ).decode
    return tokenizer, translate_nbest(model, tokenizer, lines, decode, with_attention=True)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_every_step_sums_to_one_over_the_real_source(reverse_model, beam_size):
    tokenizer, results = _decode(reverse_model, beam_size)
    for line, options in zip(SOURCES, results, strict=True):
        assert len(options) == beam_size
        for option in options:
            attention = option.attention
            assert attention.source == tokenizer.src_pieces(line) + ["</s>"]
            weights = torch.tensor(attention.weights)
            assert weights.shape == (len(attention.output), len(attention.source))
            assert torch.allclose(weights.sum(1), torch.ones(len(attention.output)), atol=1e-5)
            # the pieces of the output, then the step that ended it
            assert attention.output[-1] == "</s>"
            assert tokenizer.decode_tgt([[tokenizer.tgt.piece_to_id(p) for p in attention.output[:-1]]]) == [
                option.text
            ]


def test_beam_one_attention_is_greedy_attention_and_batching_changes_nothing(reverse_model):
    _, greedy = _decode(reverse_model, 1)
    _, beam = _decode(reverse_model, 1, batch_size=5)  # other batches, other padding
    for a, b in zip(greedy, beam, strict=True):
        assert a[0].attention.output == b[0].attention.output
        assert torch.allclose(
            torch.tensor(a[0].attention.weights), torch.tensor(b[0].attention.weights), atol=1e-6
        )


def _word_of_each_piece(pieces: list[str]) -> list[int]:
    """The index of the word each SentencePiece piece belongs to ("▁" starts a word)."""
    words, index = [], -1
    for piece in pieces:
        index += piece.startswith("▁")
        words.append(index)
    return words


def test_the_reverse_model_looks_at_the_mirrored_word(reverse_model):
    """Reversing a sequence: output word i comes from source word n-1-i, and attention shows it.

    Words are split into pieces differently on the two sides ("▁d" against "▁" + "d"), so the check
    is per word: the most attended source piece lies in the mirrored word.
    """
    _, results = _decode(reverse_model, 5)
    hits = total = 0
    for line, options in zip(SOURCES, results, strict=True):
        best = options[0]
        if best.text != " ".join(reversed(line.split())):
            continue
        source_words = _word_of_each_piece(best.attention.source[:-1])
        output_words = _word_of_each_piece(best.attention.output[:-1])
        last = len(line.split()) - 1
        for output_word, row in zip(output_words, best.attention.weights, strict=False):
            most_attended = max(range(len(source_words)), key=row.__getitem__)
            total += 1
            hits += source_words[most_attended] == last - output_word
    assert total >= 20 and hits / total >= 0.9, (hits, total)


def test_text_rendering_names_the_most_attended_piece(reverse_model):
    _, results = _decode(reverse_model, 1, lines=SOURCES[:1])
    attention = results[0][0].attention
    text = textplots.attention_text(attention)
    lines = text.splitlines()
    assert len(lines) == 2 + len(attention.output)
    for piece, row, line in zip(attention.output, attention.weights, lines[2:], strict=True):
        best = max(range(len(row)), key=row.__getitem__)
        assert line.startswith(piece) and line.endswith(f"-> {attention.source[best]} ({row[best]:.2f})")
    assert textplots.shade(0.0) == " " and textplots.shade(1.0) == "█"


@pytest.mark.parametrize("beam_size", ["1", "3"])
def test_translate_writes_a_heatmap_and_weights_per_line(reverse_model, tmp_path, beam_size):
    lines = [SOURCES[0], "", SOURCES[1]]
    out = tmp_path / "att"
    result = seqkit(
        "translate",
        reverse_model,
        "--beam-size",
        beam_size,
        "--attention",
        out,
        stdin="\n".join(lines) + "\n",
    )
    assert result.returncode == 0, result.stderr.decode()
    outputs = result.stdout.decode().split("\n")[:-1]
    assert len(outputs) == 3 and outputs[1] == ""
    assert sorted(p.name for p in out.iterdir()) == [
        "line-000001.json",
        "line-000001.png",
        "line-000003.json",
        "line-000003.png",
    ]
    for number in (1, 3):
        record = json.loads((out / f"line-{number:06d}.json").read_text())
        assert record["line"] == number
        for row in record["weights"]:
            assert sum(row) == pytest.approx(1.0, abs=1e-5)
        size = plots.attention_size(len(record["source"]), len(record["output"]))
        assert_picture((out / f"line-{number:06d}.png").read_bytes(), size)
    plain = seqkit("translate", reverse_model, "--beam-size", beam_size, stdin="\n".join(lines) + "\n")
    assert plain.stdout == result.stdout  # the pictures change no output
