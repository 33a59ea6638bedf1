"""`seqkit export --format onnx`: a trained model directory as ONNX graphs that onnxruntime runs without torch.

A seq2seq model becomes two graphs, an encoder and one decoder step, because the search between the
steps (decoding/search.py) stays in Python for both ways of running a model; a language model becomes
one graph that reads a prompt or one token. torch's TorchScript exporter (`dynamo=False`) expresses
everything these graphs hold: the packed (bidirectional) GRU / LSTM / RNN encoder as ONNX's own
recurrent operators, the decoder's single-step RNN, Bahdanau and Luong attention. (The dynamo exporter
fails on the packed encoder in torch.export.) Every graph is checked against the torch model on
batches of several shapes before anything is written; a difference larger than `TOLERANCE` is an error.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seqkit import configfile, modeldir, outputs
from seqkit.data.tokenizer import EOS, PAD, TOKENIZER_FILES
from seqkit.errors import ConfigError, ModelDirError
from seqkit.export import layout, runtime
from seqkit.models.decoder import DecoderState
from seqkit.models.seq2seq import EncodedSource
from seqkit.models.softmax import given_pieces

OPSET = 17
TOLERANCE = 1e-4  # the largest difference allowed between torch and onnxruntime, over every output
CHECK_SHAPES = ((3, 9), (1, 2), (5, 6), (2, 1))  # (batch, length) of the check batches (1: an LM's step)


def _state_names(cell: str) -> list[str]:
    return ["hidden", "cell"] if cell == "lstm" else ["hidden"]


def _decoder_state_names(model_cfg) -> list[str]:
    """An encoder-decoder's state arrays, in the order the graphs take and give them."""
    return _state_names(model_cfg.cell) + ["feed"] + (["coverage"] if model_cfg.coverage else [])


class _Encoder(nn.Module):
    """(src, src_lengths) -> memory, keys, the decoder's first hidden (, cell) and feed."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, src, src_lengths):
        encoded, state = self.model.encode(src, src_lengths)
        return (encoded.memory, encoded.keys, *_state_arrays(state))


def _state_arrays(state: DecoderState) -> list[torch.Tensor]:
    """hidden[, cell], feed[, coverage]: `_decoder_state_names`'s order."""
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


@dataclass(frozen=True)
class _Graph:
    """A graph to export; `module` in eval mode (a new wrapper is in training mode: dropout would run)."""

    file: str
    module: nn.Module
    inputs: list[str]
    outputs: list[str]
    axes: dict[str, dict[int, str]]  # name -> {axis: what it is}: the dynamic axes


@contextmanager
def _quiet_stderr():
    """The exporter's C++ notes (no shape inference for packing: `_check` covers the shapes) go to
    file descriptor 2 directly; they are dropped for the block. Errors still raise."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _to_onnx(graph: _Graph, example: tuple[torch.Tensor, ...]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), _quiet_stderr():  # advice about dynamo and batch_first RNNs
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph.module,
            example,
            buffer,  # type: ignore[arg-type]  # (a file-like object is documented)
            input_names=graph.inputs,
            output_names=graph.outputs,
            dynamic_axes=graph.axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def _check(graph: _Graph, session, examples: list[tuple[torch.Tensor, ...]]) -> float:
    """The largest difference between torch and onnxruntime's `session` of the graph on `examples`, over
    every output."""
    wanted = {i.name for i in session.get_inputs()}  # an input the graph does not use is left out
    worst = 0.0
    for example in examples:
        with torch.no_grad():
            expected = graph.module(*example)
        feeds = {n: t.numpy() for n, t in zip(graph.inputs, example, strict=True) if n in wanted}
        got = session.run(graph.outputs, feeds)
        for name, want, have in zip(graph.outputs, expected, got, strict=True):
            if want.shape != have.shape:
                raise ModelDirError(
                    f"export: {graph.file} output {name} has shape {have.shape}, torch's {want.shape}"
                )
            worst = max(worst, float(np.abs(want.numpy() - have).max(initial=0.0)))
    return worst


def _seq2seq_graphs(model: Any, cfg) -> tuple[list[_Graph], list, dict]:
    lstm = cfg.model.cell == "lstm"
    states = _decoder_state_names(cfg.model)
    new_states = [f"new_{name}" for name in states]
    state_axes = {
        "hidden": {1: "batch"},
        "cell": {1: "batch"},
        "feed": {0: "batch"},
        "coverage": {0: "batch", 1: "src_len"},
    }
    copy_inputs = ["src"] if cfg.model.copy else []
    encoder = _Graph(
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
    decoder = _Graph(
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
        src = torch.randint(EOS + 1, src_vocab, (batch, length), generator=generator)
        lengths = torch.randint(1, length + 1, (batch,), generator=generator)
        lengths[0] = length  # the longest fills the batch, as in a real one
        src = src.masked_fill(torch.arange(length) >= lengths.unsqueeze(1), PAD)
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


def _lm_graph(model: Any, cfg) -> tuple[list[_Graph], list, dict]:
    lstm = cfg.model.cell == "lstm"
    states = _state_names(cfg.model.cell)
    graph = _Graph(
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


def _selection_graph() -> bytes:
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


def _quantized(onnx_bytes: bytes) -> bytes:
    """onnxruntime's dynamic int8 quantization of the graph's products (weights int8, activations
    quantized on the fly per batch)."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(onnx_bytes)
        logging.disable(logging.WARNING)  # its advice to pre-process image models, on the root logger
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        return target.read_bytes()


def export(model_dir: Path, output_dir: Path, quantize: bool = False) -> dict:
    """Write `model_dir`'s model as ONNX graphs into `output_dir` (a new, empty or earlier export
    directory) -> the description written to export.json, with `check` (the largest difference from
    torch per graph)."""
    try:
        import onnx  # noqa: F401  (torch's exporter writes with it)
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ConfigError(
            "export needs onnx and onnxruntime: pip install 'seqkit[onnx]' (or onnx onnxruntime)"
        ) from None
    from seqkit import model_types

    if output_dir.resolve() == model_dir.resolve():
        raise ConfigError(f"--output {output_dir}: is the model directory itself; choose a new directory")
    outputs.check_claimable(output_dir, "--output")
    outputs.check_kind(output_dir, "export", "--output", "an export")
    cfg, tokenizer, model = model_types.load(model_dir, "cpu")
    if cfg.model.type not in layout.TASKS:
        raise ConfigError(
            f"export: model.type = {cfg.model.type} has no ONNX export yet (translation models and language "
            "models have one); run it with torch: `seqkit predict`, or seqkit.load(...).predict"
        )
    build = _seq2seq_graphs if cfg.model.type == "seq2seq" else _lm_graph
    with torch.no_grad():
        graphs, examples, state_description = build(model, cfg)
        files: dict[str, bytes] = {}
        check: dict[str, float] = {}  # the float32 graphs against torch: above TOLERANCE is an error
        check_int8: dict[str, float] = {}
        inputs: dict[str, list[str]] = {}  # what each written graph takes (an unused input is left out)
        for graph, graph_examples in zip(graphs, examples, strict=True):
            onnx_bytes = _to_onnx(graph, graph_examples[0])
            written, session = onnx_bytes, runtime.session(onnx_bytes)
            check[graph.file] = _check(graph, session, graph_examples)
            if check[graph.file] > TOLERANCE:
                raise ModelDirError(
                    f"export: {graph.file} differs from the torch model by {check[graph.file]:.2g} "
                    f"(at most {TOLERANCE:g} allowed); please report this model's config"
                )
            if quantize:  # what int8 costs, reported (not refused: it is the price of the smaller products)
                written = _quantized(onnx_bytes)
                session = runtime.session(written)
                check_int8[graph.file] = _check(graph, session, graph_examples)
            inputs[graph.file] = [i.name for i in session.get_inputs()]
            files[graph.file] = written
        if cfg.model.type == "seq2seq":
            files[layout.SELECTION] = _selection_graph()
    task, title = layout.TASKS[cfg.model.type]
    description = {
        "format": layout.FORMAT,
        "version": layout.VERSION,
        "type": cfg.model.type,
        "task": task,
        "title": title,
        "cell": cfg.model.cell,
        "attention": cfg.model.attention if cfg.model.type == "seq2seq" else None,
        "quantized": "int8" if quantize else None,
        "opset": OPSET,
        "source": str(model_dir.resolve()),
        "graphs": {
            graph.file.removesuffix(".onnx"): {
                "file": graph.file,
                "inputs": inputs[graph.file],
                "outputs": graph.outputs,
            }
            for graph in graphs
        },
        **state_description,
        "check": check,
        **({"check_int8": check_int8} if quantize else {}),
    }
    if layout.SELECTION in files:
        description["graphs"]["select"] = {
            "file": layout.SELECTION,
            "inputs": ["values", "k"],
            "outputs": ["best", "columns"],
        }
    outputs.claim_directory(output_dir, "export", "--output")
    with outputs.locked(output_dir, "exported into", "export into another --output"):
        (output_dir / layout.DESCRIPTION).unlink(missing_ok=True)  # unfinished until it is back
        for name in {*layout.GRAPH_FILES, *TOKENIZER_FILES} - {*files, *tokenizer.files()}:
            (output_dir / name).unlink(missing_ok=True)  # an earlier export's, of another model
        for name, data in {**files, **tokenizer.files()}.items():
            outputs.atomic_write(output_dir / name, data)
        # an export computes its whole output layer: a model trained with decode.shortlist = true would
        # otherwise refuse every translation that does not turn the shortlist off
        no_shortlist = replace(cfg, decode=replace(cfg.decode, shortlist=False))
        outputs.atomic_write(output_dir / modeldir.CONFIG, configfile.to_toml(no_shortlist))
        outputs.atomic_write(
            output_dir / layout.DESCRIPTION, (json.dumps(description, indent=2) + "\n").encode()
        )
    return description
