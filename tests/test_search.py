"""Search: beam 1 is greedy, batching changes nothing, n-best is ordered, the length penalty matters."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from seqkit.config import DecodeConfig, ModelConfig
from seqkit.data.tokenizer import BOS, EOS, UNK
from seqkit.decoding.rules import Repeats
from seqkit.decoding.search import (
    beam_search,
    decode_corpus,
    greedy_search,
    max_output_lengths,
    source_batch,
    top_k,
)
from seqkit.decoding.torch_steps import Seq2SeqSteps
from seqkit.models.seq2seq import Seq2Seq
from tests.helpers import assert_one_line_error, seqkit_here


@pytest.fixture(scope="module")
def random_model_and_sources():
    """An untrained model: its outputs are arbitrary, so search has real choices to make."""
    torch.manual_seed(3)
    cfg = ModelConfig(embedding_size=16, encoder_hidden_size=16, decoder_hidden_size=24, dropout=0.0)
    model = Seq2Seq(cfg, 40, 40).eval()
    generator = torch.Generator().manual_seed(4)
    sources = [
        torch.randint(4, 40, (int(n),), generator=generator).tolist() for n in torch.randint(1, 12, (48,))
    ]
    return model, sources


def test_the_length_limit_is_the_ratio_times_the_source_pieces_plus_the_offset():
    # (2.3 x 100 is 229.99999999999997 in floating point: the limit was one piece short)
    limits = max_output_lengths(
        np.array([101, 11, 1]), DecodeConfig(max_length_ratio=2.3, max_length_offset=10)
    )
    assert limits.tolist() == [230 + 10, 23 + 10, 0 + 10]
    rounded_down = max_output_lengths(np.array([4]), DecodeConfig(max_length_ratio=0.7, max_length_offset=0))
    assert rounded_down.tolist() == [2]  # 0.7 x 3 = 2.1: at most 2
    # never no step at all: the search gave '' with log-prob 0, the best score there is
    none = max_output_lengths(np.array([2, 1]), DecodeConfig(max_length_ratio=0.5, max_length_offset=0))
    assert none.tolist() == [1, 1]


def test_a_search_of_one_step_scores_its_piece(random_model_and_sources):
    model, sources = random_model_and_sources
    src, lengths = source_batch(sources, range(len(sources)))
    limits = max_output_lengths(lengths, DecodeConfig(max_length_ratio=0.01, max_length_offset=0))
    for hypotheses in beam_search(Seq2SeqSteps(model), src, lengths, limits, beam_size=3, alpha=0.0):
        assert len(hypotheses[0].tokens) <= 1 and hypotheses[0].log_prob < 0
    for hypothesis in greedy_search(Seq2SeqSteps(model), src, lengths, limits):
        assert len(hypothesis.tokens) <= 1 and hypothesis.log_prob < 0


def test_beam_size_one_is_greedy(random_model_and_sources):
    model, sources = random_model_and_sources
    src, lengths = source_batch(sources, range(len(sources)))
    limits = max_output_lengths(lengths, DecodeConfig(max_length_ratio=1.5, max_length_offset=3))
    greedy = greedy_search(Seq2SeqSteps(model), src, lengths, limits)
    beam = beam_search(Seq2SeqSteps(model), src, lengths, limits, beam_size=1, alpha=0.0)
    assert [g.tokens for g in greedy] == [b[0].tokens for b in beam]
    assert len({len(g.tokens) for g in greedy}) > 3  # varied outputs: the comparison means something
    for g, (b,) in zip(greedy, beam, strict=True):
        assert math.isclose(g.log_prob, b.log_prob, rel_tol=1e-5, abs_tol=1e-5)


def test_a_greedy_outputs_score_means_what_a_beams_does(random_model_and_sources):
    # the score of `translate --beam-size 1` is the log-probability over GNMT's length penalty, as a
    # beam's: n-best scores mean the same at every beam size (README)
    model, sources = random_model_and_sources
    cfg = DecodeConfig(beam_size=1, length_penalty=1.0, max_length_ratio=1.5, max_length_offset=3)
    greedy = decode_corpus(Seq2SeqSteps(model), sources, cfg, nbest=1)
    src, lengths = source_batch(sources, range(len(sources)))
    limits = max_output_lengths(lengths, cfg)
    beam = beam_search(Seq2SeqSteps(model), src, lengths, limits, beam_size=1, alpha=1.0)
    for (g,), (b,) in zip(greedy, beam, strict=True):
        assert g.tokens == b.tokens and math.isclose(g.score, b.score, rel_tol=1e-5, abs_tol=1e-5)
        assert g.score != g.log_prob or g.log_prob == 0.0  # the penalty was applied


@pytest.mark.parametrize("beam_size", [1, 4])
def test_batched_beam_equals_one_at_a_time(random_model_and_sources, beam_size):
    model, sources = random_model_and_sources
    cfg = DecodeConfig(beam_size=beam_size, batch_size=16, max_length_ratio=1.5, max_length_offset=3)
    single_cfg = DecodeConfig(beam_size=beam_size, batch_size=1, max_length_ratio=1.5, max_length_offset=3)
    for nbest in {1, beam_size}:
        batched = decode_corpus(Seq2SeqSteps(model), sources, cfg, nbest=nbest)
        single = [decode_corpus(Seq2SeqSteps(model), [s], single_cfg, nbest=nbest)[0] for s in sources]
        assert [[h.tokens for h in hs] for hs in batched] == [[h.tokens for h in hs] for hs in single]
    for hypotheses in batched:  # nbest = the beam size: every sentence has them all
        assert len(hypotheses) == beam_size
        scores = [h.score for h in hypotheses]
        assert scores == sorted(scores, reverse=True)


@dataclass
class _Steps:
    """Decoder state of the scripted model: how many tokens each row has produced."""

    t: np.ndarray

    def select(self, index):
        return _Steps(self.t[index])


class ScriptedModel:
    """Token 4 = A, 5 = B. After BOS: EOS .5, A .45, B .05. After A/B: A .99 until step 4, then EOS .99.

    The empty output has the best raw log-probability (log .5 = -0.69) but "A A A A" (-0.84 over five
    tokens) wins once scores are divided by GNMT's length penalty with alpha 1."""

    vocab = 6

    def encode(self, src, src_lengths):
        return _Steps(np.zeros(len(src), dtype=np.int64)), _Steps(np.zeros(len(src), dtype=np.int64))

    def step(self, prev, state, encoded):
        probs = np.zeros((len(prev), self.vocab), dtype=np.float32)
        for row, (token, t) in enumerate(zip(prev.tolist(), state.t.tolist(), strict=True)):
            if token == BOS:
                probs[row, EOS], probs[row, 4], probs[row, 5] = 0.5, 0.45, 0.05
            elif t < 4:
                probs[row, 4], probs[row, EOS], probs[row, 5] = 0.99, 0.005, 0.005
            else:
                probs[row, EOS], probs[row, 4], probs[row, 5] = 0.99, 0.005, 0.005
        with np.errstate(divide="ignore"):
            return np.log(probs), _Steps(state.t + 1), None


@pytest.mark.parametrize(("alpha", "winner"), [(0.0, []), (1.0, [4, 4, 4, 4])])
def test_length_penalty_changes_the_winner(alpha, winner):
    src, lengths = np.array([[7, EOS]]), np.array([2])
    (hypotheses,) = beam_search(ScriptedModel(), src, lengths, np.array([10]), 2, alpha, nbest=2)
    assert hypotheses[0].tokens == winner
    assert {tuple(h.tokens) for h in hypotheses} == {(), (4, 4, 4, 4)}
    long = next(h for h in hypotheses if h.tokens)
    assert math.isclose(long.log_prob, math.log(0.45) + 4 * math.log(0.99), rel_tol=1e-5)
    assert math.isclose(long.score, long.log_prob / ((5 + 5) / 6) ** alpha, rel_tol=1e-5)


class _CountingSteps:
    """A model's steps that count the rows they compute."""

    def __init__(self, steps):
        self.steps, self.rows = steps, 0

    def encode(self, src, src_lengths):
        return self.steps.encode(src, src_lengths)

    def step(self, prev, state, encoded):
        self.rows += len(prev)
        return self.steps.step(prev, state, encoded)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_early_stopping_keeps_the_nbest_of_the_whole_search(random_model_and_sources, alpha):
    model, sources = random_model_and_sources
    src, lengths = source_batch(sources, range(len(sources)))
    limits = max_output_lengths(lengths, DecodeConfig(max_length_ratio=1.5, max_length_offset=3))
    whole_steps = _CountingSteps(Seq2SeqSteps(model))
    whole = beam_search(whole_steps, src, lengths, limits, 4, alpha, stop_early=False)
    assert all(len(h) == 4 for h in whole)
    for nbest in (1, 2):
        early_steps = _CountingSteps(Seq2SeqSteps(model))
        early = beam_search(early_steps, src, lengths, limits, 4, alpha, nbest=nbest)
        assert [[(h.tokens, h.score) for h in hs[:nbest]] for hs in early] == [
            [(h.tokens, h.score) for h in hs[:nbest]] for hs in whole
        ]
        assert early_steps.rows < whole_steps.rows  # it did stop early
        assert any(len(h) < 4 for h in early)


def test_early_stopping_waits_while_a_longer_output_may_win():
    """After the first step the empty output (-0.69) is finished and "A" is open at -0.80: without a
    length penalty nothing open can overtake it; with alpha 1 "A ..." may still (and does) win."""
    src, lengths = np.array([[7, EOS]]), np.array([2])
    (plain,) = beam_search(ScriptedModel(), src, lengths, np.array([10]), beam_size=2, alpha=0.0)
    assert [h.tokens for h in plain] == [[]]
    (penalised,) = beam_search(ScriptedModel(), src, lengths, np.array([10]), beam_size=2, alpha=1.0)
    assert penalised[0].tokens == [4, 4, 4, 4]


def test_nbest_output_format_and_best_equals_plain(reverse_model, reverse_data):
    sources = open(f"{reverse_data}/dev.src").read().splitlines()[:20] + [""]
    text = "\n".join(sources) + "\n"
    plain = seqkit_here("translate", reverse_model, stdin=text)
    nbest = seqkit_here("translate", reverse_model, "--nbest", "3", stdin=text)
    assert plain.returncode == 0 and nbest.returncode == 0, nbest.stderr.decode()
    records = [json.loads(line) for line in nbest.stdout.decode().splitlines()]
    assert len(records) == len(sources)
    assert records[-1] == {"hypotheses": []}  # an empty line has no hypotheses
    assert [
        r["hypotheses"][0]["text"] if r["hypotheses"] else "" for r in records
    ] == plain.stdout.decode().split("\n")[:-1]
    for record in records[:-1]:
        scores = [h["score"] for h in record["hypotheses"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_greedy_flag_and_bad_decoding_options(reverse_model):
    greedy = seqkit_here("translate", reverse_model, "--beam-size", "1", stdin="a b c\n")
    assert greedy.stdout == b"c b a\n"
    result = seqkit_here("translate", reverse_model, "--nbest", "6", stdin="a\n")
    assert result.returncode == 1 and b"--nbest 6" in result.stderr and b"beam size (5)" in result.stderr
    result = seqkit_here("translate", reverse_model, "--length-penalty", "-1", stdin="a\n")
    assert result.returncode == 1 and b"decode.length_penalty" in result.stderr
    # ((5 + length) / 6) ** alpha overflowed: an OverflowError's traceback (the server's 500 in plain text)
    for option in ("--length-penalty", "--coverage-penalty"):
        result = seqkit_here("translate", reverse_model, option, "1e308", stdin="a b c\n")
        assert_one_line_error(result, f"decode.{option[2:].replace('-', '_')}", "0 (none) to 50")


def test_top_k_is_torch_topk():
    """The numpy selection an ONNX export searches with, against torch's (which a torch model's steps bring)."""
    values = torch.randn(7, 300, generator=torch.Generator().manual_seed(1))
    values[2, :] = float("-inf")
    values[2, 5] = 0.0
    best, columns = top_k(values.numpy(), 10)
    expected = values.topk(10, dim=1)
    np.testing.assert_array_equal(best, expected.values.numpy())
    finite = np.isfinite(best)
    np.testing.assert_array_equal(columns[finite], expected.indices.numpy()[finite])


def _ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _repeats_an_ngram(tokens: list[int], n: int) -> bool:
    grams = _ngrams(tokens, n)
    return len(set(grams)) < len(grams)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_no_repeat_ngram_leaves_no_ngram_twice(random_model_and_sources, beam_size):
    model, sources = random_model_and_sources
    base = DecodeConfig(beam_size=beam_size, max_length_ratio=3.0, max_length_offset=6, length_penalty=0.0)
    plain = decode_corpus(Seq2SeqSteps(model), sources, base, nbest=beam_size)
    assert sum(_repeats_an_ngram(h.tokens, 2) for hs in plain for h in hs) > 3  # the untrained model loops
    for n in (1, 2, 3):
        ruled = decode_corpus(Seq2SeqSteps(model), sources, replace(base, no_repeat_ngram=n), nbest=beam_size)
        assert not any(_repeats_an_ngram(h.tokens, n) for hs in ruled for h in hs)


def test_the_rules_against_repeats_keep_beam_one_equal_to_greedy(random_model_and_sources):
    model, sources = random_model_and_sources
    src, lengths = source_batch(sources, range(len(sources)))
    limits = max_output_lengths(lengths, DecodeConfig(max_length_ratio=3.0, max_length_offset=6))
    for rules in (Repeats(no_repeat_ngram=2), Repeats(penalty=1.5), Repeats(3, 1.2)):
        greedy = greedy_search(Seq2SeqSteps(model), src, lengths, limits, repeats=rules)
        beam = beam_search(Seq2SeqSteps(model), src, lengths, limits, 1, 0.0, repeats=rules)
        assert [g.tokens for g in greedy] == [b[0].tokens for b in beam]


def test_repetition_penalty_repeats_less_and_one_changes_nothing(random_model_and_sources):
    model, sources = random_model_and_sources
    base = DecodeConfig(beam_size=1, max_length_ratio=3.0, max_length_offset=6)
    plain = [h[0].tokens for h in decode_corpus(Seq2SeqSteps(model), sources, base)]
    same = decode_corpus(Seq2SeqSteps(model), sources, replace(base, repetition_penalty=1.0))
    assert [h[0].tokens for h in same] == plain
    penalised = [
        h[0].tokens
        for h in decode_corpus(Seq2SeqSteps(model), sources, replace(base, repetition_penalty=3.0))
    ]

    def repeated(outputs):  # pieces that an output already had
        return sum(len(t) - len(set(t)) for t in outputs) / sum(len(t) for t in outputs)

    assert repeated(penalised) < 0.5 * repeated(plain)


def test_coverage_penalty_is_added_to_each_finished_hypothesis(random_model_and_sources):
    model, sources = random_model_and_sources
    src, lengths = source_batch(sources, range(len(sources)))
    limits = max_output_lengths(lengths, DecodeConfig(max_length_ratio=1.5, max_length_offset=3))
    beta = 0.4
    results = beam_search(
        Seq2SeqSteps(model), src, lengths, limits, 4, 1.0, True, nbest=4, coverage_beta=beta
    )
    for hypotheses in results:
        for h in hypotheses:
            received = h.attention.sum(axis=0)  # (src_len,) over the hypothesis's steps, EOS included
            expected = (
                h.log_prob / ((5 + len(h.tokens) + 1) / 6) + beta * np.log(np.minimum(received, 1)).sum()
            )
            assert math.isclose(h.score, expected, rel_tol=1e-4, abs_tol=1e-4)
    plain = beam_search(Seq2SeqSteps(model), src, lengths, limits, 4, 1.0, nbest=4)
    assert [h[0].tokens for h in results] != [h[0].tokens for h in plain]  # it re-ranks


def test_coverage_penalty_needs_a_beam_not_a_sample():
    from seqkit.config import from_dict
    from seqkit.errors import ConfigError

    with pytest.raises(ConfigError, match="coverage_penalty re-ranks"):
        from_dict({"decode": {"beam_size": 1, "coverage_penalty": 0.2}})
    with pytest.raises(ConfigError, match="and sampling .decode.temperature > 0. draws one"):
        from_dict({"decode": {"temperature": 1.0, "coverage_penalty": 0.2}})


def test_the_rules_against_loops_on_the_command_line_equal_the_api(reverse_model, reverse_data):
    import seqkit

    sources = open(f"{reverse_data}/dev.src").read().splitlines()[:12]
    options = {"no_repeat_ngram": 2, "repetition_penalty": 1.3, "coverage_penalty": 0.2}
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    run = seqkit_here("translate", reverse_model, "--beam-size", "3", *flags, stdin="\n".join(sources) + "\n")
    assert run.returncode == 0, run.stderr.decode()
    expected = [r.text for r in seqkit.load(reverse_model).translate(sources, beam_size=3, **options)]
    assert run.stdout.decode().splitlines() == expected
    greedy = seqkit_here(
        "translate", reverse_model, "--beam-size", "1", "--coverage-penalty", "0.2", stdin="a\n"
    )
    assert greedy.returncode != 0 and "coverage_penalty re-ranks" in greedy.stderr.decode()


# --- sampling instead of search (decode.temperature > 0) ----------------------------------------------


def _tokens(hypotheses) -> list[list[int]]:
    return [options[0].tokens for options in hypotheses]


def test_sampling_from_the_top_piece_is_greedy_and_each_line_samples_alone(random_model_and_sources):
    model, sources = random_model_and_sources
    model = copy.deepcopy(model)
    with torch.no_grad():  # as training leaves them: sampling never writes PAD or BOS, the argmax might
        model.decoder.output.bias[[0, BOS]] = -30.0
    steps = Seq2SeqSteps(model)
    limits = {"max_length_ratio": 1.5, "max_length_offset": 3}
    greedy = _tokens(decode_corpus(steps, sources, DecodeConfig(beam_size=1, **limits)))
    top_one = DecodeConfig(beam_size=5, temperature=1.0, top_k=1, **limits)
    assert _tokens(decode_corpus(steps, sources, top_one)) == greedy

    sampling = DecodeConfig(temperature=1.0, batch_size=16, **limits)
    sampled = _tokens(decode_corpus(steps, sources, sampling))
    alone = [_tokens(decode_corpus(steps, [source], sampling))[0] for source in sources]
    assert sampled == alone  # each line's generator is its own: batches change nothing
    assert sum(s != g for s, g in zip(sampled, greedy, strict=True)) > len(sources) / 2
    reseeded = _tokens(decode_corpus(steps, sources, replace(sampling, seed=2)))
    assert sum(s != r for s, r in zip(sampled, reseeded, strict=True)) > len(sources) / 2
    assert _tokens(decode_corpus(steps, sources, sampling)) == sampled  # the same seed, the same samples
    twice = _tokens(decode_corpus(steps, [sources[0], sources[1], sources[0]], sampling))
    assert twice[0] == twice[2] == sampled[0]  # two equal lines, the same sample


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_sampled_pieces_follow_the_distribution_at_the_temperature(temperature):
    from seqkit.decoding.sampling import PieceSampler

    # a Zipf distribution over 40 pieces in a shuffled order, as a step's log-probabilities (1, 40)
    probs = 1.0 / np.arange(1, 41)
    np.random.default_rng(5).shuffle(probs)
    log_probs = np.log(probs / probs.sum()).astype(np.float32)[None, :]
    wanted = np.exp(log_probs[0].astype(np.float64) / temperature)
    wanted[[0, BOS]] = 0  # PAD and BOS are never written
    wanted /= wanted.sum()
    draws = 4000  # 4,000 sentences of their own (their sources differ), all at the same step
    sampler = PieceSampler(DecodeConfig(temperature=temperature), [[i] for i in range(draws)])
    chosen = sampler(np.repeat(log_probs, draws, axis=0), np.arange(draws), None)
    counts = np.bincount(chosen, minlength=40) / draws
    # total variation: about 0.03 expected from 4,000 draws; the other temperature's distribution is
    # 0.42 away, the right one shifted by a column 0.61 (at 1.0) and 0.94 (at 0.5)
    assert 0.5 * np.abs(counts - wanted).sum() < 0.08
    assert counts[0] == counts[BOS] == 0


def test_sampling_settings_stay_with_translate(reverse_model, reverse_data):
    """A model whose config samples still validates and inspects by search, refuses a shortlist, and
    sampling settings without a temperature are an error rather than ignored."""
    import seqkit
    from seqkit.config import from_dict
    from seqkit.data.corpus import tokenize_parallel
    from seqkit.errors import ConfigError
    from seqkit.training.seq2seq import validate

    loaded = seqkit.load(reverse_model)
    sources = Path(reverse_data, "dev.src").read_text().splitlines()[:30]
    targets = Path(reverse_data, "dev.tgt").read_text().splitlines()[:30]
    dev = tokenize_parallel(loaded.tokenizer, sources, targets, None)
    searching = loaded.config
    sampling = replace(searching, decode=replace(searching.decode, temperature=3.0))
    assert validate(loaded.module, loaded.tokenizer, dev, sampling) == validate(
        loaded.module, loaded.tokenizer, dev, searching
    )
    assert loaded.translate(sources, temperature=3.0) != loaded.translate(sources, beam_size=1)
    with pytest.raises(ConfigError, match="shortlist with sampling"):
        from_dict({"decode": {"temperature": 1.0, "shortlist": True}})
    with pytest.raises(ConfigError, match="between 0.01 and 100"):
        from_dict({"decode": {"temperature": 1e-310}})
    with pytest.raises(ConfigError, match="top_p is a sampling setting"):
        loaded.translate(sources, top_p=0.5)
    # the streaming path's settings too: they were returned, and the search ignored top_k
    with pytest.raises(ConfigError, match="top_k is a sampling setting"):
        loaded.decode_settings(top_k=3)
    run = seqkit_here("translate", reverse_model, "--seed", "4", stdin="a b c\n")
    assert run.returncode != 0 and "--seed is a sampling setting" in run.stderr.decode()
    assert len(run.stderr.decode().strip().splitlines()) == 1


def _given_and_whole_steps(model: Seq2Seq, unseen: list[int]) -> tuple[Seq2SeqSteps, Seq2SeqSteps]:
    """A copy of `model` whose output layer excludes `unseen` (as training excludes pieces that are no
    target), as steps over its given pieces and as steps over its whole layer (as before the exclusion)."""
    from seqkit.models.softmax import exclude_unseen

    model = copy.deepcopy(model)
    seen = torch.ones(model.decoder.output.out_features, dtype=torch.bool)
    seen[unseen] = False
    exclude_unseen(model.decoder.output, seen)
    steps, whole = Seq2SeqSteps(model), Seq2SeqSteps(model)
    whole._given, whole._given_layer = None, None
    return steps, whole


@pytest.mark.parametrize("beam_size", [1, 3])
def test_decoding_over_the_pieces_training_saw_equals_the_whole_layer(random_model_and_sources, beam_size):
    """The output layer computes only the pieces training gave it (models/softmax.py): the same outputs
    and scores as the whole layer, whose other pieces have probability 0."""
    model, sources = random_model_and_sources
    steps, whole = _given_and_whole_steps(model, [0, 2, *range(10, 40, 3)])
    assert steps.columns(None).tolist() == sorted(set(range(40)) - {0, 2, *range(10, 40, 3)})
    cfg = DecodeConfig(beam_size=beam_size, batch_size=16, max_length_ratio=1.5, max_length_offset=3)
    restricted, full = decode_corpus(steps, sources, cfg), decode_corpus(whole, sources, cfg)
    assert [[h.tokens for h in s] for s in restricted] == [[h.tokens for h in s] for s in full]
    assert not any(t in range(10, 40, 3) for s in restricted for h in s for t in h.tokens)
    for s, t in zip(restricted, full, strict=True):
        for a, b in zip(s, t, strict=True):
            assert math.isclose(a.score, b.score, rel_tol=1e-5, abs_tol=1e-5)


def test_the_given_pieces_under_bf16_autocast_are_the_whole_layers(random_model_and_sources):
    """Under autocast the given rows are cast once and computed in bf16, as the whole layer would be: the
    same greedy outputs (bf16 rounds the same rows the same way)."""
    model, sources = random_model_and_sources
    steps, whole = _given_and_whole_steps(model, [0, 2, *range(10, 40, 4)])
    cfg = DecodeConfig(beam_size=1, batch_size=16, max_length_ratio=1.5, max_length_offset=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        restricted, full = decode_corpus(steps, sources, cfg), decode_corpus(whole, sources, cfg)
        features = torch.randn(5, 24)
        logits = steps._given_layer(features)
    assert logits.dtype == torch.bfloat16
    assert [s[0].tokens for s in restricted] == [s[0].tokens for s in full]


class MarkovModel:
    """Steps whose next-piece distribution depends on the previous piece alone: `table[prev]` (probs over
    the 6 pieces PAD UNK BOS EOS A=4 B=5); pieces with no row end for sure."""

    vocab = 6

    def __init__(self, table: dict[int, dict[int, float]]):
        self.table = table

    def encode(self, src, src_lengths):
        return _Steps(np.zeros(len(src), dtype=np.int64)), _Steps(np.zeros(len(src), dtype=np.int64))

    def step(self, prev, state, encoded):
        probs = np.zeros((len(prev), self.vocab), dtype=np.float32)
        for row, token in enumerate(prev.tolist()):
            for piece, p in self.table.get(token, {EOS: 1.0}).items():
                probs[row, piece] = p
        with np.errstate(divide="ignore"):
            return np.log(probs), _Steps(state.t + 1), None


def test_a_beam_ranks_twice_its_width_so_that_ends_leave_it_full():
    """After BOS: EOS .5, A .3, B .2; A goes on (.99), B ends. With k = 2 the first step's best two are EOS
    and A: ranking only k continuations left "B" out of the beam, and "A" (-5.8) took the second place
    that "B" (-1.61) has."""
    model = MarkovModel({BOS: {EOS: 0.5, 4: 0.3, 5: 0.2}, 4: {4: 0.99, EOS: 0.01}, 5: {EOS: 1.0}})
    src, lengths = np.array([[7, EOS]]), np.array([2])
    (hypotheses,) = beam_search(model, src, lengths, np.array([10]), 2, 0.0, nbest=2, stop_early=False)
    assert [h.tokens for h in hypotheses] == [[], [5]]
    assert [h.log_prob for h in hypotheses] == pytest.approx([math.log(0.5), math.log(0.2)], rel=1e-5)


@pytest.mark.parametrize("beam_size", [2, 3, 4, 5, 6])
def test_a_beam_wider_than_the_possible_outputs_finishes_only_real_ones(beam_size):
    # fewer possible continuations than beams: the empty beams (score -inf) never finish, even on an EOS
    model = MarkovModel({BOS: {EOS: 0.6, 4: 0.4}, 4: {EOS: 0.7, 5: 0.3}})
    src, lengths = source_batch([[7], [8, 9]], range(2))
    for hypotheses in beam_search(model, src, lengths, np.array([4, 4]), beam_size, 1.0, nbest=beam_size):
        assert all(math.isfinite(h.score) and math.isfinite(h.log_prob) for h in hypotheses)
        assert sorted(h.tokens for h in hypotheses) == [[], [4], [4, 5]][: len(hypotheses)]
        assert len({tuple(h.tokens) for h in hypotheses}) == len(hypotheses)


def test_decode_corpus_applies_the_coverage_penalty(random_model_and_sources):
    model, sources = random_model_and_sources
    cfg = DecodeConfig(beam_size=4, length_penalty=1.0, coverage_penalty=0.4, max_length_ratio=1.5,
                       max_length_offset=3, batch_size=64)  # fmt: skip
    decoded = decode_corpus(Seq2SeqSteps(model), sources, cfg, nbest=1)
    src, lengths = source_batch(sources, range(len(sources)))
    limits = max_output_lengths(lengths, cfg)
    direct = beam_search(Seq2SeqSteps(model), src, lengths, limits, 4, 1.0, nbest=1, coverage_beta=0.4)
    for d, b in zip(decoded, direct, strict=True):
        assert d[0].tokens == b[0].tokens and math.isclose(d[0].score, b[0].score, rel_tol=1e-5, abs_tol=1e-5)


class _RowCounter:
    def __init__(self, steps):
        self.steps, self.rows, self.calls, self.first = steps, 0, 0, None

    def encode(self, src, src_lengths):
        return self.steps.encode(src, src_lengths)

    def step(self, prev, state, encoded):
        self.rows += len(prev)
        self.calls += 1
        self.first = self.first or len(prev)
        return self.steps.step(prev, state, encoded)


def test_finished_sentences_leave_the_batch(random_model_and_sources):
    """Greedy and beam search stop computing the rows of sentences that are done (no output changes: the
    other tests; here, that the work shrinks)."""
    model, sources = random_model_and_sources
    src, lengths = source_batch(sources, range(len(sources)))
    limits = max_output_lengths(lengths, DecodeConfig(max_length_ratio=1.5, max_length_offset=3))
    greedy = _RowCounter(Seq2SeqSteps(model))
    greedy_search(greedy, src, lengths, limits)
    assert greedy.rows < 0.8 * greedy.calls * greedy.first
    beam = _RowCounter(Seq2SeqSteps(model))
    beam_search(beam, src, lengths, limits, 4, 1.0, stop_early=False)
    assert beam.rows < 0.8 * beam.calls * beam.first


class AttendingModel:
    """Steps whose log-probabilities and attention depend on the sentence (its first piece and length), the
    step and the previous piece alone, so that a hypothesis's attention follows from its own pieces: step
    t attends (prev + 1) / 100 to every source piece (prev: BOS, then each piece). Pieces 4 to 9; EOS
    grows likelier with every step, so the sentences of a batch end at different steps."""

    vocab = 10

    def encode(self, src, src_lengths):
        self.src_len = src.shape[1]  # (the padded batch's: the search cuts each output's to its source)
        return _Steps(src[:, 0] * 100 + src_lengths), _Steps(np.zeros(len(src), dtype=np.int64))

    def log_probs(self, sentence: int, prev: int, t: int) -> np.ndarray:
        logits = np.random.default_rng([sentence, prev, t]).normal(0.0, 2.0, self.vocab)
        logits[[0, 1, BOS]] = -np.inf
        logits[EOS] += 0.8 * t - 2.0
        return (logits - np.logaddexp.reduce(logits[np.isfinite(logits)])).astype(np.float32)

    @staticmethod
    def weights(prev: int, src_len: int) -> np.ndarray:
        return np.full(src_len, (prev + 1) / 100, dtype=np.float32)

    def step(self, prev, state, encoded):
        rows = zip(encoded.t.tolist(), prev.tolist(), state.t.tolist(), strict=True)
        log_probs = np.stack([self.log_probs(sentence, token, t) for sentence, token, t in rows])
        weights = np.stack([self.weights(token, self.src_len) for token in prev.tolist()])
        return log_probs, _Steps(state.t + 1), weights

    def attention_of(self, tokens: list[int], src_length: int) -> np.ndarray:
        """(len(tokens) + 1, src_length): the steps that made the pieces, and the EOS step."""
        return np.stack([self.weights(prev, src_length) for prev in [BOS, *tokens]])


def test_each_hypothesis_carries_the_attention_of_its_own_steps():
    """Greedy search (whose finished sentences leave the batch) and beam search (whose beams are reordered
    every step): each output's attention is that of the steps that made its pieces and its EOS, cut to its
    source, and the coverage penalty sums that attention."""
    sources = [[4 + i % 6] * (1 + i % 5) for i in range(12)]
    src, lengths = source_batch(sources, range(len(sources)))
    model = AttendingModel()
    limits = np.full(len(sources), 8)
    greedy = greedy_search(model, src, lengths, limits, with_attention=True)
    assert len({len(g.tokens) for g in greedy}) > 2  # the sentences end at different steps
    for g, n in zip(greedy, lengths.tolist(), strict=True):
        np.testing.assert_allclose(g.attention, model.attention_of(g.tokens, n))
    beta = 0.3
    beams = beam_search(model, src, lengths, limits, 3, 1.0, True, nbest=3, coverage_beta=beta)
    assert len({tuple(h.tokens) for hs in beams for h in hs}) > 20
    for hypotheses, n in zip(beams, lengths.tolist(), strict=True):
        for h in hypotheses:
            expected = model.attention_of(h.tokens, n)
            np.testing.assert_allclose(h.attention, expected)
            coverage = beta * np.log(np.minimum(expected.sum(axis=0), 1.0)).sum()
            score = h.log_prob / ((5 + len(h.tokens) + 1) / 6) + coverage
            assert math.isclose(h.score, score, rel_tol=1e-5, abs_tol=1e-5)


def test_the_piece_sampler_keeps_unk_bans_pad_and_bos_by_column_and_applies_top_p():
    """A translation may sample UNK (as its greedy output may) but never PAD or BOS, whose columns are found
    through the column ids when the steps give only some pieces; top_p keeps only the nucleus."""
    from seqkit.decoding.sampling import PieceSampler

    def draws(log_probs, ids, **options):
        sentences = 300  # each its own generator (their sources differ)
        sampler = PieceSampler(DecodeConfig(temperature=1.0, **options), [[i] for i in range(sentences)])
        with np.errstate(divide="ignore"):
            rows = np.repeat(np.log(np.asarray(log_probs, dtype=np.float64))[None], sentences, axis=0)
        return set(sampler(rows.astype(np.float32), np.arange(sentences), ids).tolist())

    # every piece its own column: PAD UNK BOS EOS A B
    assert draws([0.3, 0.5, 0.1, 0.05, 0.03, 0.02], None, top_k=1) == {UNK}
    assert draws([0.5, 0.05, 0.4, 0.03, 0.02, 0.0], None) <= {UNK, EOS, 4}
    # the columns of pieces UNK BOS EOS A B 7 (no PAD): BOS is column 1, UNK column 0
    ids = np.array([UNK, BOS, EOS, 4, 5, 7])
    assert draws([0.5, 0.3, 0.1, 0.05, 0.03, 0.02], ids, top_k=1) == {0}
    assert draws([0.02, 0.9, 0.03, 0.03, 0.01, 0.01], ids, top_k=2) == {2, 3}  # not BOS, EOS in
    # the nucleus: the most likely piece (.6) alone reaches .5; all three without top_p
    assert draws([0.0, 0.0, 0.0, 0.6, 0.3, 0.1], None, top_p=0.5) == {3}
    assert draws([0.0, 0.0, 0.0, 0.6, 0.3, 0.1], None) == {3, 4, 5}
