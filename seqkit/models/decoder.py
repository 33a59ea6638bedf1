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
import torch.nn.functional as F
from torch import nn

from seqkit.data.tokenizer import PAD
from seqkit.models.attention import ATTENTIONS
from seqkit.models.cells import cell_step, layer_weights, make_rnn
from seqkit.runtime.devices import fp32_time_steps

COPY_GATE_BIAS = -3.0  # model.copy_gate_start = "copying": the gate's first logit of generating


@dataclass
class DecoderState:
    hidden: torch.Tensor  # (layers, batch, hidden)
    cell: torch.Tensor | None  # (layers, batch, hidden), LSTM only
    feed: torch.Tensor  # (batch, hidden) previous attentional vector (Luong input feeding)
    coverage: torch.Tensor | None = None  # (batch, src_len) the attention of the steps so far, summed

    def rnn_state(self):
        return self.hidden if self.cell is None else (self.hidden, self.cell)

    def select(self, index: torch.Tensor) -> DecoderState:
        """Rows `index` of every tensor (beam search reorders and expands with this)."""
        cell = None if self.cell is None else self.cell.index_select(1, index)
        coverage = None if self.coverage is None else self.coverage.index_select(0, index)
        return DecoderState(
            self.hidden.index_select(1, index), cell, self.feed.index_select(0, index), coverage
        )


def _covered(coverage: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The coverage (batch, src_len) after a step's attention weights (batch, src_len). It is an input,
    not a path back into earlier steps' attention: with the gradient through it, every step's attention
    fed every later energy, and the demo recipe's gradients grew to norms of 1,000 (bench/README.md)."""
    return coverage + weights.detach()


@dataclass
class TeacherForced:
    """What the decoder computes for every target position at once (Decoder.forward)."""

    pre_outputs: torch.Tensor  # (batch, tgt_len, hidden): the output layer's input
    copy_logits: torch.Tensor | None  # (batch, tgt_len): the copy gate before its sigmoid (model.copy)
    weights: torch.Tensor | None  # (batch, tgt_len, src_len): the attention (model.copy)
    # (batch, tgt_len): sum over the source of min(attention, coverage before the step) (model.coverage)
    coverage_losses: torch.Tensor | None


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
        copy: bool = False,
        coverage: bool = False,
        copy_gate_start: str = "random",
    ):
        super().__init__()
        self.cell_type = cell
        self.num_layers, self.hidden_size = num_layers, hidden_size
        self.attend_first = attention == "bahdanau"
        self.coverage = coverage
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.attention = ATTENTIONS[attention](hidden_size, memory_size, hidden_size, coverage)
        feed_size = memory_size if self.attend_first else hidden_size
        self.rnn = make_rnn(cell, embedding_size + feed_size, hidden_size, num_layers, dropout)
        # The bridge turns the encoder's final state into the decoder's first state, one per layer.
        self.bridge = nn.Linear(encoder_final_size, num_layers * hidden_size)
        self.pre_output = nn.Linear(hidden_size + memory_size + embedding_size, hidden_size)
        self.output = nn.Linear(hidden_size, vocab_size)
        if tie_embeddings:  # the config checks that embedding_size == hidden_size
            self.output.weight = self.embedding.weight
        # the pointer-generator's gate: from the same inputs as the pre-output layer (See et al.: the
        # context, the decoder state and its input), the probability of generating rather than copying
        self.copy_gate = nn.Linear(hidden_size + memory_size + embedding_size, 1) if copy else None
        if self.copy_gate is not None and copy_gate_start == "copying":
            # generate with p = sigmoid(-3) = 0.05 whatever the inputs: a task whose output is mostly its
            # input learns to attend from the first update (the copy toy of the tests is learned exactly,
            # 0.63 with a random gate); translation learns more slowly from it (bench/README.md)
            with torch.no_grad():
                self.copy_gate.weight.zero_()
                self.copy_gate.bias.fill_(COPY_GATE_BIAS)
        self.dropout = nn.Dropout(dropout)

    def init_state(self, encoder_final: torch.Tensor, src_len: int) -> DecoderState:
        """encoder_final (batch, encoder_final_size) -> the state before the first target token."""
        batch = encoder_final.size(0)
        hidden = torch.tanh(self.bridge(encoder_final)).float()  # (batch, layers * hidden), fp32 for the loop
        hidden = hidden.view(batch, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
        cell = torch.zeros_like(hidden) if self.cell_type == "lstm" else None
        coverage = hidden.new_zeros(batch, src_len) if self.coverage else None  # (batch, src_len)
        return DecoderState(hidden, cell, encoder_final.new_zeros(batch, self.hidden_size), coverage)

    def _step(self, embedded, state, memory, keys, mask):
        """embedded (batch, embedding) -> pre-output (batch, hidden), new state, weights (batch, src_len),
        the copy gate's logit (batch,) or None."""
        if self.attend_first:
            context, weights = self.attention(state.hidden[-1], keys, memory, mask, state.coverage)
            rnn_input = torch.cat([embedded, context], dim=-1)
        else:
            rnn_input = torch.cat([embedded, state.feed], dim=-1)
        output, rnn_state = self.rnn(rnn_input.unsqueeze(1), state.rnn_state())
        output = output.squeeze(1)  # (batch, hidden)
        if not self.attend_first:
            context, weights = self.attention(output, keys, memory, mask, state.coverage)
        features = torch.cat([output, context, embedded], dim=-1)
        pre_output = torch.tanh(self.pre_output(features))
        copy_logit = self.copy_gate(features).squeeze(-1) if self.copy_gate is not None else None
        hidden, cell = rnn_state if isinstance(rnn_state, tuple) else (rnn_state, None)
        coverage = None if state.coverage is None else _covered(state.coverage, weights)
        return self.dropout(pre_output), DecoderState(hidden, cell, pre_output, coverage), weights, copy_logit

    def step(self, prev_tokens, state, memory, keys, mask):
        """prev_tokens (batch,) -> logits (batch, vocab), new state, attention weights (batch, src_len),
        the copy gate's logit (batch,) or None."""
        pre_output, state, weights, copy_logit = self.step_features(prev_tokens, state, memory, keys, mask)
        return self.output(pre_output), state, weights, copy_logit

    def step_features(self, prev_tokens, state, memory, keys, mask):
        """`step` without the output layer: pre-output (batch, hidden), new state, weights (batch, src_len),
        copy logit; a shortlist (decoding/shortlist.py) computes only some of the output layer's rows."""
        embedded = self.dropout(self.embedding(prev_tokens))
        with fp32_time_steps(embedded.device):
            return self._step(embedded, state, memory, keys, mask)

    def forward(self, tgt_in, state, memory, keys, mask) -> TeacherForced:
        """Teacher forcing: tgt_in (batch, tgt_len) -> pre-outputs (batch, tgt_len, hidden), which
        `output` turns into logits (the caller may leave out padding positions first), and what copy
        and coverage need."""
        embedded = self.dropout(self.embedding(tgt_in))  # (batch, tgt_len, embedding)
        if self.attend_first:
            return self._bahdanau_sequence(embedded, state, memory, keys, mask)
        with fp32_time_steps(embedded.device):
            return self._stepwise(embedded, state, memory, keys, mask)

    def _stepwise(self, embedded, state, memory, keys, mask) -> TeacherForced:
        """`_step` at every position: embedded (batch, tgt_len, embedding) -> (batch, tgt_len, hidden)."""
        pre_outputs, copy_logits, all_weights, coverage_losses = [], [], [], []
        # unbind, not embedded[:, t]: slicing would make backward zero-fill a full-size gradient per step
        for embedded_t in embedded.unbind(1):
            covered = state.coverage
            pre_output, state, weights, copy_logit = self._step(embedded_t, state, memory, keys, mask)
            pre_outputs.append(pre_output)
            if copy_logit is not None:
                copy_logits.append(copy_logit)
                all_weights.append(weights)
            if covered is not None:
                coverage_losses.append(torch.minimum(weights, covered).sum(-1))  # (batch,)
        return TeacherForced(
            torch.stack(pre_outputs, dim=1),
            torch.stack(copy_logits, dim=1) if copy_logits else None,
            torch.stack(all_weights, dim=1) if all_weights else None,
            torch.stack(coverage_losses, dim=1) if coverage_losses else None,
        )

    def _bahdanau_sequence(self, embedded, state, memory, keys, mask) -> TeacherForced:
        """`_stepwise` in Bahdanau order, the same function rearranged for speed: what does not feed the
        recurrence runs once for all positions as large matrix products (the embeddings' share of the
        first layer's input projection, the pre-output layer and the copy gate), so the time loop keeps
        only attention (with the coverage, if any), the context's share of the input projection, and the
        cells."""
        embedding_size = embedded.size(-1)
        layers = [layer_weights(self.rnn, layer) for layer in range(self.num_layers)]
        w_ih, _, b_ih, _ = layers[0]
        context_weight = w_ih[:, embedding_size:]
        hidden = list(state.hidden.unbind(0))
        cells = list(state.cell.unbind(0)) if state.cell is not None else [None] * self.num_layers
        coverage = state.coverage
        tops, contexts, all_weights, coverage_losses = [], [], [], []
        with fp32_time_steps(embedded.device):
            embedded_gates = F.linear(embedded, w_ih[:, :embedding_size], b_ih)  # (batch, tgt_len, gates)
            for gates_t in embedded_gates.unbind(1):
                context, weights = self.attention(hidden[-1], keys, memory, mask, coverage)
                if coverage is not None:
                    coverage_losses.append(torch.minimum(weights, coverage).sum(-1))  # (batch,)
                    coverage = _covered(coverage, weights)
                if self.copy_gate is not None:
                    all_weights.append(weights)
                input_gates = gates_t + F.linear(context, context_weight)
                for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
                    if layer:  # nn.RNNBase's dropout between layers
                        below = F.dropout(hidden[layer - 1], self.rnn.dropout, self.training)
                        input_gates = F.linear(below, w_ih, b_ih)
                    hidden[layer], cells[layer], _ = cell_step(
                        self.cell_type, input_gates, hidden[layer], cells[layer], w_hh, b_hh
                    )
                tops.append(hidden[-1])
                contexts.append(context)
        features = torch.cat([torch.stack(tops, dim=1), torch.stack(contexts, dim=1), embedded], dim=-1)
        copy_logits = self.copy_gate(features).squeeze(-1) if self.copy_gate is not None else None
        return TeacherForced(
            self.dropout(torch.tanh(self.pre_output(features))),
            copy_logits,  # (batch, tgt_len)
            torch.stack(all_weights, dim=1) if all_weights else None,  # (batch, tgt_len, src_len)
            torch.stack(coverage_losses, dim=1) if coverage_losses else None,  # (batch, tgt_len)
        )
