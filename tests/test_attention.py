"""Attention weights out of greedy and beam search, and `translate --attention DIR`."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from seqkit import config as config_lib
from seqkit import model_types
from seqkit.data.tokenizer import BOS, EOS
from seqkit.data.toy import make_pairs
from seqkit.decoding.inference import translate_nbest
from seqkit.decoding.search import beam_search, greedy_search, max_output_lengths, source_batch
from seqkit.decoding.torch_steps import Seq2SeqSteps
from seqkit.viz import plots, textplots
from tests.helpers import assert_picture, seqkit_here

SOURCES = [src for src, _ in make_pairs("reverse", 12, seed=5)]


def _decode(model_dir, beam_size: int, lines=SOURCES, batch_size: int = 64):
    cfg, tokenizer, model = model_types.load(model_dir)
    decode = config_lib.with_overrides(
        cfg, {"decode": {"beam_size": beam_size, "batch_size": batch_size}}, "test"
    ).decode
    return tokenizer, translate_nbest(Seq2SeqSteps(model), tokenizer, lines, decode, with_attention=True)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_every_step_sums_to_one_over_the_real_source(reverse_model, beam_size):
    tokenizer, results = _decode(reverse_model, beam_size)
    # a beam may stop before it has beam_size hypotheses, once none of its open ones can win (search.py)
    assert max(len(options) for options in results) == beam_size
    for line, options in zip(SOURCES, results, strict=True):
        assert 1 <= len(options) <= beam_size
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


def _teacher_forced_attention(model, src_ids: list[int], tokens: list[int]) -> np.ndarray:
    """The attention of each step when the model alone re-reads BOS and `tokens` for one sentence."""
    src = torch.tensor([src_ids + [EOS]])
    encoded, state = model.encode(src, torch.tensor([src.size(1)]))
    rows = []
    with torch.no_grad():
        for token in [BOS, *tokens]:
            _, state, weights = model.step(torch.tensor([token]), state, encoded)
            rows.append(weights[0])
    return torch.stack(rows).numpy()


@pytest.mark.parametrize("beam_size", [1, 4])
def test_every_hypothesis_carries_its_own_attention(reverse_model, beam_size):
    """Each returned hypothesis, not only the best, has the weights of its own path: the beams'
    reordering and the sentences that leave the batch mid-search keep histories with their beams."""
    _, tokenizer, model = model_types.load(reverse_model)
    lines = SOURCES + ["a", "h g f e d c b a h g f e"]  # mixed lengths: some sentences finish early
    src_ids = tokenizer.encode_src(lines)
    src, lengths = source_batch(src_ids, range(len(lines)))
    limits = max_output_lengths(lengths, config_lib.DecodeConfig())
    steps = Seq2SeqSteps(model)
    if beam_size == 1:
        results = [[h] for h in greedy_search(steps, src, lengths, limits, True)]
    else:
        results = beam_search(steps, src, lengths, limits, beam_size, 1.0, True, nbest=beam_size)
    checked = 0
    for ids, hypotheses in zip(src_ids, results, strict=True):
        assert len(hypotheses) == beam_size
        for hypothesis in hypotheses:
            expected = _teacher_forced_attention(model, ids, hypothesis.tokens)
            np.testing.assert_allclose(hypothesis.attention, expected, atol=1e-5, rtol=1e-4)
            checked += 1
    assert checked == len(lines) * beam_size


def test_beam_search_of_one_is_greedy_search_attention_included(reverse_model):
    _, tokenizer, model = model_types.load(reverse_model)
    src, lengths = source_batch(tokenizer.encode_src(SOURCES), range(len(SOURCES)))
    limits = max_output_lengths(lengths, config_lib.DecodeConfig())
    greedy = greedy_search(Seq2SeqSteps(model), src, lengths, limits, True)
    beam = beam_search(Seq2SeqSteps(model), src, lengths, limits, 1, 0.0, True)
    for g, (b,) in zip(greedy, beam, strict=True):
        assert g.tokens == b.tokens
        np.testing.assert_allclose(g.attention, b.attention, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_batching_changes_no_attention_even_at_the_length_limit(reverse_model, beam_size):
    """With limits that cut every output short, each sentence still gets its EOS step, whichever
    sentences share its batch (alone it is the longest allowed; in a batch it may not be)."""
    cfg, tokenizer, model = model_types.load(reverse_model)
    overrides = {"beam_size": beam_size, "max_length_ratio": 0.5, "max_length_offset": 0}
    decode = config_lib.with_overrides(cfg, {"decode": overrides}, "test").decode
    steps = Seq2SeqSteps(model)
    together = translate_nbest(steps, tokenizer, SOURCES, decode, with_attention=True)
    alone = translate_nbest(steps, tokenizer, SOURCES, replace(decode, batch_size=1), with_attention=True)
    cut = 0
    for a, b in zip(together, alone, strict=True):
        assert a[0].attention.output == b[0].attention.output
        assert a[0].attention.output[-1] == "</s>"
        cut += len(a[0].attention.output) - 1 < len(a[0].attention.source) - 1
        torch.testing.assert_close(
            torch.tensor(a[0].attention.weights), torch.tensor(b[0].attention.weights), atol=1e-5, rtol=1e-4
        )
    assert cut == len(SOURCES)  # every output was cut by the limit


def test_the_heatmap_draws_the_weights(reverse_model):
    _, results = _decode(reverse_model, 3, lines=SOURCES[:1])
    attention = results[0][0].attention
    figure = plots.attention_figure(attention, "line 1")
    (image,) = figure.axes[0].images
    np.testing.assert_allclose(image.get_array(), attention.weights, rtol=1e-6)
    ticks = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert ticks == attention.source
    assert [label.get_text() for label in figure.axes[0].get_yticklabels()] == attention.output


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
        assert line.startswith(piece) and line.endswith(
            f"-> {best + 1}:{attention.source[best]} ({row[best]:.2f})"
        )
    assert textplots.shade(0.0) == " " and textplots.shade(1.0) == "█"


@pytest.mark.parametrize("beam_size", ["1", "3"])
def test_translate_writes_a_heatmap_and_weights_per_line(reverse_model, tmp_path, beam_size):
    lines = [SOURCES[0], "", SOURCES[1]]
    out = tmp_path / "att"
    result = seqkit_here(
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
        ".seqkit",  # the marker of a directory seqkit wrote
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
    plain = seqkit_here("translate", reverse_model, "--beam-size", beam_size, stdin="\n".join(lines) + "\n")
    assert plain.stdout == result.stdout  # the pictures change no output


def test_nbest_with_attention_writes_the_best_ones_weights(reverse_model, tmp_path):
    lines = "\n".join([SOURCES[0], "", SOURCES[1]]) + "\n"
    args = ("translate", reverse_model, "--beam-size", "3", "--nbest", "2")
    result = seqkit_here(*args, "--attention", tmp_path / "att", stdin=lines)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == seqkit_here(*args, stdin=lines).stdout  # the pictures change no output
    first = json.loads(result.stdout.decode().splitlines()[0])["hypotheses"][0]["text"]
    record = json.loads((tmp_path / "att" / "line-000001.json").read_text())
    _, tokenizer, _ = model_types.load(reverse_model)
    pieces = [tokenizer.tgt.piece_to_id(p) for p in record["output"][:-1]]
    assert tokenizer.decode_tgt([pieces]) == [first]
    assert sorted(p.name for p in (tmp_path / "att").iterdir()) == [
        ".seqkit",  # the marker of a directory seqkit wrote
        "line-000001.json",
        "line-000001.png",
        "line-000003.json",
        "line-000003.png",
    ]


@pytest.mark.parametrize("src_len", [3, 4, 9])
@pytest.mark.parametrize("coverage", [False, True], ids=["plain", "coverage"])
def test_energies_in_blocks_equal_one_pass_and_training(monkeypatch, coverage: bool, src_len: int):
    """Decoding computes the additive attention's energies a block of rows at a time (cache-sized): the
    context and weights are those of one pass and of the training path (the autograd function), to within
    float32 rounding (the product with v may sum in another order for another number of rows)."""
    from seqkit.models import attention as attention_module

    torch.manual_seed(0)
    attention = attention_module.BahdanauAttention(8, 6, 5, coverage=coverage)
    if coverage:
        torch.nn.init.normal_(attention.coverage_weight)
    memory = torch.randn(7, src_len, 6)  # (rows, src_len, memory)
    mask = torch.ones(7, src_len, dtype=torch.bool)
    mask[3, 2:] = False
    query, covered = torch.randn(7, 8), torch.rand(7, src_len) if coverage else None
    keys = attention.project_keys(memory).detach()
    trained = attention(query, keys, memory, mask, covered)  # with autograd
    with torch.no_grad():
        whole = attention(query, keys, memory, mask, covered)
        monkeypatch.setattr(attention_module, "ENERGY_BLOCK", 2 * src_len * 5)  # blocks of 2 rows
        blocked = attention(query, keys, memory, mask, covered)
    for one_pass, in_blocks, learned in zip(whole, blocked, trained, strict=True):
        assert torch.allclose(in_blocks, one_pass, atol=1e-6)
        assert torch.allclose(in_blocks, learned, atol=1e-6)
