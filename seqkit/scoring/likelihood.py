"""How likely a model finds target text: the cross-entropy of every target token under teacher forcing.

Training minimises it (label-smoothed, if asked); validation and `seqkit evaluate` turn it into a
perplexity (never smoothed). One module serves both, so that a dev perplexity and an evaluated one are
the same number.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from seqkit.data.batches import Batch, make_batch
from seqkit.data.corpus import ParallelIds, chunk, chunk_starts, token_stream
from seqkit.data.text import without_controls
from seqkit.data.tokenizer import Tokenizer
from seqkit.decoding.search import inference_batches
from seqkit.errors import DataError
from seqkit.runtime import devices

EVAL_ROWS = 8  # rows a language model's dev / test stream is cut into for scoring, at most
ROW_TOKENS = 1024  # ... each of at least this many tokens (a shorter stream is one row)


def perplexity(total_nll: float, num_tokens: int) -> float:
    """exp of the mean negative log-likelihood per token (nats); NaN over no tokens (it said 1.0, a
    perfect model, for nothing scored)."""
    if not num_tokens:
        return math.nan
    mean = total_nll / num_tokens
    return math.exp(mean) if mean < 700 else math.inf  # a diverged model: no OverflowError


def pair_loss(
    model, batch: Batch, label_smoothing: float = 0.0, coverage_loss: float = 1.0
) -> tuple[torch.Tensor, float, int, int]:
    """An encoder-decoder on one batch: the summed objective (cross-entropy, label-smoothed if asked, and
    a coverage model's coverage loss), the summed negative log-likelihood, the target tokens (EOS
    included) and how many the argmax gets right."""
    loss, nll, correct = model(
        batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out, label_smoothing, coverage_loss
    )
    return loss, float(nll), batch.num_tgt_tokens, int(correct)


def check_pair_lengths(src_ids, tgt_ids, limit: int, sides: tuple[str, str]) -> None:
    """A pair whose source or target has more than `limit` pieces (the model's decode.max_input_pieces, which
    `translate` holds its input lines to) is a DataError naming it as `sides` name a line: the side's
    prefix and the pair's number (teacher forcing over a line of 619,000 pieces ran for over 10 minutes)."""
    for number, pair in enumerate(zip(src_ids, tgt_ids, strict=True), start=1):
        for side, row in zip(sides, pair, strict=True):
            if len(row) > limit:
                raise DataError(
                    f"{side}{number} has {len(row):,} pieces, more than the model's decode.max_input_pieces = "
                    f"{limit:,}; split the line (at its sentence ends, say), or leave the pair out"
                )


@torch.no_grad()
def corpus_nll(model, data: ParallelIds, batch_size: int) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the targets given the sources, and the token count."""
    was_training = model.training
    model.eval()
    device = devices.model_device(model)
    total_nll, total_tokens = 0.0, 0
    for indices in inference_batches([len(s) for s in data.src], batch_size):
        _, nll, tokens, _ = pair_loss(model, make_batch(data.src, data.tgt, indices).to(device))
        total_nll, total_tokens = total_nll + nll, total_tokens + tokens
    model.train(was_training)
    return total_nll, total_tokens


@torch.no_grad()
def pair_log_probs(
    model, tokenizer: Tokenizer, sources: list[str], targets: list[str], max_pieces: int
) -> tuple[list[float], list[int]]:
    """An encoder-decoder: per pair, log P(target | source) in nats (EOS included) and the target's
    token count. One pair per batch: no padding enters a sentence's score. A side of more than
    `max_pieces` pieces is a DataError (`check_pair_lengths`)."""
    was_training = model.training
    model.eval()
    device = devices.model_device(model)
    src_ids, tgt_ids = tokenizer.encode_src(sources), tokenizer.encode_tgt(targets)
    check_pair_lengths(src_ids, tgt_ids, max_pieces, ("sources: item ", "targets: item "))
    log_probs, tokens = [], []
    for i in range(len(sources)):
        _, nll, count, _ = pair_loss(model, make_batch(src_ids, tgt_ids, [i]).to(device))
        log_probs.append(-nll)
        tokens.append(count)
    model.train(was_training)
    return log_probs, tokens


def chunk_loss(model, inputs, targets, state, label_smoothing: float = 0.0):
    """A language model on one chunk: the summed objective (smoothed, if asked), the summed negative
    log-likelihood, the argmax-correct count and the state after the chunk."""
    logits, state = model(inputs, state)
    flat_logits, flat_targets = logits.reshape(-1, logits.size(-1)), targets.reshape(-1)
    loss = F.cross_entropy(flat_logits, flat_targets, reduction="sum", label_smoothing=label_smoothing)
    if label_smoothing:
        with torch.no_grad():
            nll = float(F.cross_entropy(flat_logits, flat_targets, reduction="sum"))
    else:
        nll = float(loss.detach())
    correct = int((logits.max(-1).indices == targets).sum())  # = argmax, faster on the CPU
    return loss, nll, correct, state


@torch.no_grad()
def score_text(model, tokenizer: Tokenizer, lines: list[str], bptt_length: int) -> dict:
    """Perplexity per token and bits per character (newlines counted) of `lines`, state carried through.

    Every token after the stream's first EOS is scored once. The stream is cut into up to EVAL_ROWS rows
    of at least ROW_TOKENS, decoded side by side (a batch: fast), each of the same length but the last; a row's first input is
    the previous row's last target, so no token is left unscored (cut into rows of whole tokens, each
    row's first token was context only, and the remainder was dropped: "Hello\nworld" scored 6 of its
    12 tokens). Each row starts from an empty state."""
    was_training = model.training
    model.eval()
    device = devices.model_device(model)
    stream = token_stream(tokenizer, lines)  # (N,) EOS first: N - 1 targets
    targets = len(stream) - 1
    # rows of at least ROW_TOKENS: a row starts from an empty state, which costs a short text much (a
    # file of 12 tokens in 6 rows scored 50.7 for a perplexity of 57.3 over one)
    length = math.ceil(targets / max(1, min(EVAL_ROWS, targets // ROW_TOKENS)))
    whole = targets // length  # rows of `length` targets; then one shorter row of what is left
    parts = [torch.stack([stream[r * length : (r + 1) * length + 1] for r in range(whole)])] if whole else []
    if targets - whole * length:
        parts.append(stream[whole * length :].unsqueeze(0))  # (1, rest + 1)
    total_nll, tokens = 0.0, 0
    for rows in parts:  # (rows, row length + 1): inputs are [:, :-1], targets [:, 1:]
        rows, state = rows.to(device), None
        for start in chunk_starts(rows, bptt_length):
            inputs, next_tokens = chunk(rows, start, bptt_length)
            _, nll, _, state = chunk_loss(model, inputs, next_tokens, state)
            total_nll, tokens = total_nll + nll, tokens + next_tokens.numel()
    model.train(was_training)
    # the characters the tokenizer reads (control characters left out, as for a character model's
    # tokens: its bits per character are then exactly log2 of its perplexity), and a line end each
    characters = sum(len(without_controls(line)) + 1 for line in lines)
    return {
        "ppl": perplexity(total_nll, tokens),
        "nll_per_token": total_nll / max(1, tokens),
        "bpc": total_nll / math.log(2) / max(1, characters),
        "tokens": tokens,
    }
