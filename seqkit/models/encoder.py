"""The encoder: embeddings and a (bidirectional, stacked) RNN over packed sequences."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqkit.data.tokenizer import PAD
from seqkit.models.cells import make_rnn
from seqkit.runtime.devices import fp32_time_steps


class Encoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        cell: str,
        dropout: float,
        input_layer: nn.Module | None = None,
        activation: str = "tanh",
    ):
        """`input_layer` maps each step's input to `embedding_size` values instead of token embeddings (a
        classifier of numbers gives a linear layer); `activation`: the vanilla RNN's nonlinearity."""
        super().__init__()
        self.embedding = input_layer or nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(cell, embedding_size, hidden_size, num_layers, dropout, bidirectional, activation)
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src (batch, src_len) ids, or (batch, src_len, features) for an `input_layer`; src_lengths (batch,) ->
        memory (batch, src_len, output_size), zero at padding, and
        final (batch, output_size): the last layer's final state, directions concatenated."""
        embedded = self.dropout(self.embedding(src))  # (batch, src_len, embedding)
        # Packing lets each sentence end at its own length, so padding never reaches the state.
        # (float(): an input layer of numbers gives autocast's type, and the loop below runs in float32)
        packed = pack_padded_sequence(
            embedded.float(), src_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        with fp32_time_steps(embedded.device):  # (a CPU's bf16 LSTM: slower, and on AVX2 no kernel at all)
            packed_out, hidden = self.rnn(packed)
        memory, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src.size(1))
        if isinstance(hidden, tuple):  # LSTM: (h, c); the bridge uses h
            hidden = hidden[0]
        batch = src.size(0)
        # hidden: (layers * directions, batch, hidden) -> last layer, directions side by side
        last = hidden.view(-1, self.num_directions, batch, hidden.size(-1))[-1]  # (directions, batch, hidden)
        final = last.transpose(0, 1).reshape(batch, self.output_size)
        return self.dropout(memory), final
