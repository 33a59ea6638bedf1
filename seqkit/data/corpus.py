"""Corpora as the models read them: a parallel corpus as token ids (with the raw target text that BLEU
needs), cleaned and counted; and monolingual text as one token stream cut into rows for a language model.

Cleaning that users otherwise script by hand happens here, each step counted for the start of training:
byte order marks and carriage returns (fixed while reading), exact duplicate pairs (data.dedupe), empty
pairs, pairs longer than data.max_length pieces, and pairs whose sides' lengths differ by more than
data.max_length_ratio.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import torch

from seqkit.config import Config
from seqkit.data.formats import read_pairs, read_target_side
from seqkit.data.tokenizer import EOS, Tokenizer
from seqkit.errors import DataError


@dataclass
class ParallelIds:
    """A tokenized parallel corpus and the raw target text (references for BLEU)."""

    src: list[list[int]]
    tgt: list[list[int]]
    tgt_text: list[str]


@dataclass
class Cleaning:
    """What reading and cleaning a training corpus fixed or skipped."""

    fixes: Counter = field(default_factory=Counter)  # lines whose "bom" or "cr" was removed
    duplicates: int = 0
    empty: int = 0
    too_long: int = 0
    ratio: int = 0

    @property
    def skipped(self) -> int:
        return self.duplicates + self.empty + self.too_long + self.ratio

    def counts(self) -> dict[str, int]:
        """For the training log's start record."""
        return {
            "skipped_pairs": self.skipped,
            "empty_pairs": self.empty,
            "long_pairs": self.too_long,
            "ratio_pairs": self.ratio,
            "duplicate_pairs": self.duplicates,
            "bom_lines": self.fixes["bom"],
            "cr_lines": self.fixes["cr"],
        }


@dataclass
class RawSplits:
    """The raw text of a run's training and dev pairs."""

    train_src: list[str]
    train_tgt: list[str]
    dev_src: list[str]
    dev_tgt: list[str]
    held_out: bool  # dev was held out of data.train (no data.dev)


def _required(cfg: Config, split: str) -> str:
    spec = getattr(cfg.data, split)
    if not spec:
        raise DataError(
            f"data.{split} is not set; give it in the config file or with --set data.{split}=PATH"
        )
    return spec


def hold_out(count: int, size: int, seed: int) -> list[int]:
    """Which of `count` pairs form a held-out dev set of `size` (at most a tenth): the same for a seed."""
    size = min(size, count // 10)
    return sorted(random.Random(f"{seed}-dev").sample(range(count), size))


def read_splits(cfg: Config, cleaning: Cleaning) -> RawSplits:
    """data.train and data.dev, or data.dev_size pairs of data.train held out with the seed."""
    train_src, train_tgt = read_pairs(_required(cfg, "train"), cfg.data, "data.train", cleaning.fixes)
    if cfg.data.dev:
        dev_src, dev_tgt = read_pairs(cfg.data.dev, cfg.data, "data.dev")
        return RawSplits(train_src, train_tgt, dev_src, dev_tgt, held_out=False)
    chosen = hold_out(len(train_src), cfg.data.dev_size, cfg.train.seed)
    if not chosen:
        raise DataError(
            f"data.dev is not set and data.train has {len(train_src)} pairs, too few to hold out a dev set "
            "(a tenth at most); give data.dev"
        )
    dev = set(chosen)
    rest = [i for i in range(len(train_src)) if i not in dev]
    return RawSplits(
        [train_src[i] for i in rest],
        [train_tgt[i] for i in rest],
        [train_src[i] for i in chosen],
        [train_tgt[i] for i in chosen],
        held_out=True,
    )


def dedupe(src: list[str], tgt: list[str]) -> tuple[list[str], list[str], int]:
    """The pairs without exact repeats (the first of each kept, in order), and how many were dropped."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for i, pair in enumerate(zip(src, tgt, strict=True)):
        if pair not in seen:
            seen.add(pair)
            kept.append(i)
    return [src[i] for i in kept], [tgt[i] for i in kept], len(src) - len(kept)


def tokenize_parallel(
    tokenizer: Tokenizer,
    src: list[str],
    tgt: list[str],
    max_length: int | None,
    max_length_ratio: float = 0.0,
    cleaning: Cleaning | None = None,
) -> ParallelIds:
    """Token ids of the pairs whose sides are both non-empty and (given `max_length`) no longer than it
    and (given `max_length_ratio`) not more than that many times longer than each other."""
    src_ids, tgt_ids = tokenizer.encode_src(src), tokenizer.encode_tgt(tgt)
    counts = cleaning or Cleaning()
    keep = []
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids, strict=True)):
        if not s or not t:
            counts.empty += 1
        elif max_length is not None and max(len(s), len(t)) > max_length:
            counts.too_long += 1
        elif max_length_ratio and max(len(s), len(t)) > max_length_ratio * min(len(s), len(t)):
            counts.ratio += 1
        else:
            keep.append(i)
    return ParallelIds([src_ids[i] for i in keep], [tgt_ids[i] for i in keep], [tgt[i] for i in keep])


def read_text(cfg: Config, split: str, fixes: Counter | None = None) -> list[str]:
    """The non-empty lines of the target side of data.{split}: what a language model reads."""
    lines = read_target_side(_required(cfg, split), cfg.data, f"data.{split}", fixes)
    return [line for line in lines if line.strip()]


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
