"""Decoding: token ids in, token ids out. Greedy and beam search over a model's `encode` / `step` pair,
and sampling from a language model.

Every sentence has its own length limit (`max_length_ratio * source length + offset`), so a sentence
decodes to the same output alone or in any batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from seqkit.config import DecodeConfig
from seqkit.data.batches import inference_batches, make_batch
from seqkit.data.tokenizer import BOS, EOS, PAD, UNK
from seqkit.runtime import devices


def max_output_lengths(src_lengths: torch.Tensor, cfg: DecodeConfig) -> torch.Tensor:
    """(batch,) source lengths (with EOS) -> (batch,) the most output pieces each may get."""
    return (cfg.max_length_ratio * (src_lengths - 1)).long() + cfg.max_length_offset


def _strip(tokens: list[int]) -> list[int]:
    return tokens[: tokens.index(EOS)] if EOS in tokens else tokens


@dataclass(frozen=True)
class Hypothesis:
    tokens: list[int]  # without EOS
    score: float  # log-probability divided by the length penalty: what the beam ranks by
    log_prob: float  # sum of token log-probabilities, EOS included
    # (output steps, source length with EOS): the attention of each step that made a token or the EOS;
    # only when the search was asked for it
    attention: torch.Tensor | None = None


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + length) / 6) ** alpha; alpha 0 ranks by raw log-probability."""
    return ((5 + length) / 6) ** alpha


COMPACT_FRACTION = 0.25  # greedy: stop computing finished rows once they are this share of the batch


@torch.no_grad()
def greedy_search(
    model,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_lengths: torch.Tensor,
    with_attention: bool = False,
) -> list[Hypothesis]:
    """src (batch, src_len) -> for each sentence the argmax token at every step, EOS removed.
    Every tensor but `src_lengths` is on the model's device.

    Sentences that have ended are dropped from the batch now and then (each row's arithmetic is its own,
    so this changes no output), instead of being carried to the end of the longest sentence."""
    encoded, state = model.encode(src, src_lengths)
    batch, device = src.size(0), src.device
    rows = torch.arange(batch, device=device)  # the sentence of each row still computed
    limits = max_lengths
    prev = torch.full((batch,), BOS, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)  # per row
    log_prob = torch.zeros(batch, device=device)  # per sentence
    # + 1: the step that ends the longest-allowed sentences (as in beam search), so that every sentence
    # has its EOS step, whatever else shares its batch
    output = torch.full((batch, int(max_lengths.max()) + 1), EOS, dtype=torch.long, device=device)
    # (batch, output steps, src_len), filled as the rows step
    attention = torch.zeros(batch, output.size(1), src.size(1), device=device) if with_attention else None
    for t in range(output.size(1)):
        logits, state, weights = model.step(prev, state, encoded)
        if attention is not None:
            attention[rows, t] = weights.float()
        at_limit = limits <= t  # a sentence at its own limit ends here, at no cost (as in beam search)
        tokens = logits.max(dim=-1).indices.masked_fill(at_limit, EOS)  # (rows,) = argmax, faster on the CPU
        token_log_probs = torch.log_softmax(logits.float(), dim=-1).gather(1, tokens.unsqueeze(1)).squeeze(1)
        log_prob.index_add_(0, rows, token_log_probs.masked_fill(at_limit | finished, 0.0))
        output[rows, t] = tokens.masked_fill(finished, EOS)
        finished |= tokens == EOS
        if finished.all():
            break
        if finished.sum() >= COMPACT_FRACTION * len(rows):
            keep = (~finished).nonzero().squeeze(1)
            rows, limits, tokens, finished = rows[keep], limits[keep], tokens[keep], finished[keep]
            state, encoded = state.select(keep), encoded.select(keep)
        prev = tokens
    outputs = [_strip(row) for row in output.tolist()]
    hypotheses = [Hypothesis(tokens, lp, lp) for tokens, lp in zip(outputs, log_prob.tolist(), strict=True)]
    if attention is None:
        return hypotheses
    return [  # the steps that made the tokens, and the EOS step
        replace(h, attention=attention[i, : len(h.tokens) + 1, : int(src_lengths[i])].cpu())
        for i, h in enumerate(hypotheses)
    ]


@torch.no_grad()
def beam_search(
    model,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_lengths: torch.Tensor,
    beam_size: int,
    alpha: float,
    with_attention: bool = False,
) -> list[list[Hypothesis]]:
    """Beam search over all sentences and beams at once -> per sentence, `beam_size` finished hypotheses, best first.

    Each step ranks the 2k best continuations of a sentence's k beams: those ending in EOS among the k best
    are finished; the k best that do not end become the new beams. A sentence is done when it has k finished
    hypotheses; the loop ends when every sentence is done. With k = 1 this is exactly greedy search.
    Done sentences leave the batch now and then (as in greedy search: no output changes).
    """
    batch, k, device = src.size(0), beam_size, src.device
    encoded, state = model.encode(src, src_lengths)
    rows = torch.arange(batch, device=device).repeat_interleave(k)  # beam row -> sentence
    encoded, state = encoded.select(rows), state.select(rows)
    row_limits = max_lengths[rows]  # (batch * k,)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: only the first may expand
    prev = torch.full((batch * k,), BOS, dtype=torch.long, device=device)
    history = torch.empty((batch * k, 0), dtype=torch.long, device=device)
    # (batch * k, steps, src_len): each beam's attention so far, reordered with `history`
    attention = torch.empty((batch * k, 0, src.size(1)), device=device) if with_attention else None
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    sentences = list(range(batch))  # the sentence of each row of `scores` still searched
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    for t in range(int(max_lengths.max()) + 1):  # + 1: the step that ends the longest-allowed beams
        logits, state, weights = model.step(prev, state, encoded)
        log_probs = torch.log_softmax(logits.float(), dim=-1)  # (batch * k, vocab)
        at_limit = row_limits <= t  # these beams may only end
        log_probs[at_limit] = float("-inf")
        log_probs[at_limit, EOS] = 0.0
        vocab = log_probs.size(-1)
        searched = len(sentences)
        candidates = (scores.view(-1, 1) + log_probs).view(searched, k * vocab)
        top_scores, top_ids = candidates.topk(min(2 * k, k * vocab), dim=1)  # (batch, 2k), best first
        top_beams, top_tokens = top_ids // vocab, top_ids % vocab
        ends = top_tokens == EOS
        top_rows = torch.arange(searched, device=device).unsqueeze(1) * k + top_beams  # (searched, 2k)
        for b, j in (ends[:, :k] & top_scores[:, :k].isfinite() & ~done.unsqueeze(1)).nonzero().tolist():
            row = top_rows[b, j]
            tokens = history[row].tolist()
            raw = float(top_scores[b, j])
            weights_so_far = None
            if attention is not None:
                steps = torch.cat([attention[row], weights[row].float().unsqueeze(0)])
                weights_so_far = steps[:, : int(src_lengths[sentences[b]])].cpu()
            finished[sentences[b]].append(
                Hypothesis(tokens, raw / length_penalty(len(tokens) + 1, alpha), raw, weights_so_far)
            )
        done |= torch.tensor([len(finished[s]) >= k for s in sentences], device=device)
        if done.all():
            break
        # the k best continuations that do not end are the new beams (top_scores is sorted, so is this)
        keep_scores, keep = top_scores.masked_fill(ends, float("-inf")).topk(k, dim=1)  # (batch, k)
        keep_rows = top_rows.gather(1, keep).view(-1)
        prev = top_tokens.gather(1, keep).view(-1)
        scores = keep_scores.masked_fill(done.unsqueeze(1), float("-inf"))
        if done.sum() >= COMPACT_FRACTION * searched:  # the done sentences' rows leave the batch
            alive = (~done).nonzero().squeeze(1)
            alive_rows = (alive.unsqueeze(1) * k + torch.arange(k, device=device)).view(-1)
            sentences = [sentences[i] for i in alive.tolist()]
            done, scores, prev = done[alive], scores[alive], prev[alive_rows]
            keep_rows, row_limits = keep_rows[alive_rows], row_limits[alive_rows]
            encoded = encoded.select(alive_rows)
        history = torch.cat([history.index_select(0, keep_rows), prev.unsqueeze(1)], dim=1)
        if attention is not None:
            kept_weights = weights.float().index_select(0, keep_rows).unsqueeze(1)
            attention = torch.cat([attention.index_select(0, keep_rows), kept_weights], dim=1)
        state = state.select(keep_rows)
    return [sorted(f, key=lambda h: -h.score)[:k] for f in finished]


@torch.no_grad()
def decode_corpus(
    model, src_ids: Sequence[list[int]], cfg: DecodeConfig, with_attention: bool = False
) -> list[list[Hypothesis]]:
    """Hypotheses for every source, best first, in input order (one with beam size 1), batched by length.
    `with_attention`: each hypothesis carries its attention weights (Hypothesis.attention)."""
    was_training = model.training
    model.eval()
    device = devices.model_device(model)
    outputs: list[list[Hypothesis]] = [[] for _ in src_ids]
    for indices in inference_batches([len(s) for s in src_ids], cfg.batch_size):
        batch = make_batch(src_ids, None, indices).to(device)
        max_lengths = max_output_lengths(batch.src_lengths, cfg).to(device)
        if cfg.beam_size == 1:
            greedy = greedy_search(model, batch.src, batch.src_lengths, max_lengths, with_attention)
            # ranked like a beam's hypotheses, so that n-best scores mean the same at every beam size
            penalty = [length_penalty(len(h.tokens) + 1, cfg.length_penalty) for h in greedy]
            results = [[replace(h, score=h.log_prob / p)] for h, p in zip(greedy, penalty, strict=True)]
        else:
            results = beam_search(
                model,
                batch.src,
                batch.src_lengths,
                max_lengths,
                cfg.beam_size,
                cfg.length_penalty,
                with_attention,
            )
        for i, hypotheses in zip(indices, results, strict=True):
            outputs[i] = hypotheses
    model.train(was_training)
    return outputs


NEVER_SAMPLED = (PAD, UNK, BOS)  # a language model may end a text (EOS) but not emit these


def choose_tokens(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float, generator: torch.Generator
) -> torch.Tensor:
    """logits (batch, vocab) -> (batch,) next tokens: argmax at temperature 0, else a sample from the
    temperature-scaled distribution restricted to the top k tokens and to the top-p nucleus.
    Sampling runs on the CPU, with a CPU generator: the same seed gives the same text on every device."""
    logits = logits.to("cpu", torch.float32, copy=True)
    logits[:, list(NEVER_SAMPLED)] = float("-inf")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k:
        kth_best = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        outside = probs.cumsum(dim=-1) - probs >= top_p  # the mass before this token already reaches p
        logits = logits.scatter(1, order, sorted_logits.masked_fill(outside, float("-inf")))
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)


@torch.no_grad()
def sample(model, prompt: list[int], cfg, generator: torch.Generator, on_token=None) -> list[int]:
    """Continue `prompt` (token ids) with a language model until EOS or `cfg.max_tokens` new tokens.

    `cfg` is a GenerateConfig; `on_token(tokens_so_far)` is called after each new token (for streaming).
    The context starts with EOS, as every training line does, so an empty prompt starts a new line."""
    device = devices.model_device(model)
    logits, state = model(torch.tensor([[EOS, *prompt]], device=device))
    logits = logits[:, -1]  # (1, vocab)
    generated: list[int] = []
    for _ in range(cfg.max_tokens):
        token = choose_tokens(logits, cfg.temperature, cfg.top_k, cfg.top_p, generator)
        if int(token) == EOS:
            break
        generated.append(int(token))
        if on_token:
            on_token(generated)
        logits, state = model.step(token.to(device), state)
    return generated
