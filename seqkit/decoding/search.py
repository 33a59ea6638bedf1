"""Decoding: token ids in, token ids out. Greedy and beam search over a model's `encode` / `step` pair
(a language model is sampled by decoding/sampling.py; the rules against repetition and the coverage
penalty are decoding/rules.py).

The search is plain numpy, so one search serves both ways of running a model: a torch model through
decoding/torch_steps.py and an exported ONNX model through export/runtime.py (which never imports
torch). An export therefore decodes by the same rules as its model, not by a copy of them. A model is
searched through its *steps*:

    encode(src (batch, src_len) int64, src_lengths (batch,) int64) -> encoded, state
    step(prev (rows,) int64, state, encoded) -> log_probs (rows, vocab) float32 (the search may write
        into it), new state, attention weights (rows, src_len) float32
    encoded.select(index), state.select(index): the rows `index` (int64 array) of every array
    top_k(values (rows, n) float32, k) -> (values, columns) of each row's k largest, largest first:
        optional (numpy's `top_k` below); torch's topk and onnxruntime's TopK take 2.4 ms where numpy takes
        5.9 (64 sentences x 5 beams x 4,000 pieces; bench/README.md)
    columns(encoded) -> (n,) int64: optional; the target ids that the columns of `step`'s log_probs stand
        for, when a shortlist restricts them (decoding/shortlist.py); without it, column = id

Every sentence has its own length limit (`max_length_ratio * source length + offset`), so a sentence
decodes to the same output alone or in any batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import overload

import numpy as np

from seqkit.config import DecodeConfig
from seqkit.data.tokenizer import BOS, EOS, PAD
from seqkit.decoding.rules import Repeats, coverage_penalty
from seqkit.decoding.sampling import PieceSampler


def max_output_lengths(src_lengths: np.ndarray, cfg: DecodeConfig) -> np.ndarray:
    """(batch,) source lengths (with EOS) -> (batch,) the most output pieces each may get."""
    pieces = cfg.max_length_ratio * (np.asarray(src_lengths) - 1)
    # (+1e-6: 2.3 x 100 is 229.99999999999997 in floating point, whose floor is one piece short of 230)
    lengths = np.floor(pieces + 1e-6).astype(np.int64) + cfg.max_length_offset
    # at least one step: with none (offset 0, a short source) the output was empty, with log-prob 0: the
    # "best" score a search can give
    return np.maximum(lengths, 1)


def source_batch(src_ids: Sequence[list[int]], indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Sources `indices` with EOS added -> src (batch, src_len) int64 padded with PAD, src_lengths (batch,)."""
    rows = [list(src_ids[i]) + [EOS] for i in indices]
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    src = np.full((len(rows), int(lengths.max())), PAD, dtype=np.int64)
    for i, row in enumerate(rows):
        src[i, : len(row)] = row
    return src, lengths


def _column_ids(steps, encoded) -> np.ndarray | None:
    """What `columns` says (None: every column is its own id)."""
    return steps.columns(encoded) if hasattr(steps, "columns") else None


def _strip(tokens: list[int]) -> list[int]:
    return tokens[: tokens.index(EOS)] if EOS in tokens else tokens


@dataclass(frozen=True)
class Hypothesis:
    tokens: list[int]  # without EOS
    score: float  # log-probability divided by the length penalty: what the beam ranks by
    # sum of token log-probabilities, EOS included, as the search saw them: after the repetition penalty,
    # and an EOS forced at the length limit at no cost
    log_prob: float
    # (output steps, source length with EOS): the attention of each step that made a token or the EOS;
    # only when the search was asked for it
    attention: np.ndarray | None = None


@overload
def length_penalty(length: int, alpha: float) -> float: ...
@overload
def length_penalty(length: np.ndarray, alpha: float) -> np.ndarray: ...
def length_penalty(length, alpha):
    """GNMT's ((5 + length) / 6) ** alpha (of an int, or of each of an array's); alpha 0 ranks by raw
    log-probability."""
    return ((5 + length) / 6) ** alpha


def top_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """values (rows, n) -> the k largest of each row and their columns, largest first."""
    columns = np.argpartition(values, values.shape[1] - k, axis=1)[:, -k:]
    best = np.take_along_axis(values, columns, axis=1)
    order = np.argsort(-best, axis=1, kind="stable")
    return np.take_along_axis(best, order, axis=1), np.take_along_axis(columns, order, axis=1)


COMPACT_FRACTION = 0.25  # stop computing finished rows once they are this share of the batch


def greedy_search(
    steps,
    src: np.ndarray,
    src_lengths: np.ndarray,
    max_lengths: np.ndarray,
    with_attention: bool = False,
    repeats: Repeats | None = None,
    pick: Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray] | None = None,
) -> list[Hypothesis]:
    """src (batch, src_len) -> for each sentence the argmax token at every step, EOS removed.
    `repeats`: the rules against repetition change the log-probabilities the argmax (and the score) sees.
    `pick(log_probs (rows, columns), sentence of each row (rows,), column ids or None) -> columns (rows,)`
    chooses instead of the argmax (decoding/sampling.py's PieceSampler).

    Sentences that have ended are dropped from the batch now and then (each row's arithmetic is its own,
    so this changes no output), instead of being carried to the end of the longest sentence."""
    encoded, state = steps.encode(src, src_lengths)
    ids = _column_ids(steps, encoded)
    eos = EOS if ids is None else int(np.searchsorted(ids, EOS))  # the column of EOS
    batch = src.shape[0]
    rows = np.arange(batch)  # the sentence of each row still computed
    limits = np.asarray(max_lengths)
    prev = np.full(batch, BOS, dtype=np.int64)
    finished = np.zeros(batch, dtype=bool)  # per row
    log_prob = np.zeros(batch, dtype=np.float32)  # per sentence
    # + 1: the step that ends the longest-allowed sentences (as in beam search), so that every sentence
    # has its EOS step, whatever else shares its batch
    output = np.full((batch, int(limits.max()) + 1), EOS, dtype=np.int64)
    # (batch, output steps, src_len), filled as the rows step
    attention = np.zeros((batch, output.shape[1], src.shape[1]), np.float32) if with_attention else None
    for t in range(output.shape[1]):
        log_probs, state, weights = steps.step(prev, state, encoded)
        if attention is not None:
            attention[rows, t] = weights
        if repeats is not None:
            repeats.apply(log_probs, output[rows, :t], ids)
        at_limit = limits <= t  # a sentence at its own limit ends here, at no cost (as in beam search)
        best = log_probs.argmax(axis=1) if pick is None else pick(log_probs, rows, ids)
        chosen = np.where(at_limit, eos, best)  # (rows,) columns
        token_log_probs = np.take_along_axis(log_probs, chosen[:, None], axis=1)[:, 0]
        tokens = chosen if ids is None else ids[chosen]
        log_prob[rows] += np.where(at_limit | finished, np.float32(0), token_log_probs)
        output[rows, t] = np.where(finished, EOS, tokens)
        finished |= tokens == EOS
        if finished.all():
            break
        if finished.sum() >= COMPACT_FRACTION * len(rows):
            keep = np.flatnonzero(~finished)
            rows, limits, tokens, finished = rows[keep], limits[keep], tokens[keep], finished[keep]
            state, encoded = state.select(keep), encoded.select(keep)
        prev = tokens
    outputs = [_strip(row) for row in output.tolist()]
    hypotheses = [Hypothesis(tokens, lp, lp) for tokens, lp in zip(outputs, log_prob.tolist(), strict=True)]
    if attention is None:
        return hypotheses
    return [  # the steps that made the tokens, and the EOS step
        replace(h, attention=attention[i, : len(h.tokens) + 1, : int(src_lengths[i])])
        for i, h in enumerate(hypotheses)
    ]


def beam_search(
    steps,
    src: np.ndarray,
    src_lengths: np.ndarray,
    max_lengths: np.ndarray,
    beam_size: int,
    alpha: float,
    with_attention: bool = False,
    nbest: int = 1,
    stop_early: bool = True,
    repeats: Repeats | None = None,
    coverage_beta: float = 0.0,
) -> list[list[Hypothesis]]:
    """Beam search over all sentences and beams at once -> per sentence, up to `beam_size` finished
    hypotheses, best first; at least the `nbest` best of them are the ones the full search finds.

    Each step ranks the 2k best continuations of a sentence's k beams: those ending in EOS among the k best
    are finished; the k best that do not end become the new beams. A sentence is done when it has k finished
    hypotheses; the loop ends when every sentence is done. With k = 1 this is exactly greedy search.

    `stop_early`: a sentence is also done once no open beam can overtake its nbest-th best finished
    hypothesis (`_hopeless`), so its output is the same; it then has fewer than k hypotheses.
    `repeats` change each step's log-probabilities; `coverage_beta` adds GNMT's coverage penalty to the
    score of each finished hypothesis (it is never positive, so the early stop's bound still holds).
    Done sentences leave the batch now and then (as in greedy search: no output changes).
    """
    select_best = getattr(steps, "top_k", top_k)
    batch, k = src.shape[0], beam_size
    max_lengths = np.asarray(max_lengths)
    encoded, state = steps.encode(src, src_lengths)
    ids = _column_ids(steps, encoded)
    eos = EOS if ids is None else int(np.searchsorted(ids, EOS))  # the column of EOS
    rows = np.repeat(np.arange(batch), k)  # beam row -> sentence
    encoded, state = encoded.select(rows), state.select(rows)
    row_limits = max_lengths[rows]  # (batch * k,)
    scores = np.full((batch, k), -np.inf, dtype=np.float32)
    scores[:, 0] = 0.0  # all beams start identical: only the first may expand
    prev = np.full(batch * k, BOS, dtype=np.int64)
    history = np.empty((batch * k, 0), dtype=np.int64)
    # (batch * k, steps, src_len): each beam's attention so far, reordered with `history`
    attention = np.empty((batch * k, 0, src.shape[1]), np.float32) if with_attention else None
    # (batch * k, src_len): each beam's attention summed over its steps (the coverage penalty's input)
    attention_sum = np.zeros((batch * k, src.shape[1]), np.float32) if coverage_beta else None
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    sentences = list(range(batch))  # the sentence of each row of `scores` still searched
    done = np.zeros(batch, dtype=bool)
    for t in range(int(max_lengths.max()) + 1):  # + 1: the step that ends the longest-allowed beams
        log_probs, state, weights = steps.step(prev, state, encoded)  # (searched * k, vocab)
        if repeats is not None:
            repeats.apply(log_probs, history, ids)
        at_limit = row_limits <= t  # these beams may only end
        log_probs[at_limit] = -np.inf
        log_probs[at_limit, eos] = 0.0
        vocab = log_probs.shape[1]  # (or the shortlist's columns)
        searched = len(sentences)
        candidates = (scores.reshape(-1, 1) + log_probs).reshape(searched, k * vocab)
        top_scores, top_ids = select_best(candidates, min(2 * k, k * vocab))  # (searched, 2k), best first
        top_beams, top_tokens = top_ids // vocab, top_ids % vocab
        if ids is not None:
            top_tokens = ids[top_tokens]
        ends = top_tokens == EOS
        top_rows = np.arange(searched)[:, None] * k + top_beams  # (searched, 2k)
        newly_finished = ends[:, :k] & np.isfinite(top_scores[:, :k]) & ~done[:, None]
        for b, j in zip(*np.nonzero(newly_finished), strict=True):
            row = top_rows[b, j]
            tokens = history[row].tolist()
            raw = float(top_scores[b, j])
            weights_so_far = None
            if attention is not None:
                steps_so_far = np.concatenate([attention[row], weights[row][None]])
                weights_so_far = steps_so_far[:, : int(src_lengths[sentences[b]])]
            score = raw / length_penalty(len(tokens) + 1, alpha)
            if attention_sum is not None:
                received = (attention_sum[row] + weights[row])[: int(src_lengths[sentences[b]])]
                score += coverage_penalty(received, coverage_beta)
            finished[sentences[b]].append(Hypothesis(tokens, score, raw, weights_so_far))
        done |= np.array([len(finished[s]) >= k for s in sentences])
        # the k best continuations that do not end are the new beams (top_scores is sorted, so is this:
        # a stable argsort keeps the order of equals)
        open_scores = np.where(ends, -np.inf, top_scores)
        keep = np.argsort(-open_scores, axis=1, kind="stable")[:, :k]  # (searched, k)
        keep_scores = np.take_along_axis(open_scores, keep, axis=1)
        if stop_early:
            limits = row_limits.reshape(searched, k)[:, 0]
            done |= _hopeless(keep_scores[:, 0], limits, [finished[s] for s in sentences], nbest, alpha)
        if done.all():
            break
        keep_rows = np.take_along_axis(top_rows, keep, axis=1).reshape(-1)
        prev = np.take_along_axis(top_tokens, keep, axis=1).reshape(-1)
        scores = np.where(done[:, None], -np.inf, keep_scores).astype(np.float32)
        if done.sum() >= COMPACT_FRACTION * searched:  # the done sentences' rows leave the batch
            alive = np.flatnonzero(~done)
            alive_rows = (alive[:, None] * k + np.arange(k)).reshape(-1)
            sentences = [sentences[i] for i in alive.tolist()]
            done, scores, prev = done[alive], scores[alive], prev[alive_rows]
            keep_rows, row_limits = keep_rows[alive_rows], row_limits[alive_rows]
            encoded = encoded.select(alive_rows)
        history = np.concatenate([history[keep_rows], prev[:, None]], axis=1)
        if attention is not None:
            attention = np.concatenate([attention[keep_rows], weights[keep_rows][:, None]], axis=1)
        if attention_sum is not None:
            attention_sum = attention_sum[keep_rows] + weights[keep_rows]
        state = state.select(keep_rows)
    return [sorted(f, key=lambda h: -h.score)[:k] for f in finished]


def _hopeless(
    best_open: np.ndarray,
    limits: np.ndarray,
    finished: list[list[Hypothesis]],
    nbest: int,
    alpha: float,
) -> np.ndarray:
    """(searched,) log-probabilities of each sentence's best open beam, (searched,) output limits ->
    (searched,) bool: no open beam can finish above the sentence's nbest-th best finished hypothesis.

    A beam's log-probability only falls as it grows, and it ends at the latest at its limit (limit
    tokens and the EOS); so its final score is at most log-probability / length_penalty(limit + 1), the
    largest penalty it can get (log-probabilities are negative). The other open beams, below the best one
    in log-probability with the same limit, are below it in that bound too."""
    needed = np.array(
        [
            sorted((h.score for h in f), reverse=True)[nbest - 1] if len(f) >= nbest else -np.inf
            for f in finished
        ]
    )
    return best_open / length_penalty(limits + 1, alpha) < needed  # fewer than nbest finished: -inf, never


def inference_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Batches of at most `batch_size` indices, longest first, so each batch pads little (decoding and
    scoring put the input order back afterwards)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def decode_corpus(
    steps, src_ids: Sequence[list[int]], cfg: DecodeConfig, with_attention: bool = False, nbest: int = 1
) -> list[list[Hypothesis]]:
    """Hypotheses for every source, best first, in input order (one with beam size 1 or sampling), batched
    by length: the `nbest` best as the whole search finds them, and up to the beam size in all.
    `with_attention`: each hypothesis carries its attention weights (Hypothesis.attention)."""
    outputs: list[list[Hypothesis]] = [[] for _ in src_ids]
    repeats = Repeats.of(cfg)
    for indices in inference_batches([len(s) for s in src_ids], cfg.batch_size):
        src, src_lengths = source_batch(src_ids, indices)
        max_lengths = max_output_lengths(src_lengths, cfg)
        if cfg.beam_size == 1 or cfg.temperature > 0:
            # sampling is the greedy search with a sampled choice: one output per sentence
            pick = PieceSampler(cfg, [src_ids[i] for i in indices]) if cfg.temperature > 0 else None
            greedy = greedy_search(steps, src, src_lengths, max_lengths, with_attention, repeats, pick)
            # ranked like a beam's hypotheses, so that n-best scores mean the same at every beam size
            penalty = [length_penalty(len(h.tokens) + 1, cfg.length_penalty) for h in greedy]
            results = [[replace(h, score=h.log_prob / p)] for h, p in zip(greedy, penalty, strict=True)]
        else:
            results = beam_search(
                steps,
                src,
                src_lengths,
                max_lengths,
                cfg.beam_size,
                cfg.length_penalty,
                with_attention,
                nbest,
                repeats=repeats,
                coverage_beta=cfg.coverage_penalty,
            )
        for i, hypotheses in zip(indices, results, strict=True):
            outputs[i] = hypotheses
    return outputs
