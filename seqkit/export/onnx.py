"""`seqkit export --format onnx`: a trained model directory as ONNX graphs that onnxruntime runs without torch.

A seq2seq model becomes two graphs, an encoder and one decoder step, because the search between the
steps (decoding/search.py) stays in Python for both ways of running a model; a language model becomes
one graph that reads a prompt or one token; a classifier or forecaster one graph of its whole pass,
whose outputs become labels or numbers in Python (decoding/classify.py) as the torch model's do.
torch's TorchScript exporter (`dynamo=False`) expresses everything these graphs hold: the packed
(bidirectional) GRU / LSTM / RNN encoder as ONNX's own recurrent operators, the decoder's single-step
RNN, Bahdanau and Luong attention. (The dynamo exporter fails on the packed encoder in torch.export.)
Every graph is checked against the torch model on batches of several shapes before anything is
written; a difference larger than `TOLERANCE` is an error.
What each graph wraps, takes and gives is graphs.py's; this module converts, checks, quantizes and writes.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from seqkit import configfile, modeldir, outputs
from seqkit.data import encoding as encoding_lib
from seqkit.data.encoding import FILE as ENCODING
from seqkit.data.tokenizer import TOKENIZER_FILES
from seqkit.errors import ConfigError, ModelDirError
from seqkit.export import graphs, layout, runtime
from seqkit.viz.summary import weights_origin

TOLERANCE = 1e-4  # the largest difference allowed between torch and onnxruntime (`_check`), over every output
# model.type -> its graphs, their check batches and what export.json says of their state (graphs.py)
BUILDERS = {"seq2seq": graphs.seq2seq_graphs, "lm": graphs.lm_graph, "classifier": graphs.classifier_graph}


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


def _to_onnx(graph: graphs.Graph, example: tuple[torch.Tensor, ...]) -> bytes:
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
            opset_version=graphs.OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def _check(graph: graphs.Graph, session, examples: list[tuple[torch.Tensor, ...]]) -> float:
    """The largest difference between torch (the model's own computation) and onnxruntime's `session`
    of the graph on `examples`, over every output: relative to the value beyond ±1, as float32 holds
    about 7 digits (the pieces an output layer never gives sit near -1e4, where one step of float32 is
    1e-3: an absolute 1e-4 refused models whose every other value agreed to 1e-6)."""
    wanted = {i.name for i in session.get_inputs()}  # an input the graph does not use is left out
    worst = 0.0
    for example in examples:
        with torch.no_grad():
            expected = (graph.reference or graph.module)(*example)
        if isinstance(expected, torch.Tensor):  # (a graph of one output)
            expected = (expected,)
        feeds = {n: t.numpy() for n, t in zip(graph.inputs, example, strict=True) if n in wanted}
        got = session.run(graph.outputs, feeds)
        for name, want, have in zip(graph.outputs, expected, got, strict=True):
            if want.shape != have.shape:
                raise ModelDirError(
                    f"export: {graph.file} output {name} has shape {have.shape}, torch's {want.shape}"
                )
            expected_values = want.numpy()
            difference = np.abs(expected_values - have) / np.maximum(1.0, np.abs(expected_values))
            worst = max(worst, float(difference.max(initial=0.0)))
    return worst


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


def _classifier_description(cfg, codec) -> dict:
    """A classifier's: what it reads and says (as `seqkit info` shows it), and the vocabulary its graph
    reads (the runtime refuses a tokenizer of another size: an index beyond its table)."""
    if cfg.model.type != "classifier":
        return {}
    return {"classifier": encoding_lib.summary(cfg, codec.encoding), "vocab": codec.vocab_size}


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
    build = BUILDERS[cfg.model.type]
    with torch.no_grad():
        model_graphs, examples, state_description = build(model, cfg)
        files: dict[str, bytes] = {}
        check: dict[str, float] = {}  # the float32 graphs against torch: above TOLERANCE is an error
        check_int8: dict[str, float] = {}
        inputs: dict[str, list[str]] = {}  # what each written graph takes (an unused input is left out)
        for graph, graph_examples in zip(model_graphs, examples, strict=True):
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
            files[layout.SELECTION] = graphs.selection_graph()
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
        "opset": graphs.OPSET,
        "source": str(model_dir.resolve()),
        "graphs": {
            graph.file.removesuffix(".onnx"): {
                "file": graph.file,
                "inputs": inputs[graph.file],
                "outputs": graph.outputs,
            }
            for graph in model_graphs
        },
        **state_description,
        **_classifier_description(cfg, tokenizer),
        **weights_origin(model_dir),  # (which weights these are: the export of an average, of a step)
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
        for name in {*layout.GRAPH_FILES, *TOKENIZER_FILES, ENCODING} - {*files, *tokenizer.files()}:
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
