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


def _energy(keys: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """tanh(keys + query) (batch, src_len, attention), computed as 2 sigmoid(2x) - 1 in place: the same
    function to within 2e-7, and several times faster than torch's own tanh on the CPUs measured
    (bench/README.md), where it was the largest cost of a decoding step after the products."""
    return (keys + query.unsqueeze(1)).mul_(2).sigmoid_().mul_(2).sub_(1)


class _AdditiveScores(torch.autograd.Function):
    """scores = tanh(keys + query) . v, whose backward recomputes the tanh instead of keeping it.

    Kept, the (batch, src_len, attention) activation of every decoder step would stay in memory for the
    whole backward pass: batch x tgt_len x src_len x attention floats, 600 MB for 30 sentences of 100
    pieces. Recomputing costs one addition and one tanh per step; the in-place steps of both passes make
    fewer temporaries than autograd's own graph of add, tanh and linear."""

    @staticmethod
    def forward(ctx, keys, query, v):
        """keys (batch, src_len, attention), query (batch, attention), v (attention,) -> (batch, src_len)"""
        ctx.save_for_backward(keys, query, v)
        return _energy(keys, query) @ v

    @staticmethod
    def backward(ctx, grad_scores):
        keys, query, v = ctx.saved_tensors
        energy = _energy(keys, query)  # (batch, src_len, attention)
        grad_v = torch.einsum("bs,bsa->a", grad_scores, energy)
        # d/dx tanh(x) = 1 - tanh(x)^2, computed in the energy's own memory
        grad_energy = energy.square_().neg_().add_(1).mul_(grad_scores.unsqueeze(-1) * v)
        return grad_energy, grad_energy.sum(1), grad_v


def _onnx_scores(keys: torch.Tensor, query: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """`_AdditiveScores` as an ONNX export writes it: onnxruntime's own Tanh is one vectorised pass (the
    sigmoid trick would cost it four), and its product with v runs as one matrix of (batch * src_len)
    rows, where a batched matrix-vector product took it about a quarter of a decoding step."""
    energy = torch.tanh(keys + query.unsqueeze(1))  # (batch, src_len, attention)
    return (energy.reshape(-1, energy.size(-1)) @ v.unsqueeze(1)).reshape(energy.shape[:2])


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
        if torch.onnx.is_in_onnx_export():
            scores = _onnx_scores(keys, self.query_layer(query), self.energy_layer.weight[0])
        else:
            scores = _AdditiveScores.apply(keys, self.query_layer(query), self.energy_layer.weight[0])
        return _attend(scores, memory, mask)


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


ATTENTIONS: dict[str, type[BahdanauAttention] | type[LuongAttention]] = {
    "bahdanau": BahdanauAttention,
    "luong": LuongAttention,
}
