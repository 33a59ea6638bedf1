"""What `seqkit export` turns into ONNX: a model wrapped as the graphs onnxruntime runs (an encoder-decoder's
encoder and one decoder step, a language model's step, a classifier's whole pass, the beam's top-k
selection), each with its inputs' and outputs' names, its dynamic axes, the example batches it is checked
on against torch (of `CHECK_SHAPES`) and what the runtime must know of its state arrays (export.json's
"state")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from seqkit.data.tokenizer import EOS, PAD
from seqkit.models.decoder import DecoderState
from seqkit.models.seq2seq import EncodedSource
from seqkit.models.softmax import given_pieces

OPSET = 17
CHECK_SHAPES = ((3, 9), (1, 2), (5, 6), (2, 1))  # (batch, length) of the check batches (1: an LM's step)


def state_names(cell: str) -> list[str]:
    return ["hidden", "cell"] if cell == "lstm" else ["hidden"]


def _decoderstate_names(model_cfg) -> list[str]:
    """An encoder-decoder's state arrays, in the order the graphs take and give them."""
    return state_names(model_cfg.cell) + ["feed"] + (["coverage"] if model_cfg.coverage else [])


class _Encoder(nn.Module):
    """(src, src_lengths) -> memory, keys, the decoder's first hidden (, cell) and feed."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, src, src_lengths):
        encoded, state = self.model.encode(src, src_lengths)
        return (encoded.memory, encoded.keys, *_state_arrays(state))


def _state_arrays(state: DecoderState) -> list[torch.Tensor]:
    """hidden[, cell], feed[, coverage]: `_decoderstate_names`'s order."""
    optional = [state.cell] if state.cell is not None else []
    return [state.hidden, *optional, state.feed, *([state.coverage] if state.coverage is not None else [])]


class _DecoderStep(nn.Module):
    """(prev, hidden[, cell], feed[, coverage], memory, keys, mask[, src]) -> log_probs, new state,
    attention weights."""

    def __init__(self, model: Any, lstm: bool, coverage: bool, copy: bool):
        super().__init__()
        self.model, self.lstm, self.coverage, self.copy = model, lstm, coverage, copy

    def forward(self, prev, *inputs):
        arrays = list(inputs)
        hidden = arrays.pop(0)
        cell = arrays.pop(0) if self.lstm else None
        feed = arrays.pop(0)
        coverage = arrays.pop(0) if self.coverage else None
        memory, keys, mask = arrays[:3]
        src = arrays[3] if self.copy else None
        logits, state, weights = self.model.step(
            prev, DecoderState(hidden, cell, feed, coverage), EncodedSource(memory, keys, mask, src)
        )
        return (torch.log_softmax(logits, dim=-1), *_state_arrays(state), weights)


class _LanguageModel(nn.Module):
    """(tokens (batch, length), hidden[, cell]) -> the last position's log_probs, the new state."""

    def __init__(self, model: Any, lstm: bool):
        super().__init__()
        self.model, self.lstm = model, lstm

    def forward(self, tokens, hidden, cell=None):
        logits, state = self.model(tokens, (hidden, cell) if self.lstm else hidden)
        new_state = list(state) if self.lstm else [state]
        return (torch.log_softmax(logits[:, -1], dim=-1), *new_state)


class _Classifier(nn.Module):
    """(inputs (batch, steps[, features]), lengths) -> the head's outputs (batch, outputs): the model's
    forward, with its bag of tokens summed from its rows (torch's exporter has no EmbeddingBag with a
    padding index; the pad row is zero, and masked besides), and "last" pooling read from the outputs."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, inputs, lengths):
        if self.model.pooling == "last":
            # the last layer's final states are its outputs at each direction's last step: torch's exporter
            # fails on a one-layer RNN whose outputs nothing reads (a vector range check in _jit_pass_onnx)
            memory, _ = self.model.encoder(inputs, lengths)  # (batch, steps, directions * hidden)
            size = memory.size(2) // self.model.encoder.num_directions
            forward_last = memory[torch.arange(memory.size(0)), lengths - 1, :size]  # (batch, hidden)
            pooled = torch.cat([forward_last, memory[:, 0, size:]], 1)  # (batch, directions * hidden)
        else:
            pooled, _ = self.model.pooled(inputs, lengths)
        outputs = self.model.head(pooled)
        bag = self.model.bag
        if bag is None:
            return outputs
        ids = bag.ids(inputs)  # (batch, counted)
        rows = nn.functional.embedding(ids, bag.weights.weight) * (ids != PAD).unsqueeze(-1)
        return outputs + rows.sum(1)  # (batch, outputs)


@dataclass(frozen=True)
class Graph:
    """A graph to export; `module` in eval mode (a new wrapper is in training mode: dropout would run)."""

    file: str
    module: nn.Module
    inputs: list[str]
    outputs: list[str]
    axes: dict[str, dict[int, str]]  # name -> {axis: what it is}: the dynamic axes
    # what the graph is checked against: the model's own computation where `module` computes it another
    # way (the classifier's); None: `module`
    reference: nn.Module | None = None


def seq2seq_graphs(model: Any, cfg) -> tuple[list[Graph], list, dict]:
    lstm = cfg.model.cell == "lstm"
    states = _decoderstate_names(cfg.model)
    new_states = [f"new_{name}" for name in states]
    state_axes = {
        "hidden": {1: "batch"},
        "cell": {1: "batch"},
        "feed": {0: "batch"},
        "coverage": {0: "batch", 1: "src_len"},
    }
    copy_inputs = ["src"] if cfg.model.copy else []
    encoder = Graph(
        "encoder.onnx",
        _Encoder(model).eval(),
        ["src", "src_lengths"],
        ["memory", "keys", *states],
        {
            "src": {0: "batch", 1: "src_len"},
            "src_lengths": {0: "batch"},
            "memory": {0: "batch", 1: "src_len"},
            "keys": {0: "batch", 1: "src_len"},
            **{name: state_axes[name] for name in states},
        },
    )
    decoder = Graph(
        "decoder.onnx",
        _DecoderStep(model, lstm, cfg.model.coverage, cfg.model.copy).eval(),
        ["prev", *states, "memory", "keys", "mask", *copy_inputs],
        ["log_probs", *new_states, "weights"],
        {
            "prev": {0: "batch"},
            **{name: state_axes[name] for name in states},
            "memory": {0: "batch", 1: "src_len"},
            "keys": {0: "batch", 1: "src_len"},
            "mask": {0: "batch", 1: "src_len"},
            **({"src": {0: "batch", 1: "src_len"}} if copy_inputs else {}),
            "log_probs": {0: "batch"},
            **{f"new_{name}": state_axes[name] for name in states},
            "weights": {0: "batch", 1: "src_len"},
        },
    )
    generator = torch.Generator().manual_seed(0)
    # the sides' vocabularies differ when not joint: a target id drawn from the source's indexes past the
    # decoder's embedding (an IndexError in the check)
    src_vocab = model.encoder.embedding.num_embeddings
    tgt_vocab = model.decoder.embedding.num_embeddings

    def source(batch: int, length: int):
        src, lengths = _padded_ids(generator, src_vocab, batch, length)
        src[torch.arange(batch), lengths - 1] = EOS
        return src, lengths

    encoder_examples = [source(b, n) for b, n in CHECK_SHAPES]
    decoder_examples = []
    with torch.no_grad():
        for src, lengths in encoder_examples:
            first = encoder.module(src, lengths)
            prev = torch.randint(EOS + 1, tgt_vocab, (src.size(0),), generator=generator)
            copied = [src] if copy_inputs else []
            decoder_examples.append((prev, *first[2:], first[0], first[1], src != PAD, *copied))
    # the torch model's search reads only the pieces training gave its output layer (torch_steps.py's
    # Seq2SeqSteps, whose choice this is); the graph computes every piece, the others at about -1e4, and a
    # beam wider than the given pieces took them: the runtime searches these columns alone (None: every
    # piece, as for a copy model, which may copy any)
    columns = None if cfg.model.copy else given_pieces(model.decoder.output)
    description = {
        "state": {name: {"axis": next(iter(state_axes[name])), "output": f"new_{name}"} for name in states},
        "columns": None if columns is None else columns.tolist(),
    }
    return [encoder, decoder], [encoder_examples, decoder_examples], description


def _lengths(generator: torch.Generator, batch: int, length: int) -> torch.Tensor:
    """(batch,) random lengths up to `length`, the first the longest, as in a real batch."""
    lengths = torch.randint(1, length + 1, (batch,), generator=generator)
    lengths[0] = length
    return lengths


def _padded_ids(generator: torch.Generator, vocab: int, batch: int, length: int):
    """A batch of random ids below `vocab` -> (batch, length) padded with PAD after each row's length, and
    the lengths (batch,)."""
    ids = torch.randint(EOS + 1, vocab, (batch, length), generator=generator)
    lengths = _lengths(generator, batch, length)
    return ids.masked_fill(torch.arange(length) >= lengths.unsqueeze(1), PAD), lengths


def classifier_graph(model: Any, cfg) -> tuple[list[Graph], list, dict]:
    """classifier.onnx: a padded batch -> the head's outputs; what they mean (labels, the scaling of
    numbers) is encoding.json's, read by the runtime as by the torch model."""
    graph = Graph(
        "classifier.onnx",
        _Classifier(model).eval(),
        ["inputs", "lengths"],
        ["outputs"],
        {"inputs": {0: "batch", 1: "steps"}, "lengths": {0: "batch"}, "outputs": {0: "batch"}},
        reference=model,
    )
    generator = torch.Generator().manual_seed(0)
    examples = []
    for batch, length in CHECK_SHAPES:
        if model.reads_numbers:  # (batch, length, features) standardised numbers, 0 after each length
            lengths = _lengths(generator, batch, length)
            numbers = torch.randn(batch, length, model.encoder.embedding.in_features, generator=generator)
            examples.append((numbers * (torch.arange(length) < lengths.unsqueeze(1)).unsqueeze(-1), lengths))
        else:
            examples.append(_padded_ids(generator, model.encoder.embedding.num_embeddings, batch, length))
    return [graph], [examples], {}


def lm_graph(model: Any, cfg) -> tuple[list[Graph], list, dict]:
    lstm = cfg.model.cell == "lstm"
    states = state_names(cfg.model.cell)
    graph = Graph(
        "lm.onnx",
        _LanguageModel(model, lstm).eval(),
        ["tokens", *states],
        ["log_probs", *[f"new_{name}" for name in states]],
        {
            "tokens": {0: "batch", 1: "length"},
            **{name: {1: "batch"} for name in states},
            "log_probs": {0: "batch"},
            **{f"new_{name}": {1: "batch"} for name in states},
        },
    )
    generator = torch.Generator().manual_seed(0)
    vocab = model.embedding.num_embeddings
    layers, size = cfg.model.decoder_layers, cfg.model.decoder_hidden_size
    examples = [
        (
            torch.randint(EOS + 1, vocab, (batch, length), generator=generator),
            *[torch.randn(layers, batch, size, generator=generator) for _ in states],
        )
        for batch, length in CHECK_SHAPES
    ]
    description = {
        "state": {name: {"axis": 1, "output": f"new_{name}"} for name in states},
        "state_shape": [layers, size],  # (layers, batch, hidden): the zeros a text starts from
    }
    return [graph], [examples], description


def selection_graph() -> bytes:
    """select.onnx: onnxruntime's TopK, `(values (rows, n), k (1,)) -> best, columns`, largest first. Beam
    search's selection over a sentence's beams x vocabulary runs here: 2.5x numpy's argpartition at
    64 x 20,000 (2.3 against 5.9 ms), as fast as torch's topk (bench/README.md)."""
    from onnx import TensorProto, helper

    node = helper.make_node("TopK", ["values", "k"], ["best", "columns"], axis=1, largest=1, sorted=1)
    graph = helper.make_graph(
        [node],
        "select",
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["rows", "n"]),
         helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("best", TensorProto.FLOAT, ["rows", "k"]),
         helper.make_tensor_value_info("columns", TensorProto.INT64, ["rows", "k"])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]).SerializeToString()
