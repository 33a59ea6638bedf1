"""What a third mutation review found unchecked: each test fails on a one-line change of the library that
the suite let pass (rules over a subset of columns, sampling's edges, the scores beside scikit-learn's,
the token arrays' limits, a run's progress)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqkit.config import DecodeConfig, TrainConfig
from seqkit.data.arrays import ArrayWriter, TokenArrays, id_dtype
from seqkit.data.tokenizer import UNK
from seqkit.decoding.rules import Repeats
from seqkit.decoding.sampling import PieceSampler, choose_token, sampling_option_unused
from seqkit.scoring.classification import label_scores, regression_scores
from seqkit.training.progress import Limits, Progress, Window


def test_the_repetition_rules_find_a_piece_among_a_shortlists_columns():
    # the columns are some pieces (a shortlist, or the pieces training gave the output layer): the rules
    # found no column of a piece past the first, and did nothing
    ids = np.array([1, 3, 5, 7, 9])  # column -> piece
    log_probs = np.full((1, 5), -1.0)
    Repeats(no_repeat_ngram=2, penalty=2.0).apply(log_probs, np.array([[5, 7, 5]]), ids)
    assert log_probs[0].tolist() == [-1.0, -1.0, -2.0, -np.inf, -1.0]  # 7 completes "5 7"; 5 and 7 seen


def test_sampling_at_its_edges():
    # the nucleus of top_p 0.5 over [0.5, 0.5] is the first piece alone
    for seed in range(30):
        assert choose_token(np.log([0.5, 0.5]), 1.0, 0, 0.5, np.random.default_rng(seed), never=()) == 0
    # a language model never samples the unknown piece, however likely
    probs = np.array([1e-9, 0.9, 1e-9, 0.05, 0.05])
    assert all(choose_token(np.log(probs), 1.0, 0, 1.0, np.random.default_rng(s)) != UNK for s in range(30))
    # a translation bans PAD and BOS by piece, not by column: column 2 here is piece 7
    sampler = PieceSampler(DecodeConfig(temperature=1.0, top_k=1), [[5, 6]])
    assert sampler(np.log([[0.1, 0.1, 0.7, 0.1]]), np.array([0]), np.array([UNK, 3, 7, 8])).tolist() == [2]
    # a seed of 0 (or a top_k of 0) given at temperature 0 is given all the same
    assert sampling_option_unused(0.0, {"seed": 0}) == "seed"


def test_scores_beside_scikit_learns_on_the_small_cases():
    from sklearn.metrics import f1_score

    # macro-F1 over the labels that occur in the gold or the predictions (scikit-learn's)
    gold, predicted = ["a", "a"], ["a", "b"]
    assert label_scores(gold, predicted, ("a", "b", "c"))["macro_f1"] == pytest.approx(
        f1_score(gold, predicted, average="macro")
    )
    assert label_scores(["a"], ["zz"], ("a",))["labels"] == ["a", "zz"]  # the model's, then the others
    # MAPE skips zero targets, per output, and says how many it read
    scores = regression_scores(np.array([[1.0, 0.0], [2.0, 0.0]]), np.array([[2.0, 1.0], [2.0, 0.0]]))
    assert scores["mape"] == pytest.approx(50.0) and scores["mape_targets"] == 2


def test_token_arrays_at_their_limits(tmp_path):
    assert id_dtype(32768) == np.int16 and id_dtype(32769) == np.int32  # ids 0..32767 fit int16
    ids, offsets = np.array([5, 6, 16], "<i2"), np.array([0, 2, 3])
    assert TokenArrays(ids, offsets).whole(17) and not TokenArrays(ids, offsets).whole(16)
    assert not TokenArrays(ids, np.array([1, 2, 3])).whole(17)  # a cache that does not start at 0
    writer = ArrayWriter(tmp_path / "none", np.dtype("<i2"))  # every pair cleaned away: no rows
    writer.extend([])
    writer.close()
    assert len(TokenArrays.open(tmp_path / "none", np.dtype("<i2"))) == 0


def test_a_runs_progress_at_its_edges():
    progress = Progress()
    assert progress.record_validation(1.0) and not progress.record_validation(1.0)  # a tie is no gain
    assert progress.bad_validations == 1  # (early stopping counts it)
    assert Limits(TrainConfig(max_minutes=1.0), 10).fraction(5, 61.0) == 1.0  # never past the end
    window = Window()
    window.add(3.0, 2.0, 1, 0, 2.0, 1.0)
    window.add(3.0, 2.0, 1, 0, 4.0, 1.0)
    record = window.record(2, 0, 1e-3, 2.0)
    # the objective (label-smoothed) per token, the mean gradient norm of the steps
    assert (record.loss, record.grad_norm, record.ppl) == (3.0, 3.0, pytest.approx(math.exp(2.0)))


def test_the_argmax_never_picks_a_piece_ruled_out():
    # at temperature 0 too: a language model never writes the unknown piece, however likely
    probs = np.array([0.01, 0.9, 0.01, 0.04, 0.04])
    assert choose_token(np.log(probs), 0.0, 0, 1.0, np.random.default_rng(0)) == 3


def test_a_top_k_above_the_vocabulary_keeps_every_piece():
    probs = np.array([0.0, 0.0, 0.0, 0.0, 0.5, 0.3, 0.15, 0.05])
    log_probs = np.log(np.maximum(probs, 1e-9))
    rng = np.random.default_rng(0)
    drawn = {choose_token(log_probs, 1.0, 50, 1.0, rng) for _ in range(2000)}
    assert drawn == {4, 5, 6, 7}


def test_a_draw_at_the_bottom_of_the_range_never_picks_a_token_ruled_out():
    # a draw of 0.0 (Generator.random's range is [0, 1)) falls on the ruled-out pieces' zero-width steps
    class Lowest:
        def random(self) -> float:
            return 0.0

    probs = np.array([0.3, 0.3, 0.3, 0.05, 0.05])  # PAD, UNK, BOS are ruled out
    assert choose_token(np.log(probs), 1.0, 0, 1.0, Lowest()) == 3
    assert choose_token(np.log(probs), 1.0, 0, 0.5, Lowest()) == 3


def test_sampling_from_large_logits_or_at_a_low_temperature_is_well_defined():
    # logits serve as log-probabilities (the docstring): exp(1000) overflowed without the max taken off
    logits = np.array([0.0, 0.0, 0.0, 0.0, 1000.0, 999.0])
    rng = np.random.default_rng(0)
    drawn = np.array([choose_token(logits, 1.0, 0, 1.0, rng) for _ in range(2000)])
    assert set(drawn.tolist()) == {4, 5}
    assert abs((drawn == 4).mean() - math.e / (1 + math.e)) < 0.04
    # a flat distribution over 20,000 pieces at temperature 0.01: every score is below -900
    flat = np.full(20000, -math.log(20000), dtype=np.float32)
    assert 3 <= choose_token(flat, 0.01, 0, 1.0, np.random.default_rng(1)) < 20000


def test_a_language_models_context_starts_with_eos():
    from seqkit.config import GenerateConfig
    from seqkit.data.tokenizer import EOS
    from seqkit.decoding.sampling import sample

    class Steps:
        def __init__(self):
            self.started = None

        def start(self, tokens):
            self.started = tokens.tolist()
            return np.log(np.array([[0.0, 0.0, 0.0, 1.0, 0.0]]) + 1e-30), None

        def step(self, tokens, state):
            raise AssertionError("EOS first: no step")

    steps = Steps()
    assert sample(steps, [7, 8], GenerateConfig(temperature=1.0), np.random.default_rng(0)) == []
    assert steps.started == [[EOS, 7, 8]]
    sample(steps, [], GenerateConfig(temperature=1.0), np.random.default_rng(0))
    assert steps.started == [[EOS]]


def test_a_sampled_translation_may_hold_the_unknown_piece():
    # as its greedy output may (NEVER_TRANSLATED is PAD and BOS only)
    sampler = PieceSampler(DecodeConfig(temperature=1.0, top_k=1), [[5, 6]])
    assert sampler(np.log([[0.01, 0.9, 0.01, 0.04, 0.04]]), np.array([0]), None).tolist() == [UNK]
