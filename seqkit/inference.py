"""Translation as an iterator over input lines: exactly one output line per input line, in order.

Lines are read in chunks so that a long stdin stream starts producing output before it ends, while
each chunk is still sorted by length into batches (little padding) and put back in input order.
Empty (or whitespace-only) lines give empty lines without touching the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from seqkit.config import DecodeConfig
from seqkit.data.tokenizer import Tokenizer
from seqkit.search import decode_corpus

CHUNK_BATCHES = 16  # batches per chunk of input lines


def translate_lines(model, tokenizer: Tokenizer, lines: list[str], cfg: DecodeConfig) -> list[str]:
    """Translate a list of lines (the batching unit); empty lines stay empty."""
    todo = [i for i, line in enumerate(lines) if line.strip()]
    outputs = [""] * len(lines)
    if todo:
        ids = decode_corpus(model, tokenizer.encode_src([lines[i] for i in todo]), cfg)
        for i, text in zip(todo, tokenizer.decode_tgt(ids), strict=True):
            outputs[i] = text
    return outputs


def translate_stream(model, tokenizer: Tokenizer, lines: Iterable[str], cfg: DecodeConfig) -> Iterator[str]:
    """Yield one translation per input line, in input order, chunk by chunk."""
    lines = iter(lines)
    chunk_size = cfg.batch_size * CHUNK_BATCHES
    while chunk := list(islice(lines, chunk_size)):
        yield from translate_lines(model, tokenizer, chunk, cfg)
