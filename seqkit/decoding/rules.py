"""Rules that change what the search prefers, besides the model's own probabilities: against an output
that repeats itself (no repeated n-grams, CTRL's repetition penalty), applied to each step's
log-probabilities, and GNMT's coverage penalty on a finished hypothesis's score. Plain numpy, as the
search (decoding/search.py) that applies them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqkit.config import DecodeConfig


@dataclass(frozen=True)
class Repeats:
    """Rules against an output that repeats itself, applied to each step's log-probabilities."""

    no_repeat_ngram: int = 0  # a piece that would complete an n-gram the output already has is banned
    penalty: float = 1.0  # a piece the output already has: its log-probability times this (>= 1)

    @classmethod
    def of(cls, cfg: DecodeConfig) -> Repeats | None:
        rules = cls(cfg.no_repeat_ngram, cfg.repetition_penalty)
        return rules if rules.no_repeat_ngram or rules.penalty != 1.0 else None

    def apply(self, log_probs: np.ndarray, history: np.ndarray, ids: np.ndarray | None) -> None:
        """log_probs (rows, columns), history (rows, t) each row's output so far: changed in place."""
        t = history.shape[1]
        if t == 0:
            return
        if self.penalty != 1.0:
            rows = np.repeat(np.arange(len(history)), t)
            found, columns = _columns_of(history.reshape(-1), ids)
            log_probs[rows[found], columns] *= self.penalty  # (duplicates: multiplied once)
        n = self.no_repeat_ngram
        if n and t >= n:
            windows = np.lib.stride_tricks.sliding_window_view(history, n, axis=1)  # (rows, t-n+1, n)
            # the n-grams whose first n-1 pieces are the output's last n-1: their last piece is banned
            same = (windows[:, :, : n - 1] == history[:, None, t - n + 1 :]).all(axis=2)
            rows, starts = np.nonzero(same)
            found, columns = _columns_of(windows[rows, starts, n - 1], ids)
            log_probs[rows[found], columns] = -np.inf


def _columns_of(tokens: np.ndarray, ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Target ids -> (which of them have a column, those columns): all of them without a shortlist."""
    if ids is None:
        return np.ones(len(tokens), dtype=bool), tokens
    columns = np.minimum(np.searchsorted(ids, tokens), len(ids) - 1)
    found = ids[columns] == tokens
    return found, columns[found]


def coverage_penalty(attention_sum: np.ndarray, beta: float) -> float:
    """GNMT's: beta * sum over the source pieces of log(min(attention they received, 1)), <= 0.
    attention_sum (src_len,): the attention of every output step, summed."""
    return beta * float(np.log(np.clip(attention_sum, 1e-20, 1.0)).sum())
