"""The output layer and its cross-entropy, computed together a chunk of tokens at a time.

Training's largest tensors are the logits over the vocabulary: 3,000 tokens x 8,000 pieces is 96 MB in
float32, and autograd's own cross-entropy keeps several of them (the logits, a float32 copy under
autocast, the log-softmax, their gradients) at once. Here the forward pass computes a chunk of logits
at a time and keeps one log-sum-exp per token and, when the whole batch's fit in KEEP_BYTES, the
exponentiated logits themselves (one float32 tensor, written in place of the logits), which the
backward pass turns into softmax - target directly. A larger batch (a larger vocabulary) keeps only
the log-sum-exps, and the backward pass recomputes each chunk's logits: one more output-layer product,
a sixth of a step's arithmetic (bench/README.md). Under autocast the products run in the autocast type,
everything else in float32.

A piece that never occurs as a target in the training data (with a vocabulary shared by both languages,
half of the 8,000 pieces of bench/workload.toml) is given the bias UNSEEN_LOGIT (and a zero row) by
training (`exclude_unseen`): its probability is 0 in float32 wherever the layer is used, and the
cross-entropy here computes only the other rows, the same numbers for about half the work. A target the
layer cannot give (a dev piece never seen in training) is scored as the unknown piece, as a vocabulary
without it would score it.
"""

from __future__ import annotations

from typing import Any

import torch

from seqkit.data.tokenizer import EOS, UNK

CHUNK_TOKENS = 1024
KEEP_BYTES = 256 * 2**20  # the exponentiated logits are kept for the backward pass up to this size
# the bias of a piece the output layer never gives: exp(-1e4 - anything a trained layer computes) is 0 in
# float32, bf16 and float16 alike, while every sum and mean over the logits stays finite (-inf would not)
UNSEEN_LOGIT = -1e4


@torch.no_grad()
def exclude_unseen(
    output: torch.nn.Linear, seen: torch.Tensor, keep_given: bool = False, zero_rows: bool = True
) -> None:
    """Pieces not `seen` (a (vocab,) bool tensor: seen as a training target) get the bias UNSEEN_LOGIT
    and, with `zero_rows`, a zero row (not for a layer tied to the embeddings, whose row of BOS, never a
    target, is the decoder's first input); UNK and EOS are always kept. With `keep_given` (training from
    another model) the pieces the layer gives stay too, so fine-tuning on a smaller corpus loses none of
    them. A kept piece whose bias is UNSEEN_LOGIT starts again from a bias of 0."""
    seen = seen.to(output.bias.device).clone()
    seen[[UNK, EOS]] = True
    if keep_given:
        seen |= output.bias != UNSEEN_LOGIT
    if zero_rows:
        output.weight[~seen] = 0.0
    output.bias[~seen] = UNSEEN_LOGIT
    output.bias[seen & (output.bias == UNSEEN_LOGIT)] = 0.0


def given_pieces(output: torch.nn.Module) -> torch.Tensor | None:
    """The ids (pieces,) of the pieces whose bias is not UNSEEN_LOGIT, or None where that is all of them;
    `output` is a Linear layer or its int8 version (`translate --quantize`), whose bias is a method."""
    bias: Any = output.bias
    bias = bias() if callable(bias) else bias
    given = bias.detach() != UNSEEN_LOGIT
    return None if bool(given.all()) else given.nonzero().squeeze(1)


def _compute_type(tensor: torch.Tensor) -> torch.dtype:
    device = tensor.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else torch.float32


def _logits_buffer(features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """One float32 (chunk, vocab) tensor that every chunk of a pass writes its logits into: one large
    allocation per pass instead of several per chunk (32 MB each for 8k pieces), which would otherwise
    take fresh pages or split the heap (allocator.py)."""
    return torch.empty(min(CHUNK_TOKENS, features.size(0)), weight.size(0), device=features.device)


def _logits_into(buffer: torch.Tensor, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
    """inputs (tokens, hidden) -> their float32 logits, in the first rows of `buffer`."""
    rows = buffer[: inputs.size(0)]
    if inputs.dtype == torch.float32:
        return torch.addmm(bias, inputs, weight.t(), out=rows)
    return rows.copy_(torch.addmm(bias, inputs, weight.t()))  # the product in the autocast type


class _LinearCrossEntropy(torch.autograd.Function):
    """Per token, the cross-entropy of the target under softmax(features W^T + b), label-smoothed if
    asked (as F.cross_entropy: (1 - e) nll + e x the mean over the vocabulary of -log p), differentiable;
    and in all the negative log-likelihood (never smoothed) and how many targets are the argmax."""

    @staticmethod
    def forward(ctx, features, weight, bias, target, label_smoothing: float):
        dtype = _compute_type(features)
        losses = torch.empty(features.size(0), device=features.device)
        total_nll = torch.zeros((), device=features.device)  # without smoothing: what perplexity reads
        correct = torch.zeros((), dtype=torch.long, device=features.device)
        log_sum_exp = torch.empty(features.size(0), device=features.device)
        tokens, vocab = features.size(0), weight.size(0)
        # (tokens, vocab) float32: every chunk's exp(logits - max) stays, or None: recomputed in backward
        keep = any(ctx.needs_input_grad[:3]) and tokens * vocab * 4 <= KEEP_BYTES  # (not for validation)
        kept = torch.empty(tokens, vocab, device=features.device) if keep else None
        row_max = torch.empty(tokens, device=features.device) if kept is not None else None
        with torch.autocast(features.device.type, enabled=False):
            weight_c, bias_c = weight.to(dtype), bias.to(dtype)
            buffer = kept if kept is not None else _logits_buffer(features, weight)
            for start in range(0, features.size(0), CHUNK_TOKENS):
                chunk = slice(start, start + CHUNK_TOKENS)
                rows = buffer[chunk] if kept is not None else buffer
                logits = _logits_into(rows, features[chunk].to(dtype), weight_c, bias_c)  # (chunk, vocab)
                best = logits.max(dim=-1)  # = argmax, faster
                correct += (best.indices == target[chunk]).sum()
                target_logits = logits.gather(1, target[chunk].unsqueeze(1)).squeeze(1)
                mean_logits = logits.mean(dim=-1) if label_smoothing else None
                # log-sum-exp, as torch.logsumexp computes it, in the logits' own memory
                lse = best.values + logits.sub_(best.values.unsqueeze(1)).exp_().sum(dim=-1).log_()
                nll = lse - target_logits
                total_nll += nll.sum()
                if label_smoothing:
                    nll = (1 - label_smoothing) * nll + label_smoothing * (lse - mean_logits)
                losses[chunk] = nll
                log_sum_exp[chunk] = lse
                if row_max is not None:
                    row_max[chunk] = best.values
        ctx.save_for_backward(features, weight, bias, target, log_sum_exp)
        ctx.kept, ctx.row_max = kept, row_max  # (not saved tensors: the backward pass writes into them)
        ctx.dtype, ctx.label_smoothing = dtype, label_smoothing
        ctx.mark_non_differentiable(total_nll, correct)
        return losses, total_nll, correct

    @staticmethod
    def backward(ctx, grad_losses, _grad_nll, _grad_correct):
        features, weight, bias, target, log_sum_exp = ctx.saved_tensors
        dtype, smoothing = ctx.dtype, ctx.label_smoothing
        grad_features = torch.empty_like(features)
        grad_weight = torch.zeros(weight.shape, device=weight.device)
        grad_bias = torch.zeros(bias.shape, device=bias.device)
        kept, row_max = ctx.kept, ctx.row_max
        ctx.kept = ctx.row_max = None
        with torch.autocast(features.device.type, enabled=False):
            weight_c, bias_c = weight.to(dtype), bias.to(dtype)
            buffer = None if kept is not None else _logits_buffer(features, weight)
            for start in range(0, features.size(0), CHUNK_TOKENS):
                chunk = slice(start, start + CHUNK_TOKENS)
                inputs = features[chunk].to(dtype)
                # d loss / d logits = softmax - (1 - e) onehot(target) - e / vocab
                if kept is not None:  # exp(logits - max) * exp(max - lse)
                    scale = (row_max[chunk] - log_sum_exp[chunk]).exp_().unsqueeze(1)
                    grad_logits = kept[chunk].mul_(scale)
                else:
                    assert buffer is not None
                    logits = _logits_into(buffer, inputs, weight_c, bias_c)
                    grad_logits = logits.sub_(log_sum_exp[chunk].unsqueeze(1)).exp_()
                rows = torch.arange(grad_logits.size(0), device=grad_logits.device)
                grad_logits[rows, target[chunk]] -= 1 - smoothing
                if smoothing:
                    grad_logits -= smoothing / grad_logits.size(1)
                grad_logits *= grad_losses[chunk].unsqueeze(1)  # each token's own weight in the loss
                grad_bias += grad_logits.sum(0)
                grad_c = grad_logits.to(dtype)
                grad_features[chunk] = (grad_c @ weight_c).to(features.dtype)
                grad_weight += (grad_c.t() @ inputs).float()
        return grad_features, grad_weight.to(weight.dtype), grad_bias.to(bias.dtype), None, None


def token_cross_entropy(
    features: torch.Tensor,
    output: torch.nn.Linear,
    target: torch.Tensor,
    label_smoothing: float = 0.0,
    unseen_as_unknown: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """features (tokens, hidden), target (tokens,) -> each token's cross-entropy of `output(features)`
    against `target` (tokens,) (smoothed, if asked, over the pieces the layer gives), the summed negative
    log-likelihood (never smoothed), and how many tokens the output's argmax gets right. A target the
    layer never gives is scored as UNK or, without `unseen_as_unknown`, as -UNSEEN_LOGIT (probability 0:
    a copy model may still copy it)."""
    pieces = given_pieces(output)
    if pieces is None:
        return _LinearCrossEntropy.apply(features, output.weight, output.bias, target, label_smoothing)
    # (vocab,) the column of each piece among the given ones; a piece not given: UNK's column
    columns = torch.full_like(output.bias, -1, dtype=torch.long)
    columns[pieces] = torch.arange(pieces.numel(), device=pieces.device)
    given = columns[target] >= 0  # (tokens,)
    columns[columns < 0] = columns[UNK]
    weight, bias = output.weight.index_select(0, pieces), output.bias.index_select(0, pieces)
    losses, total_nll, correct = _LinearCrossEntropy.apply(
        features, weight, bias, columns[target], label_smoothing
    )
    if not unseen_as_unknown and not bool(given.all()):
        losses = torch.where(given, losses, -UNSEEN_LOGIT)
        total_nll = losses.detach().sum()
    return losses, total_nll, correct


def linear_cross_entropy(
    features: torch.Tensor, output: torch.nn.Linear, target: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`token_cross_entropy` summed over the tokens (the training objective), the summed negative
    log-likelihood, and how many tokens the argmax gets right."""
    losses, total_nll, correct = token_cross_entropy(features, output, target, label_smoothing)
    return losses.sum(), total_nll, correct
