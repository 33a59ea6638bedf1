"""A recurrent language model: embeddings, a stacked RNN and a softmax over the next token.

Trained by truncated backpropagation through time: `forward` takes a chunk and the state left by the
previous chunk, and returns the new state for the next one (the caller detaches it).
"""

from __future__ import annotations

import torch
from torch import nn

from seqkit.config import ModelConfig
from seqkit.data.tokenizer import PAD, Tokenizer
from seqkit.models.cells import make_rnn
from seqkit.runtime.devices import fp32_time_steps

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None  # (layers, batch, hidden), a pair for LSTM


class RNNLanguageModel(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_size, padding_idx=PAD)
        self.dropout = nn.Dropout(cfg.dropout)
        self.rnn = make_rnn(
            cfg.cell, cfg.embedding_size, cfg.decoder_hidden_size, cfg.decoder_layers, cfg.dropout
        )
        self.output = nn.Linear(cfg.decoder_hidden_size, vocab_size)
        if cfg.tie_embeddings:  # Press & Wolf 2017: fewer parameters, often lower perplexity
            self.output.weight = self.embedding.weight

    @classmethod
    def from_config(cls, cfg: ModelConfig, tokenizer: Tokenizer) -> RNNLanguageModel:
        return cls(cfg, tokenizer.tgt_vocab_size)

    def forward(self, tokens: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """tokens (batch, length) -> logits (batch, length, vocab) for the next token at each position."""
        with fp32_time_steps(tokens.device):  # (as the encoder's: no bf16 LSTM on a CPU)
            output, state = self.rnn(self.dropout(self.embedding(tokens)), state)
        return self.output(self.dropout(output)), state

    def prompt(self, tokens: torch.Tensor) -> tuple[torch.Tensor, State]:
        """tokens (batch, length) -> logits (batch, vocab) for the token after the last one, and the state:
        the output layer over the last position only (over every position, a prompt of 30,000 tokens took
        30,000 x vocab floats, 1 GB at 8,000 pieces)."""
        with fp32_time_steps(tokens.device):
            output, state = self.rnn(self.dropout(self.embedding(tokens)))  # (batch, length, hidden)
        return self.output(self.dropout(output[:, -1])), state

    def step(self, prev_tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """prev_tokens (batch,) -> logits (batch, vocab), new state."""
        logits, state = self(prev_tokens.unsqueeze(1), state)
        return logits.squeeze(1), state


def detach_state(state: State) -> State:
    """Cut the graph between chunks: gradients flow back `bptt_length` tokens, the state flows on."""
    if state is None:
        return None
    if isinstance(state, tuple):
        hidden, cell = state
        return hidden.detach(), cell.detach()
    return state.detach()
