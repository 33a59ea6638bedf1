"""The encoder-decoder: encode a source batch once, then decode by teacher forcing or step by step."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seqkit.config import ModelConfig
from seqkit.data.tokenizer import PAD, Tokenizer
from seqkit.models.decoder import Decoder, DecoderState
from seqkit.models.encoder import Encoder
from seqkit.models.softmax import linear_cross_entropy, token_cross_entropy


@dataclass
class EncodedSource:
    memory: torch.Tensor  # (batch, src_len, encoder_output)
    keys: torch.Tensor  # (batch, src_len, attention) projected once per batch
    mask: torch.Tensor  # (batch, src_len) True at real tokens
    src: torch.Tensor | None = None  # (batch, src_len) the source ids, where copying needs them

    def select(self, index: torch.Tensor) -> EncodedSource:
        return EncodedSource(
            self.memory.index_select(0, index),
            self.keys.index_select(0, index),
            self.mask.index_select(0, index),
            None if self.src is None else self.src.index_select(0, index),
        )


def copy_distribution(
    log_probs: torch.Tensor, copy_logit: torch.Tensor, weights: torch.Tensor, src: torch.Tensor
) -> torch.Tensor:
    """The pointer-generator's output: log_probs (rows, vocab) of the output layer, copy_logit (rows,),
    weights (rows, src_len) of the attention over src (rows, src_len) ids -> log-probabilities (rows,
    vocab) of g p_vocab + (1 - g) x the attention that falls on each id, g = sigmoid(copy_logit)."""
    generate = torch.sigmoid(copy_logit).unsqueeze(1)  # (rows, 1)
    probs = (log_probs.exp() * generate).scatter_add(1, src, weights * (1 - generate))
    return probs.clamp_min(1e-30).log()  # a piece neither generated nor in the source: -69, not -inf


def per_position(src: torch.Tensor, length: int) -> torch.Tensor:
    """src (batch, src_len) -> (batch, length, src_len): the source ids beside each target position (a
    view, not a copy)."""
    return src.unsqueeze(1).expand(-1, length, -1)


def copy_log_likelihood(
    vocab_nll: torch.Tensor, copy_logits: torch.Tensor, copied: torch.Tensor
) -> torch.Tensor:
    """Per target token: vocab_nll (tokens,) -log p_vocab of the target, copy_logits (tokens,), copied
    (tokens,) the attention on source positions holding the target -> log p of the target under the
    pointer-generator, log(g p_vocab + (1 - g) copied), computed from logs so that a tiny p_vocab is
    not lost (the epsilon keeps the gradient finite where nothing is copied)."""
    generated = F.logsigmoid(copy_logits) - vocab_nll
    return torch.logaddexp(generated, F.logsigmoid(-copy_logits) + torch.log(copied + 1e-30))


class Seq2Seq(nn.Module):
    def __init__(self, cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int):
        super().__init__()
        self.encoder = Encoder(
            src_vocab_size,
            cfg.embedding_size,
            cfg.encoder_hidden_size,
            cfg.encoder_layers,
            cfg.bidirectional,
            cfg.cell,
            cfg.dropout,
        )
        self.decoder = Decoder(
            tgt_vocab_size,
            cfg.embedding_size,
            cfg.decoder_hidden_size,
            cfg.decoder_layers,
            cfg.cell,
            cfg.attention,
            memory_size=self.encoder.output_size,
            encoder_final_size=self.encoder.output_size,
            dropout=cfg.dropout,
            tie_embeddings=cfg.tie_embeddings,
            copy=cfg.copy,
            coverage=cfg.coverage,
            copy_gate_start=cfg.copy_gate_start,
        )
        self.copy = cfg.copy

    @classmethod
    def from_config(cls, cfg: ModelConfig, tokenizer: Tokenizer) -> Seq2Seq:
        return cls(cfg, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[EncodedSource, DecoderState]:
        memory, final = self.encoder(src, src_lengths)
        keys = self.decoder.attention.project_keys(memory).float()  # float32 for the time loop (autocast)
        encoded = EncodedSource(memory, keys, src != PAD, src if self.copy else None)
        return encoded, self.decoder.init_state(final, src.size(1))

    def step(self, prev_tokens: torch.Tensor, state: DecoderState, encoded: EncodedSource):
        """prev_tokens (batch,) -> logits (batch, vocab), new state, attention weights (batch, src_len).
        With copy the "logits" are the pointer-generator's log-probabilities (a softmax leaves them as
        they are)."""
        logits, state, weights, copy_logit = self.decoder.step(
            prev_tokens, state, encoded.memory, encoded.keys, encoded.mask
        )
        if copy_logit is None:
            return logits, state, weights
        assert encoded.src is not None
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        return copy_distribution(log_probs, copy_logit.float(), weights.float(), encoded.src), state, weights

    def copy_gates(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the probability of generating rather than copying at each target position
        (batch, tgt_len); what `--attention` pictures show of a copy model."""
        encoded, state = self.encode(src, src_lengths)
        forced = self.decoder(tgt_in, state, encoded.memory, encoded.keys, encoded.mask)
        assert forced.copy_logits is not None
        return torch.sigmoid(forced.copy_logits)

    def step_features(self, prev_tokens: torch.Tensor, state: DecoderState, encoded: EncodedSource):
        """`step` before the output layer: pre-output (batch, hidden), new state, weights (batch, src_len)
        (not for a copy model, whose output mixes in the attention)."""
        assert not self.copy
        features, state, weights, _ = self.decoder.step_features(
            prev_tokens, state, encoded.memory, encoded.keys, encoded.mask
        )
        return features, state, weights

    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        tgt_out: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        coverage_loss: float = 1.0,
    ):
        """Teacher forcing -> logits (batch, tgt_len, vocab) (a copy model's: log-probabilities). Given the
        targets tgt_out (batch, tgt_len), instead the summed cross-entropy over their non-padding tokens
        (label-smoothed, if asked; plus coverage_loss x the coverage loss of a coverage model), their
        summed negative log-likelihood, and how many of them the argmax gets right, computed without the
        whole logits tensor (models/softmax.py) and without padding."""
        encoded, state = self.encode(src, src_lengths)
        forced = self.decoder(tgt_in, state, encoded.memory, encoded.keys, encoded.mask)
        if tgt_out is None:
            logits = self.decoder.output(forced.pre_outputs)
            if forced.copy_logits is None:
                return logits
            assert forced.weights is not None
            batch, length, vocab = logits.shape
            rows = copy_distribution(
                torch.log_softmax(logits.float(), dim=-1).reshape(-1, vocab),
                forced.copy_logits.reshape(-1).float(),
                forced.weights.reshape(batch * length, -1),
                per_position(src, length).reshape(batch * length, -1),
            )
            return rows.reshape(batch, length, vocab)
        real = tgt_out != PAD
        if forced.copy_logits is None and forced.coverage_losses is None:
            return linear_cross_entropy(
                forced.pre_outputs[real], self.decoder.output, tgt_out[real], label_smoothing
            )
        return self._copy_coverage_loss(forced, src, tgt_out, real, label_smoothing, coverage_loss)

    def _copy_coverage_loss(self, forced, src, tgt_out, real, label_smoothing: float, coverage_loss: float):
        """`forward`'s three sums for a copy or coverage model: the pointer-generator's likelihood in place of
        the output layer's (the config refuses label smoothing with copy), plus the coverage loss."""
        target = tgt_out[real]
        losses, total_nll, correct = token_cross_entropy(
            forced.pre_outputs[real],
            self.decoder.output,
            target,
            0.0 if self.copy else label_smoothing,
            unseen_as_unknown=not self.copy,  # a copy model may copy what its output layer never gives
        )
        if forced.copy_logits is not None:
            assert forced.weights is not None
            # (batch, tgt_len): the attention on the source positions that hold each target piece
            copied = (forced.weights * (src.unsqueeze(1) == tgt_out.unsqueeze(2))).sum(-1)
            losses = -copy_log_likelihood(losses, forced.copy_logits[real].float(), copied[real])
            total_nll = losses.detach().sum()
            correct = self._copy_correct(forced, src, real, target)
        loss = losses.sum()
        if forced.coverage_losses is not None:
            loss = loss + coverage_loss * forced.coverage_losses[real].sum()
        return loss, total_nll, correct

    @torch.no_grad()
    def _copy_correct(self, forced, src, real, target) -> torch.Tensor:
        """How many targets are the pointer-generator's argmax (the output layer's alone would not say)."""
        correct = torch.zeros((), dtype=torch.long, device=target.device)
        features, gates = forced.pre_outputs[real], forced.copy_logits[real].float()
        weights = forced.weights[real]
        sources = per_position(src, real.size(1))[real]  # (tokens, src_len)
        for start in range(0, target.size(0), 1024):
            chunk = slice(start, start + 1024)
            log_probs = torch.log_softmax(self.decoder.output(features[chunk]).float(), dim=-1)
            mixed = copy_distribution(log_probs, gates[chunk], weights[chunk].float(), sources[chunk])
            correct += (mixed.argmax(-1) == target[chunk]).sum()
        return correct
