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


def _energy(keys: torch.Tensor, query: torch.Tensor, coverage=None, coverage_weight=None) -> torch.Tensor:
    """tanh(keys + query [+ coverage x coverage_weight]) (batch, src_len, attention), computed as
    2 sigmoid(2x) - 1 in place: the same function to within 2e-7, and several times faster than torch's
    own tanh on the CPUs measured (bench/README.md), where it was the largest cost of a decoding step
    after the products. coverage (batch, src_len), coverage_weight (attention,): See et al.'s w_c c_i."""
    energy = keys + query.unsqueeze(1)
    if coverage is not None:
        energy.addcmul_(coverage.unsqueeze(-1), coverage_weight)
    return energy.mul_(2).sigmoid_().mul_(2).sub_(1)


class _AdditiveScores(torch.autograd.Function):
    """scores = tanh(keys + query [+ coverage term]) . v, whose backward recomputes the tanh instead of
    keeping it.

    Kept, the (batch, src_len, attention) activation of every decoder step would stay in memory for the
    whole backward pass: batch x tgt_len x src_len x attention floats, 600 MB for 30 sentences of 100
    pieces. Recomputing costs one addition and one tanh per step; the in-place steps of both passes make
    fewer temporaries than autograd's own graph of add, tanh and linear."""

    @staticmethod
    def forward(ctx, keys, query, v, coverage=None, coverage_weight=None):
        """keys (batch, src_len, attention), query (batch, attention), v (attention,) -> (batch, src_len);
        coverage (batch, src_len) and coverage_weight (attention,), or None."""
        ctx.save_for_backward(keys, query, v, coverage, coverage_weight)
        return _energy(keys, query, coverage, coverage_weight) @ v

    @staticmethod
    def backward(ctx, grad_scores):
        keys, query, v, coverage, coverage_weight = ctx.saved_tensors
        # Under autocast across the time loop (on a GPU) the scores came out of a bf16 / fp16 product and
        # their gradient has that type; the keys are float32, and backward runs without autocast, where
        # mixed types in one product are an error: the backward pass computes in float32 (autograd casts
        # each returned gradient to its input's type)
        grad_scores = grad_scores.float()
        energy = _energy(keys, query, coverage, coverage_weight)  # (batch, src_len, attention)
        grad_v = torch.einsum("bs,bsa->a", grad_scores, energy)
        # d/dx tanh(x) = 1 - tanh(x)^2, computed in the energy's own memory
        grad_energy = energy.square_().neg_().add_(1).mul_(grad_scores.unsqueeze(-1) * v)
        if coverage is None:
            return grad_energy, grad_energy.sum(1), grad_v, None, None
        grad_coverage = grad_energy @ coverage_weight  # (batch, src_len)
        grad_coverage_weight = torch.einsum("bsa,bs->a", grad_energy, coverage)
        return grad_energy, grad_energy.sum(1), grad_v, grad_coverage, grad_coverage_weight


# decoding on the CPU computes the energies in blocks of rows of at most this many floats (1 MB), which
# stay in the cache between the addition, the tanh and the product with v; the whole (rows, src_len,
# attention) tensor of a beam search (64 sentences x 5 beams x 40 pieces x 512: 26 MB) goes to memory
# and back at each of them. int8 beam 5 over the bench's test set: 3,086 / 3,335 against 2,606 / 2,798
# pieces/s (bench/README.md, "Energies in blocks")
ENERGY_BLOCK = 1 << 18


def _blocked_scores(keys: torch.Tensor, query: torch.Tensor, v: torch.Tensor, coverage=None, weight=None):
    """`_AdditiveScores` without autograd (decoding), a block of rows at a time: the energies are those of
    one pass; the product with v may sum in another order for another number of rows (differences of
    about 1e-7). keys (rows, src_len, attention) -> scores (rows, src_len)."""
    rows = max(1, ENERGY_BLOCK // (keys.size(1) * keys.size(2)))
    if rows >= keys.size(0):
        return _energy(keys, query, coverage, weight) @ v
    return torch.cat(
        [
            _energy(
                keys[i : i + rows],
                query[i : i + rows],
                None if coverage is None else coverage[i : i + rows],
                weight,
            )
            @ v
            for i in range(0, keys.size(0), rows)
        ]
    )


def _onnx_scores(keys: torch.Tensor, query: torch.Tensor, v: torch.Tensor, coverage=None, weight=None):
    """`_AdditiveScores` as an ONNX export writes it: onnxruntime's own Tanh is one vectorised pass (the
    sigmoid trick would cost it four), and its product with v runs as one matrix of (batch * src_len)
    rows, where a batched matrix-vector product took it about a quarter of a decoding step."""
    energy = keys + query.unsqueeze(1)
    if coverage is not None:
        energy = energy + coverage.unsqueeze(-1) * weight
    energy = torch.tanh(energy)  # (batch, src_len, attention)
    return (energy.reshape(-1, energy.size(-1)) @ v.unsqueeze(1)).reshape(energy.shape[:2])


class BahdanauAttention(nn.Module):
    """score(q, k_j) = v . tanh(W_q q + W_k m_j)"""

    def __init__(self, query_size: int, memory_size: int, attention_size: int, coverage: bool = False):
        super().__init__()
        self.key_layer = nn.Linear(memory_size, attention_size, bias=False)
        self.query_layer = nn.Linear(query_size, attention_size, bias=False)
        self.energy_layer = nn.Linear(attention_size, 1, bias=False)
        # See et al.'s w_c: how the coverage of a source piece enters its energy (zero: none at first)
        self.coverage_weight = nn.Parameter(torch.zeros(attention_size)) if coverage else None

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_layer(memory)  # (batch, src_len, attention)

    def forward(self, query, keys, memory, mask, coverage=None):
        """query (batch, q), coverage (batch, src_len) or None -> context (batch, m), weights (batch, src_len)"""
        weight = self.coverage_weight if coverage is not None else None
        arguments = (keys, self.query_layer(query), self.energy_layer.weight[0], coverage, weight)
        if torch.onnx.is_in_onnx_export():
            scores = _onnx_scores(*arguments)
        elif not torch.is_grad_enabled() and keys.device.type == "cpu":  # (a GPU would launch more kernels)
            scores = _blocked_scores(*arguments)
        else:
            scores = _AdditiveScores.apply(*arguments)
        return _attend(scores, memory, mask)


class LuongAttention(nn.Module):
    """score(q, m_j) = q . W m_j  (Luong et al. 2015, "general")"""

    def __init__(self, query_size: int, memory_size: int, attention_size: int, coverage: bool = False):
        super().__init__()
        self.key_layer = nn.Linear(memory_size, query_size, bias=False)
        # with coverage, a learned scale of each piece's coverage is added to its score (See et al.
        # define coverage for additive attention; this is its one-number form for a dot product)
        self.coverage_weight = nn.Parameter(torch.zeros(1)) if coverage else None

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_layer(memory)  # (batch, src_len, query)

    def forward(self, query, keys, memory, mask, coverage=None):
        scores = torch.bmm(keys, query.unsqueeze(2)).squeeze(2)  # (batch, src_len)
        if coverage is not None:
            scores = scores + self.coverage_weight * coverage
        return _attend(scores, memory, mask)


ATTENTIONS: dict[str, type[BahdanauAttention] | type[LuongAttention]] = {
    "bahdanau": BahdanauAttention,
    "luong": LuongAttention,
}
