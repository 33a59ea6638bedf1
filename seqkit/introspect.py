"""What a model does on one sentence: the hidden state of every recurrent layer at every step, the gate
activations of GRU / LSTM cells, and (seq2seq) the attention of the output it produces.

torch's fused RNN kernels return neither the states of lower layers nor any gate, so each layer is
stepped again by hand (`models.cells.cell_step`, the same equations and weights) on the
inputs the model's own RNN module received. The traced top layer equals the module's output (tested).
For the decoder, those inputs are caught with a forward pre-hook while it re-reads the output the search
chose, so Bahdanau and Luong orders need no code of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqkit.config import DecodeConfig
from seqkit.data.tokenizer import BOS, EOS, SPECIALS
from seqkit.inference import AttentionMap, attention_map
from seqkit.models.cells import GATES, cell_step, layer_weights
from seqkit.search import decode_corpus


@dataclass(frozen=True)
class LayerTrace:
    name: str  # "encoder layer 1 forward", "decoder layer 2", "layer 1"
    tokens: list[str]  # the piece at each step (what the layer read or, in a decoder, produced)
    hidden: torch.Tensor  # (steps, hidden)
    gates: dict[str, torch.Tensor]  # gate name -> (steps, hidden), names in cells.GATES


@dataclass(frozen=True)
class Inspection:
    text: str  # the input sentence or prompt
    output: str | None  # the translation (seq2seq)
    cell: str
    layers: list[LayerTrace]  # encoder layers (each direction), then decoder layers
    attention: AttentionMap | None


def _run_direction(cell: str, weights, inputs: torch.Tensor, hidden, cell_state, reverse: bool):
    """One direction of one layer over inputs (steps, features) -> hidden (steps, hidden), gates."""
    w_ih, w_hh, b_ih, b_hh = weights
    input_gates = nn.functional.linear(inputs, w_ih, b_ih)  # (steps, gates * hidden), one product
    order = range(inputs.size(0) - 1, -1, -1) if reverse else range(inputs.size(0))
    states, gates = {}, {name: {} for name in GATES[cell]}
    hidden, cell_state = hidden.unsqueeze(0), None if cell_state is None else cell_state.unsqueeze(0)
    for t in order:
        hidden, cell_state, step_gates = cell_step(
            cell, input_gates[t : t + 1], hidden, cell_state, w_hh, b_hh
        )
        states[t] = hidden[0]
        for name, value in step_gates.items():
            gates[name][t] = value[0]
    steps = range(inputs.size(0))
    return torch.stack([states[t] for t in steps]), {
        name: torch.stack([by_step[t] for t in steps]) for name, by_step in gates.items()
    }


@torch.no_grad()
def trace_rnn(
    rnn: nn.RNNBase, cell: str, inputs: torch.Tensor, state=None
) -> tuple[list[tuple[str, torch.Tensor, dict]], torch.Tensor]:
    """Step every layer and direction of `rnn` (batch-first, eval mode) by hand over one sequence.

    inputs (steps, features); state: what the module would get as hx for a batch of one (None = zeros)
    -> [(name, hidden (steps, hidden), gates)] per layer and direction, and the top layer's output
    (steps, directions * hidden), which equals the module's own output."""
    directions = 2 if rnn.bidirectional else 1
    size = rnn.hidden_size
    hidden0, cell0 = (
        (state if isinstance(state, tuple) else (state, None)) if state is not None else (None, None)
    )
    if hidden0 is None:
        hidden0 = inputs.new_zeros(rnn.num_layers * directions, 1, size)
    if cell0 is None and cell == "lstm":
        cell0 = torch.zeros_like(hidden0)
    traces, layer_input = [], inputs
    for layer in range(rnn.num_layers):
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            hidden, gates = _run_direction(
                cell,
                layer_weights(rnn, layer, reverse=direction == 1),
                layer_input,
                hidden0[index, 0],
                None if cell0 is None else cell0[index, 0],
                reverse=direction == 1,
            )
            name = f"layer {layer + 1}" + (
                (" backward" if direction else " forward") if directions == 2 else ""
            )
            traces.append((name, hidden, gates))
            outputs.append(hidden)
        layer_input = torch.cat(outputs, dim=-1)
    return traces, layer_input


def _named(prefix: str, traces, tokens: list[str]) -> list[LayerTrace]:
    return [LayerTrace(f"{prefix}{name}", tokens, hidden, gates) for name, hidden, gates in traces]


@torch.no_grad()
def inspect_seq2seq(model, tokenizer, text: str, cfg: DecodeConfig) -> Inspection:
    """Translate `text` (greedy or beam, as `cfg` says), then trace encoder and decoder on it."""
    model.eval()
    cell = model.decoder.cell_type
    src_ids = tokenizer.encode_src([text])[0]
    best = decode_corpus(model, [src_ids], cfg, with_attention=True)[0][0]
    attention = attention_map(tokenizer, text, best)
    src = torch.tensor([src_ids + [EOS]])
    embedded = model.encoder.embedding(src)[0]  # (src_len, embedding)
    encoder_traces, _ = trace_rnn(model.encoder.rnn, cell, embedded)
    # The decoder re-reads the chosen output (BOS, then its pieces) while the hook keeps what its RNN is
    # given at each step: the state before the first step, and every step's input.
    rnn_calls = []
    hook = model.decoder.rnn.register_forward_pre_hook(lambda module, args: rnn_calls.append(args))
    try:
        encoded, state = model.encode(src, torch.tensor([src.size(1)]))
        for token in [BOS, *best.tokens][: len(attention.output)]:
            _, state, _ = model.step(torch.tensor([token]), state, encoded)
    finally:
        hook.remove()
    decoder_inputs = torch.cat([args[0][0] for args in rnn_calls])  # (steps, rnn input)
    decoder_traces, _ = trace_rnn(model.decoder.rnn, cell, decoder_inputs, rnn_calls[0][1])
    layers = _named("encoder ", encoder_traces, attention.source)
    layers += _named("decoder ", decoder_traces, attention.output)
    text_out = tokenizer.decode_tgt([best.tokens])[0]
    return Inspection(text, text_out, cell, layers, attention)


@torch.no_grad()
def inspect_lm(model, tokenizer, text: str) -> Inspection:
    """Trace a language model reading `text` (after the EOS every line starts with)."""
    model.eval()
    ids = [EOS, *(tokenizer.encode_tgt([text])[0] if text else [])]
    embedded = model.embedding(torch.tensor([ids]))[0]  # (steps, embedding)
    cell = "lstm" if isinstance(model.rnn, nn.LSTM) else "gru" if isinstance(model.rnn, nn.GRU) else "rnn"
    traces, _ = trace_rnn(model.rnn, cell, embedded)
    pieces = [SPECIALS[EOS], *tokenizer.tgt_pieces(ids[1:])]
    return Inspection(text, None, cell, _named("", traces, pieces), None)


def principal_components(hidden: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """hidden (steps, units) -> its first two principal components (steps, 2) and the share of the
    variance each explains. Fewer than two steps, or no variance, give zeros."""
    centred = hidden.double() - hidden.double().mean(0)
    if hidden.size(0) < 2 or float(centred.abs().max()) == 0.0:
        return torch.zeros(hidden.size(0), 2), [0.0, 0.0]
    _, singular, right = torch.linalg.svd(centred, full_matrices=False)
    components = centred @ right[:2].T  # (steps, <= 2)
    variance = singular.square()
    shares = (variance[:2] / variance.sum()).tolist()
    if components.size(1) < 2:  # one step of variance only
        components = torch.cat([components, components.new_zeros(components.size(0), 1)], dim=1)
        shares.append(0.0)
    return components.float(), shares
