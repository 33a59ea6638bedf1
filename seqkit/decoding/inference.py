"""Translation and generation of text lines: exactly one result per input line (or per sample), in order.

Lines are read in chunks so that a long stdin stream starts producing output before it ends, while
each chunk is still sorted by length into batches (little padding) and put back in input order.
Empty (or whitespace-only) lines give empty results without touching the model.

`steps` is a model as the search reads it (decoding/search.py): `torch_steps.steps_of(module)` for a
torch model, an exported model's own for ONNX. Nothing here needs torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

import numpy as np

from seqkit.config import DecodeConfig, GenerateConfig
from seqkit.data.text import without_controls
from seqkit.data.tokenizer import EOS, SPECIALS, Tokenizer
from seqkit.decoding.sampling import sample
from seqkit.decoding.search import decode_corpus
from seqkit.errors import DataError

CHUNK_BATCHES = 16  # batches per chunk of input lines
Result = TypeVar("Result")


@dataclass(frozen=True)
class LineNumbers:
    """How an error names the k-th line (from 0) of a stream: `source:N` for a file, `input line N`
    without one (a list, stdin, or several files read as one stream). N = first + k x step: a process
    of torchrun translates every step-th line of the input from its first."""

    source: str | None = None
    first: int = 1
    step: int = 1

    def name(self, k: int) -> str:
        number = self.first + k * self.step
        return f"{self.source}:{number}" if self.source else f"input line {number:,}"


class TooManyPieces(DataError):
    """A line of more pieces than decode.max_input_pieces (the server answers it with 413, in words of its
    own: its clients have no --max-input-pieces)."""

    def __init__(self, where: str, pieces: int, limit: int):
        super().__init__(
            f"{where} has {pieces:,} pieces, more than decode.max_input_pieces = {limit:,}; split the line (at "
            "its sentence ends, say), or raise the limit (seqkit translate --max-input-pieces N)"
        )
        self.where, self.pieces, self.limit = where, pieces, limit


@dataclass(frozen=True)
class AttentionMap:
    """Where each output piece looked: one row per output step, one column per source piece."""

    source: list[str]  # the source pieces, then </s>
    output: list[str]  # the output pieces, then </s> (the step that ended the sentence)
    weights: list[list[float]]  # (len(output), len(source)); each row sums to 1
    # a copy model's gate at each output step: the probability of generating from the vocabulary rather
    # than copying from the source (None: not a copy model, or an export, which does not report it)
    generate: list[float] | None = None

    def to_dict(self) -> dict:
        gates = {"generate": self.generate} if self.generate is not None else {}
        return {"source": self.source, "output": self.output, "weights": self.weights, **gates}


@dataclass(frozen=True)
class Translation:
    text: str
    score: float  # what the search ranked by: log-probability / length penalty
    log_prob: float  # total log-probability of the pieces and EOS, as the search saw them (Hypothesis)
    attention: AttentionMap | None = None  # when asked for


def attention_map(
    tokenizer, line: str, hypothesis, steps=None, src_ids: list[int] | None = None
) -> AttentionMap:
    """The AttentionMap of a hypothesis of `line` searched `with_attention`: both searches keep a row
    for every token and one for the EOS step (tokens + 1 rows, source pieces + EOS columns). With the
    `steps` and source ids, a copy model's gates too (steps that can say them: `copy_gates`)."""
    end = [SPECIALS[EOS]]
    output = tokenizer.tgt_pieces(hypothesis.tokens) + end
    gates = None
    if steps is not None and src_ids is not None and hasattr(steps, "copy_gates"):
        gates = steps.copy_gates(src_ids, hypothesis.tokens)
    return AttentionMap(tokenizer.src_pieces(line) + end, output, hypothesis.attention.tolist(), gates)


def translate_nbest(
    steps,
    tokenizer: Tokenizer,
    lines: list[str],
    cfg: DecodeConfig,
    with_attention: bool = False,
    first_line: int = 1,
    nbest: int = 1,
    numbers: LineNumbers = LineNumbers(),
) -> list[list[Translation]]:
    """Up to `cfg.beam_size` translations per line, best first (the `nbest` best at least, when the
    search found that many); none for an empty line, or one of no pieces.
    `with_attention`: each translation carries its AttentionMap. A line of more than
    `cfg.max_input_pieces` pieces is a DataError naming it as `numbers` name line `first_line` - 1 + i
    of the stream (`first_line`: the place of lines[0] in the stream, from 1)."""
    todo = [i for i, line in enumerate(lines) if line.strip()]
    results: list[list[Translation]] = [[] for _ in lines]
    if todo:
        encoded = tokenizer.encode_src([lines[i] for i in todo])
        # a line of characters the tokenizer drops (a zero-width space, a control character) has no pieces:
        # an empty line, as training reads it (it was given a translation of nothing, made up)
        todo, ids = [i for i, row in zip(todo, encoded, strict=True) if row], [row for row in encoded if row]
        for i, row in zip(todo, ids, strict=True):
            if len(row) > cfg.max_input_pieces:
                raise TooManyPieces(numbers.name(first_line - 1 + i), len(row), cfg.max_input_pieces)
        hypotheses = decode_corpus(steps, ids, cfg, with_attention, nbest) if ids else []
        for i, src_ids, options in zip(todo, ids, hypotheses, strict=True):
            texts = tokenizer.decode_tgt([h.tokens for h in options])
            results[i] = [
                Translation(
                    text,
                    h.score,
                    h.log_prob,
                    attention_map(tokenizer, lines[i], h, steps, src_ids) if with_attention else None,
                )
                for text, h in zip(texts, options, strict=True)
            ]
    return results


def translate_lines(steps, tokenizer: Tokenizer, lines: list[str], cfg: DecodeConfig) -> list[str]:
    """The best translation of each line; an empty line stays empty."""
    return [options[0].text if options else "" for options in translate_nbest(steps, tokenizer, lines, cfg)]


def in_chunks(
    lines: Iterable[str],
    cfg: DecodeConfig,
    process: Callable[[list[str], int], list[Result]],
    chunk_lines: int | None = None,
) -> Iterator[Result]:
    """Apply `process(chunk, number of its first line)` to chunks of `lines` (of `chunk_lines`, default
    batch_size x CHUNK_BATCHES) and yield its results one by one, in order. A person typing wants chunks
    of 1: each line answered at once."""
    lines = iter(lines)
    chunk_size = chunk_lines or cfg.batch_size * CHUNK_BATCHES
    first = 1
    while chunk := list(islice(lines, chunk_size)):
        yield from process(chunk, first)
        first += len(chunk)


def translate_stream(
    steps, tokenizer: Tokenizer, lines: Iterable[str], cfg: DecodeConfig, chunk_lines: int | None = None
) -> Iterator[str]:
    """Yield one translation per input line, in input order, chunk by chunk."""
    return (
        options[0].text if options else ""
        for options in translate_nbest_stream(steps, tokenizer, lines, cfg, chunk_lines=chunk_lines)
    )


def translate_nbest_stream(
    steps,
    tokenizer: Tokenizer,
    lines: Iterable[str],
    cfg: DecodeConfig,
    with_attention: bool = False,
    chunk_lines: int | None = None,
    nbest: int = 1,
    numbers: LineNumbers = LineNumbers(),
) -> Iterator[list[Translation]]:
    """`translate_nbest` as a stream: each input line's translations, in input order, chunk by chunk;
    an error names a line as `numbers` say."""
    return in_chunks(
        lines,
        cfg,
        lambda chunk, first: translate_nbest(
            steps, tokenizer, chunk, cfg, with_attention, first, nbest, numbers
        ),
        chunk_lines,
    )


def _continuation(tokenizer, prompt_ids: list[int], generated: list[int]) -> str:
    """The text the generated tokens add after the prompt (decoded together: a piece may start a word)."""
    prefix = tokenizer.decode_tgt([prompt_ids])[0]
    full = tokenizer.decode_tgt([prompt_ids + generated])[0]
    return full[len(prefix) :] if full.startswith(prefix) else full


class _Streamer:
    """Passes on the text each new token adds (a piece may change how earlier pieces decode)."""

    def __init__(self, tokenizer, prompt_ids: list[int], on_text: Callable[[str], None]):
        self.tokenizer, self.prompt_ids, self.on_text, self.shown = tokenizer, prompt_ids, on_text, 0

    def __call__(self, generated: list[int]) -> None:
        text = _continuation(self.tokenizer, self.prompt_ids, generated)
        self.on_text(text[self.shown :])
        self.shown = len(text)


def generate(
    steps,
    tokenizer,
    prompts: Iterable[str],
    cfg: GenerateConfig,
    on_text: Callable[[str], None] | None = None,
) -> Iterator[str]:
    """`cfg.num_samples` texts per prompt (each the prompt and its continuation), in order.

    One random generator, seeded once, serves every sample in turn: the same seed, prompts and options
    give the same texts. `on_text(piece)` receives each new piece of text as it is generated."""
    rng = np.random.default_rng(cfg.seed)
    for prompt in prompts:
        prompt_ids = tokenizer.encode_tgt([prompt])[0] if prompt else []
        shown = _shown_prompt(tokenizer, prompt, prompt_ids)
        for _ in range(cfg.num_samples):
            if on_text:
                on_text(shown)
            streamer = _Streamer(tokenizer, prompt_ids, on_text) if on_text else None
            generated = sample(steps, prompt_ids, cfg, rng, streamer)
            yield shown + _continuation(tokenizer, prompt_ids, generated)


def _shown_prompt(tokenizer, prompt: str, prompt_ids: list[int]) -> str:
    """The prompt as the output starts with it: as typed, but as the tokenizer read its control
    characters (a CR or form feed as a space, NUL removed: written back, a CR overwrote the prompt on a
    terminal and split the output line for a reader of universal newlines), less trailing whitespace that
    the tokenizer dropped (SentencePiece's "God is " is "God is"), which the model never saw; the
    continuation brings its own space ("God is" + " love"), and the typed one would double it."""
    prompt = without_controls(prompt)
    # (the prompt's pieces without it are the same; decoding them back would not say: an unknown piece
    # decodes as " ⁇ ", which ends in a space)
    if prompt[-1:].isspace() and tokenizer.encode_tgt([prompt.rstrip()])[0] == prompt_ids:
        return prompt.rstrip()
    return prompt
