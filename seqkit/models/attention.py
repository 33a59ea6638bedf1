"""Attention over the encoder memory: additive (Bahdanau) and multiplicative (Luong, "general").

Both are stateless apart from their weights: `project_keys(memory)` runs once per batch (the keys do
not change while decoding), then `forward(query, keys, memory, mask) -> (context, weights)` per step.
"""

from __future__ import annotations

import torch
from torch import nn


def _attend(
    scores: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """scores (batch, src_len), memory (batch, src_len, m), mask (batch, src_len) True at real tokens."""
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # (batch, src_len)
    context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (batch, m)
    return context, weights


class BahdanauAttention(nn.Module):
    """score(q, k_j) = v . tanh(W_q q + W_k m_j)"""

    def __init__(self, query_size: int, memory_size: int, attention_size: int):
        super().__init__()
        self.key_layer = nn.Linear(memory_size, attention_size, bias=False)
        self.query_layer = nn.Linear(query_size, attention_size, bias=False)
        self.energy_layer = nn.Linear(attention_size, 1, bias=False)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_layer(memory)  # (batch, src_len, attention)

    def forward(self, query, keys, memory, mask):
        """query (batch, q) -> context (batch, m), weights (batch, src_len)"""
        energy = torch.tanh(keys + self.query_layer(query).unsqueeze(1))  # (batch, src_len, attention)
        return _attend(self.energy_layer(energy).squeeze(2), memory, mask)


class LuongAttention(nn.Module):
    """score(q, m_j) = q . W m_j  (Luong et al. 2015, "general")"""

    def __init__(self, query_size: int, memory_size: int, attention_size: int):
        super().__init__()
        self.key_layer = nn.Linear(memory_size, query_size, bias=False)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_layer(memory)  # (batch, src_len, query)

    def forward(self, query, keys, memory, mask):
        scores = torch.bmm(keys, query.unsqueeze(2)).squeeze(2)  # (batch, src_len)
        return _attend(scores, memory, mask)


ATTENTIONS: dict[str, type[nn.Module]] = {"bahdanau": BahdanauAttention, "luong": LuongAttention}
