"""The encoder-decoder: encode a source batch once, then decode by teacher forcing or step by step."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqkit.config import ModelConfig
from seqkit.data.tokenizer import PAD, Tokenizer
from seqkit.models.decoder import Decoder, DecoderState
from seqkit.models.encoder import Encoder
from seqkit.models.softmax import linear_cross_entropy


@dataclass
class EncodedSource:
    memory: torch.Tensor  # (batch, src_len, encoder_output)
    keys: torch.Tensor  # (batch, src_len, attention) projected once per batch
    mask: torch.Tensor  # (batch, src_len) True at real tokens

    def select(self, index: torch.Tensor) -> EncodedSource:
        return EncodedSource(
            self.memory.index_select(0, index),
            self.keys.index_select(0, index),
            self.mask.index_select(0, index),
        )


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
        )

    @classmethod
    def from_config(cls, cfg: ModelConfig, tokenizer: Tokenizer) -> Seq2Seq:
        return cls(cfg, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[EncodedSource, DecoderState]:
        memory, final = self.encoder(src, src_lengths)
        keys = self.decoder.attention.project_keys(memory).float()  # float32 for the time loop (autocast)
        encoded = EncodedSource(memory, keys, src != PAD)
        return encoded, self.decoder.init_state(final)

    def step(self, prev_tokens: torch.Tensor, state: DecoderState, encoded: EncodedSource):
        """prev_tokens (batch,) -> logits (batch, vocab), new state, attention weights (batch, src_len)."""
        return self.decoder.step(prev_tokens, state, encoded.memory, encoded.keys, encoded.mask)

    def step_features(self, prev_tokens: torch.Tensor, state: DecoderState, encoded: EncodedSource):
        """`step` before the output layer: pre-output (batch, hidden), new state, weights (batch, src_len)."""
        return self.decoder.step_features(prev_tokens, state, encoded.memory, encoded.keys, encoded.mask)

    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        tgt_out: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ):
        """Teacher forcing -> logits (batch, tgt_len, vocab). Given the targets tgt_out (batch, tgt_len),
        instead the summed cross-entropy over their non-padding tokens (label-smoothed, if asked), their
        summed negative log-likelihood, and how many of them the argmax gets right, computed without the whole logits tensor (models/softmax.py) and without padding."""
        encoded, state = self.encode(src, src_lengths)
        pre_outputs = self.decoder(tgt_in, state, encoded.memory, encoded.keys, encoded.mask)
        if tgt_out is None:
            return self.decoder.output(pre_outputs)
        real = tgt_out != PAD
        return linear_cross_entropy(pre_outputs[real], self.decoder.output, tgt_out[real], label_smoothing)
