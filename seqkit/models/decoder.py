"""The attentional RNN decoder, one target position per `step`.

Bahdanau order (default): attend with the previous top hidden state, feed the context into the RNN
input together with the previous target embedding, then predict from the new state, the context and
the embedding. Luong order: run the RNN on the embedding and the previous attentional vector (input
feeding), attend with the new state, then predict from tanh(W [state; context; embedding]).
State is passed in and returned, never stored on the module, so search can reorder it freely.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqkit.data.tokenizer import PAD
from seqkit.models.attention import ATTENTIONS
from seqkit.models.cells import make_rnn


@dataclass
class DecoderState:
    hidden: torch.Tensor  # (layers, batch, hidden)
    cell: torch.Tensor | None  # (layers, batch, hidden), LSTM only
    feed: torch.Tensor  # (batch, hidden) previous attentional vector (Luong input feeding)

    def rnn_state(self):
        return self.hidden if self.cell is None else (self.hidden, self.cell)

    def select(self, index: torch.Tensor) -> DecoderState:
        """Rows `index` of every tensor (beam search reorders and expands with this)."""
        cell = None if self.cell is None else self.cell.index_select(1, index)
        return DecoderState(self.hidden.index_select(1, index), cell, self.feed.index_select(0, index))


class Decoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int,
        cell: str,
        attention: str,
        memory_size: int,
        encoder_final_size: int,
        dropout: float,
        tie_embeddings: bool = False,
    ):
        super().__init__()
        self.cell_type = cell
        self.num_layers, self.hidden_size = num_layers, hidden_size
        self.attend_first = attention == "bahdanau"
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.attention = ATTENTIONS[attention](hidden_size, memory_size, hidden_size)
        feed_size = memory_size if self.attend_first else hidden_size
        self.rnn = make_rnn(cell, embedding_size + feed_size, hidden_size, num_layers, dropout)
        # The bridge turns the encoder's final state into the decoder's first state, one per layer.
        self.bridge = nn.Linear(encoder_final_size, num_layers * hidden_size)
        self.pre_output = nn.Linear(hidden_size + memory_size + embedding_size, hidden_size)
        self.output = nn.Linear(hidden_size, vocab_size)
        if tie_embeddings:  # the config checks that embedding_size == hidden_size
            self.output.weight = self.embedding.weight
        self.dropout = nn.Dropout(dropout)

    def init_state(self, encoder_final: torch.Tensor) -> DecoderState:
        """encoder_final (batch, encoder_final_size) -> the state before the first target token."""
        batch = encoder_final.size(0)
        hidden = torch.tanh(self.bridge(encoder_final))  # (batch, layers * hidden)
        hidden = hidden.view(batch, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
        cell = torch.zeros_like(hidden) if self.cell_type == "lstm" else None
        return DecoderState(hidden, cell, encoder_final.new_zeros(batch, self.hidden_size))

    def _step(self, embedded, state, memory, keys, mask):
        """embedded (batch, embedding) -> pre-output (batch, hidden), new state, weights (batch, src_len)."""
        if self.attend_first:
            context, weights = self.attention(state.hidden[-1], keys, memory, mask)
            rnn_input = torch.cat([embedded, context], dim=-1)
        else:
            rnn_input = torch.cat([embedded, state.feed], dim=-1)
        output, rnn_state = self.rnn(rnn_input.unsqueeze(1), state.rnn_state())
        output = output.squeeze(1)  # (batch, hidden)
        if not self.attend_first:
            context, weights = self.attention(output, keys, memory, mask)
        pre_output = torch.tanh(self.pre_output(torch.cat([output, context, embedded], dim=-1)))
        hidden, cell = rnn_state if isinstance(rnn_state, tuple) else (rnn_state, None)
        return self.dropout(pre_output), DecoderState(hidden, cell, pre_output), weights

    def step(self, prev_tokens, state, memory, keys, mask):
        """prev_tokens (batch,) -> logits (batch, vocab), new state, attention weights (batch, src_len)."""
        embedded = self.dropout(self.embedding(prev_tokens))
        pre_output, state, weights = self._step(embedded, state, memory, keys, mask)
        return self.output(pre_output), state, weights

    def forward(self, tgt_in, state, memory, keys, mask) -> torch.Tensor:
        """Teacher forcing: tgt_in (batch, tgt_len) -> logits (batch, tgt_len, vocab)."""
        embedded = self.dropout(self.embedding(tgt_in))  # (batch, tgt_len, embedding)
        pre_outputs = []
        # unbind, not embedded[:, t]: slicing would make backward zero-fill a full-size gradient per step
        for embedded_t in embedded.unbind(1):
            pre_output, state, _ = self._step(embedded_t, state, memory, keys, mask)
            pre_outputs.append(pre_output)
        # One output projection for all positions is much cheaper than one per step.
        return self.output(torch.stack(pre_outputs, dim=1))
