"""Corpora as the models read them: a parallel corpus as token ids (with the raw target text that BLEU
needs), and monolingual text as one token stream cut into rows for a language model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqkit.config import Config
from seqkit.data.text import corpus_file, read_lines, read_parallel
from seqkit.data.tokenizer import EOS, Tokenizer
from seqkit.errors import DataError


@dataclass
class ParallelIds:
    """A tokenized parallel corpus and the raw target text (references for BLEU)."""

    src: list[list[int]]
    tgt: list[list[int]]
    tgt_text: list[str]


def read_pairs(cfg: Config, split: str) -> tuple[list[str], list[str]]:
    """The source and target lines of `data.{split}` (train or dev)."""
    prefix = getattr(cfg.data, split)
    if not prefix:
        raise DataError(
            f"data.{split} is not set; give it in the config file or with --set data.{split}=PREFIX"
        )
    option = f"data.{split}"
    return read_parallel(
        corpus_file(prefix, cfg.data.src_lang, option), corpus_file(prefix, cfg.data.tgt_lang, option)
    )


def tokenize_parallel(
    tokenizer: Tokenizer, src: list[str], tgt: list[str], max_length: int | None
) -> ParallelIds:
    """Token ids of the pairs whose sides are both non-empty and (given `max_length`) no longer than it."""
    src_ids, tgt_ids = tokenizer.encode_src(src), tokenizer.encode_tgt(tgt)
    keep = [
        i
        for i in range(len(src))
        if src_ids[i]
        and tgt_ids[i]
        and (max_length is None or max(len(src_ids[i]), len(tgt_ids[i])) <= max_length)
    ]
    return ParallelIds([src_ids[i] for i in keep], [tgt_ids[i] for i in keep], [tgt[i] for i in keep])


def read_text(prefix: str, lang: str, option: str) -> list[str]:
    """The non-empty lines of `{prefix}.{lang}` (or .gz)."""
    return [line for line in read_lines(corpus_file(prefix, lang, option)) if line.strip()]


def token_stream(tokenizer: Tokenizer, lines: list[str]) -> torch.Tensor:
    """(tokens,) EOS, then each line's tokens followed by EOS: every line starts after an end of line."""
    ids = [EOS]
    for line_ids in tokenizer.encode_tgt(lines):
        ids.extend(line_ids)
        ids.append(EOS)
    return torch.tensor(ids, dtype=torch.long)


def stream_rows(stream: torch.Tensor, rows: int) -> torch.Tensor:
    """(rows, length): the stream cut into `rows` contiguous parts (the remainder is dropped)."""
    rows = max(1, min(rows, (len(stream) - 1) // 2))
    length = len(stream) // rows
    return stream[: rows * length].view(rows, length)


def chunk_starts(data: torch.Tensor, bptt_length: int) -> list[int]:
    return list(range(0, data.size(1) - 1, bptt_length))


def chunk(data: torch.Tensor, start: int, bptt_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets, each (rows, <= bptt_length)."""
    end = min(start + bptt_length, data.size(1) - 1)
    return data[:, start:end], data[:, start + 1 : end + 1]
