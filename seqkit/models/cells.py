"""The recurrent layer factory, and one time step of a layer computed by hand: the one place that knows
the three cell types."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CELLS: dict[str, type[nn.RNN] | type[nn.GRU] | type[nn.LSTM]] = {
    "rnn": nn.RNN,
    "gru": nn.GRU,
    "lstm": nn.LSTM,
}


def make_rnn(
    cell: str,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    bidirectional: bool = False,
    activation: str = "tanh",
) -> nn.RNNBase:
    """A batch-first stacked RNN; dropout applies between layers (torch ignores it for one layer);
    `activation` is the vanilla RNN's nonlinearity (tanh or relu)."""
    extra = {"nonlinearity": activation} if cell == "rnn" else {}
    return CELLS[cell](
        input_size,
        hidden_size,
        num_layers=num_layers,
        batch_first=True,
        dropout=dropout if num_layers > 1 else 0.0,
        bidirectional=bidirectional,
        **extra,
    )


def layer_weights(
    rnn: nn.RNNBase, layer: int, reverse: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(w_ih, w_hh, b_ih, b_hh) of one layer (its backward direction if `reverse`), for stepping it by hand."""
    suffix = "_reverse" if reverse else ""
    return tuple(
        getattr(rnn, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    )


GATES = {"rnn": (), "gru": ("reset", "update"), "lstm": ("input", "forget", "output")}


def cell_step(
    cell: str,
    input_gates: torch.Tensor,
    hidden: torch.Tensor,
    cell_state: torch.Tensor | None,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor,
    activation: str = "tanh",
) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
    """One time step of one layer whose input projection `W_ih x + b_ih` is already computed, with the
    gate layout and equations of torch's nn.RNN / nn.GRU / nn.LSTM (so their weights serve unchanged).

    input_gates (batch, gates * hidden), hidden (batch, hidden) -> new hidden, new cell state (LSTM),
    and the gate activations it used (names in GATES[cell]), each (batch, hidden), for `seqkit inspect`;
    `activation` is the vanilla RNN's nonlinearity."""
    hidden_gates = F.linear(hidden, w_hh, b_hh)
    if cell == "rnn":
        total = input_gates + hidden_gates
        return (torch.relu(total) if activation == "relu" else torch.tanh(total)), None, {}
    if cell == "gru":
        input_r, input_z, input_n = input_gates.chunk(3, dim=1)
        hidden_r, hidden_z, hidden_n = hidden_gates.chunk(3, dim=1)
        reset = torch.sigmoid(input_r + hidden_r)
        update = torch.sigmoid(input_z + hidden_z)
        candidate = torch.tanh(input_n + reset * hidden_n)
        # = (1 - z) * n + z * h
        return candidate + update * (hidden - candidate), None, {"reset": reset, "update": update}
    assert cell_state is not None  # an LSTM always carries one
    gate_i, gate_f, gate_g, gate_o = (input_gates + hidden_gates).chunk(4, dim=1)
    input_gate, forget_gate, output_gate = gate_i.sigmoid(), gate_f.sigmoid(), gate_o.sigmoid()
    cell_state = forget_gate * cell_state + input_gate * torch.tanh(gate_g)
    gates = {"input": input_gate, "forget": forget_gate, "output": output_gate}
    return output_gate * torch.tanh(cell_state), cell_state, gates
