"""Padded tensor batches, cut by token count and bucketed by length.

Bucketing: shuffle all examples, take pools of about 100 batches' worth, sort each pool by length and
cut it into batches of at most `batch_tokens` padded tokens, then shuffle the batch order. Sentences
of similar length share a batch (little padding) while every epoch still sees a new order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from seqkit.data.tokenizer import BOS, EOS, PAD

POOL_BATCHES = 100
Rows = Sequence[list[int]]  # sequences of token ids: lists, or data.arrays.TokenArrays


@dataclass
class Batch:
    src: torch.Tensor  # (batch, src_len) source ids ending in EOS, padded with PAD
    src_lengths: torch.Tensor  # (batch,) lengths including EOS
    tgt_in: torch.Tensor | None  # (batch, tgt_len) BOS + target, the decoder's inputs
    tgt_out: torch.Tensor | None  # (batch, tgt_len) target + EOS, what it must predict

    def to(self, device: torch.device) -> Batch:
        """The same batch with its tensors on `device` (lengths stay on the CPU: packing reads them there)."""
        if device.type == "cpu":
            return self
        tgt_in = None if self.tgt_in is None else self.tgt_in.to(device, non_blocking=True)
        tgt_out = None if self.tgt_out is None else self.tgt_out.to(device, non_blocking=True)
        return Batch(self.src.to(device, non_blocking=True), self.src_lengths, tgt_in, tgt_out)

    @property
    def num_tgt_tokens(self) -> int:
        return int((self.tgt_out != PAD).sum()) if self.tgt_out is not None else 0


def _pad(seqs: list[list[int]]) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    # padded as lists and made a tensor in one call: a tensor per row costs more than the model's step
    return torch.tensor([s + [PAD] * (width - len(s)) for s in seqs], dtype=torch.long)  # (batch, width)


def make_batch(src: Rows, tgt: Rows | None, indices: list[int]) -> Batch:
    """Tensors for examples `indices` of `src` (and `tgt`); EOS/BOS are added here."""
    src_seqs = [src[i] + [EOS] for i in indices]
    tgt_in = tgt_out = None
    if tgt is not None:
        tgt_in = _pad([[BOS] + tgt[i] for i in indices])
        tgt_out = _pad([tgt[i] + [EOS] for i in indices])
    return Batch(_pad(src_seqs), torch.tensor([len(s) for s in src_seqs]), tgt_in, tgt_out)


def _cut(order: list[int], sizes: list[int], batch_tokens: int) -> list[list[int]]:
    """Cut `order` into consecutive batches whose padded size (count x longest) fits `batch_tokens`."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        grown = max(longest, sizes[i])
        if current and grown * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, grown = [], sizes[i]
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    return batches


def training_batches(sizes: list[int], batch_tokens: int, rng: random.Random) -> list[list[int]]:
    """Batches of example indices for one epoch; `sizes[i]` is example i's longest side (+1)."""
    order = list(range(len(sizes)))
    rng.shuffle(order)
    mean = max(1, sum(sizes) // max(1, len(sizes)))
    pool = max(1, POOL_BATCHES * batch_tokens // mean)
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: sizes[i])
        batches.extend(_cut(chunk, sizes, batch_tokens))
    rng.shuffle(batches)
    return batches
