"""Decoding: token ids in, token ids out. Greedy search over a model's `encode` / `step` pair.

Every sentence has its own length limit (`max_length_ratio * source length + offset`), so a sentence
decodes to the same output alone or in any batch.
"""

from __future__ import annotations

import torch

from seqkit.config import DecodeConfig
from seqkit.data.batches import inference_batches, make_batch
from seqkit.data.tokenizer import BOS, EOS


def max_output_lengths(src_lengths: torch.Tensor, cfg: DecodeConfig) -> torch.Tensor:
    """(batch,) source lengths (with EOS) -> (batch,) the most output pieces each may get."""
    return (cfg.max_length_ratio * (src_lengths - 1)).long() + cfg.max_length_offset


def _strip(tokens: list[int]) -> list[int]:
    return tokens[: tokens.index(EOS)] if EOS in tokens else tokens


@torch.no_grad()
def greedy_search(
    model, src: torch.Tensor, src_lengths: torch.Tensor, max_lengths: torch.Tensor
) -> list[list[int]]:
    """src (batch, src_len) -> for each sentence the argmax token at every step, EOS removed."""
    encoded, state = model.encode(src, src_lengths)
    batch = src.size(0)
    prev = torch.full((batch,), BOS, dtype=torch.long)
    finished = torch.zeros(batch, dtype=torch.bool)
    steps = []
    for t in range(int(max_lengths.max())):
        logits, state, _ = model.step(prev, state, encoded)
        tokens = logits.argmax(dim=-1)  # (batch,)
        tokens = tokens.masked_fill(max_lengths <= t, EOS)  # a sentence at its own limit ends here
        steps.append(tokens)
        finished |= tokens == EOS
        if finished.all():
            break
        prev = tokens
    return [_strip(row) for row in torch.stack(steps, dim=1).tolist()]


@torch.no_grad()
def decode_corpus(model, src_ids: list[list[int]], cfg: DecodeConfig) -> list[list[int]]:
    """Greedy outputs for every source (ids without EOS), in input order; batched by similar length."""
    was_training = model.training
    model.eval()
    outputs: list[list[int]] = [[] for _ in src_ids]
    for indices in inference_batches([len(s) for s in src_ids], cfg.batch_size):
        batch = make_batch(src_ids, None, indices)
        hypotheses = greedy_search(
            model, batch.src, batch.src_lengths, max_output_lengths(batch.src_lengths, cfg)
        )
        for i, hypothesis in zip(indices, hypotheses, strict=True):
            outputs[i] = hypothesis
    model.train(was_training)
    return outputs
