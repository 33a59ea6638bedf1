"""What a model does on one sentence (`seqkit inspect`): the traced hidden states and gates of each
recurrent layer and, for an encoder-decoder, the attention of the output it produces. Each model type's
`inspect` fills one `Inspection`; viz/ draws it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqkit.decoding.inference import AttentionMap


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
    # a classifier with attention pooling: the weight of each step (layers[0].tokens) in the pooled vector
    pooling: list[float] | None = None
    probabilities: dict[str, float] | None = None  # a classifier: each label's probability


def named_traces(prefix: str, traces, tokens: list[str]) -> list[LayerTrace]:
    return [LayerTrace(f"{prefix}{name}", tokens, hidden, gates) for name, hidden, gates in traces]
