"""Every recurrent layer's hidden state and gates at every step, computed by hand.

torch's fused RNN kernels return neither the states of lower layers nor any gate, so each layer is
stepped again (`cells.cell_step`, the same equations and weights) on the inputs the module received.
The traced top layer equals the module's own output (tested).
"""

from __future__ import annotations

import torch
from torch import nn

from seqkit.models.cells import GATES, cell_step, layer_weights


def _run_direction(
    cell: str, weights, inputs: torch.Tensor, hidden, cell_state, reverse: bool, activation: str
):
    """One direction of one layer over inputs (steps, features) -> hidden (steps, hidden), gates."""
    w_ih, w_hh, b_ih, b_hh = weights
    input_gates = nn.functional.linear(inputs, w_ih, b_ih)  # (steps, gates * hidden), one product
    order = range(inputs.size(0) - 1, -1, -1) if reverse else range(inputs.size(0))
    states: dict[int, torch.Tensor] = {}
    gates: dict[str, dict[int, torch.Tensor]] = {name: {} for name in GATES[cell]}
    hidden, cell_state = hidden.unsqueeze(0), None if cell_state is None else cell_state.unsqueeze(0)
    for t in order:
        hidden, cell_state, step_gates = cell_step(
            cell, input_gates[t : t + 1], hidden, cell_state, w_hh, b_hh, activation
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
                activation=getattr(rnn, "nonlinearity", "tanh"),
            )
            name = f"layer {layer + 1}" + (
                (" backward" if direction else " forward") if directions == 2 else ""
            )
            traces.append((name, hidden, gates))
            outputs.append(hidden)
        layer_input = torch.cat(outputs, dim=-1)
    return traces, layer_input
