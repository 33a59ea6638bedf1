"""Sampling: token ids in, token ids out, in plain numpy (as the search, so a torch model through
decoding/torch_steps.py and an ONNX export through export/runtime.py sample by the same rules).

A language model is sampled through its steps (`sample`):

    start(tokens (1, length) int64) -> log_probs (1, vocab) float32, state
    step(tokens (1,) int64, state) -> log_probs (1, vocab) float32, new state

A translation model is sampled by the greedy search of decoding/search.py with a `PieceSampler` choosing
each piece instead of the argmax (decode.temperature > 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from seqkit.data.tokenizer import BOS, EOS, PAD, UNK

NEVER_SAMPLED = (PAD, UNK, BOS)  # a language model may end a text (EOS) but not emit these
# a translation may hold an unknown piece, as its greedy output may: sampling at a temperature near 0,
# or from the top 1 piece, is greedy search
NEVER_TRANSLATED = (PAD, BOS)
# the error for an n-best list of a sampled translation, {} naming what asked for it
SAMPLING_NBEST = (
    "{}: a sampled translation (temperature > 0) is one output per line; ask for 1, and sample again with "
    "another seed for another output"
)
# the error for a sampling setting given without a temperature, {0} naming it
SAMPLING_ONLY = "{0} is a sampling setting, and the temperature is 0 (search): give a temperature above 0 too, or drop {0}"


def sampling_option_unused(temperature: float, given: Mapping[str, object]) -> str | None:
    """The name of the first of `given` (name -> value; None: not given) that a search would ignore: any
    of them, at temperature 0."""
    if temperature:
        return None
    return next((name for name, value in given.items() if value is not None), None)


def choose_token(
    log_probs: np.ndarray,
    temperature: float,
    top_k: int,
    top_p: float,
    rng: np.random.Generator,
    never: Sequence[int] = NEVER_SAMPLED,
) -> int:
    """log_probs (vocab,) -> the next token: argmax at temperature 0, else a sample from the
    temperature-scaled distribution restricted to the top k tokens and to the top-p nucleus; never one of
    the columns `never`. Logits serve as well as log-probabilities (they differ by a constant, which
    softmax ignores)."""
    scores = np.array(log_probs, dtype=np.float64)  # a copy, in float64: sums of small probabilities
    scores[list(never)] = -np.inf
    if temperature == 0:
        return int(scores.argmax())
    scores /= temperature
    if top_k:
        kth = len(scores) - min(top_k, len(scores))
        kth_best = np.partition(scores, kth)[kth]
        scores[scores < kth_best] = -np.inf
    if top_p < 1.0:
        order = np.argsort(-scores, kind="stable")
        probs = _softmax(scores[order])
        outside = np.cumsum(probs) - probs >= top_p  # the mass before this token already reaches p
        scores[order[outside]] = -np.inf
    probs = _softmax(scores)
    # inverse transform sampling: one uniform number per token, the same on every machine and backend
    cumulative = np.cumsum(probs)
    chosen = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    # a draw rounded up to the total: the last token that can be drawn, not one after it
    return chosen if chosen < len(probs) else int(np.flatnonzero(probs)[-1])


def _softmax(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max())
    return exp / exp.sum()


def sample(steps, prompt: list[int], cfg, rng: np.random.Generator, on_token=None) -> list[int]:
    """Continue `prompt` (token ids) with a language model until EOS or `cfg.max_tokens` new tokens.

    `cfg` is a GenerateConfig; `on_token(tokens_so_far)` is called after each new token (for streaming).
    The context starts with EOS, as every training line does, so an empty prompt starts a new line."""
    log_probs, state = steps.start(np.array([[EOS, *prompt]], dtype=np.int64))
    generated: list[int] = []
    for _ in range(cfg.max_tokens):
        token = choose_token(log_probs[0], cfg.temperature, cfg.top_k, cfg.top_p, rng)
        if token == EOS:
            break
        generated.append(token)
        if on_token:
            on_token(generated)
        log_probs, state = steps.step(np.array([token], dtype=np.int64), state)
    return generated


class PieceSampler:
    """Chooses the next piece of each row of a greedy search (decoding/search.py) by sampling, for
    decode.temperature > 0. Each sentence has its own random generator, seeded by decode.seed and the
    sentence's source pieces: a line's output is the same alone or in any batch, and from the command
    line, the library and the server alike (two equal lines get equal outputs)."""

    def __init__(self, cfg, src_ids: Sequence[list[int]]):
        """`cfg` is a DecodeConfig; `src_ids`: the pieces of each sentence of the batch, in its order."""
        self.cfg = cfg
        self.rngs = [np.random.default_rng([cfg.seed, *ids]) for ids in src_ids]

    def __call__(self, log_probs: np.ndarray, sentences: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
        """log_probs (rows, columns), the batch sentence of each row (rows,), the target id of each column
        (None: column = id) -> the chosen column of each row (rows,)."""
        never = NEVER_TRANSLATED if ids is None else np.flatnonzero(np.isin(ids, NEVER_TRANSLATED)).tolist()
        cfg = self.cfg
        return np.array(
            [
                choose_token(row, cfg.temperature, cfg.top_k, cfg.top_p, self.rngs[sentence], never)
                for row, sentence in zip(log_probs, sentences.tolist(), strict=True)
            ],
            dtype=np.int64,
        )
