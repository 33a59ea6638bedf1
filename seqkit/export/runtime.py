"""An exported model directory (`seqkit export`) run by onnxruntime: the search's steps (decoding/search.py)
over ONNX graphs, or a classifier's head (decoding/classify.py). Needs onnxruntime, numpy and the
tokenizer's sentencepiece, never torch: a deployment installs those without torch (README "Export").

Arrays between the steps stay numpy. Each session is fed only the inputs its graph declares: the
exporter leaves out an input a graph does not use (the previous attentional vector in Bahdanau order).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from seqkit import config as config_lib
from seqkit import configfile
from seqkit.config import Config
from seqkit.data.encoding import FILE as ENCODING
from seqkit.data.encoding import Codec, Encoding, summary
from seqkit.data.tokenizer import EOS, PAD, TOKENIZER_FILES, load_tokenizer
from seqkit.errors import ConfigError, ModelDirError, an_export_where_a_trained_model_is_needed
from seqkit.export import layout

DAMAGED = "the export is damaged: export again"  # the fix of a part of an export found damaged


def owns(export_dir: Path, path: Path) -> bool:
    """Whether `path` is one of the export's own files (its graphs, description, config, tokenizer)."""
    from seqkit.outputs import LOCK, MARKER, is_file_of

    names = (layout.DESCRIPTION, *layout.GRAPH_FILES, layout.CONFIG, ENCODING, *TOKENIZER_FILES, MARKER, LOCK)
    return is_file_of(export_dir, path, names)


def refuse(model_dir: Path) -> None:
    """A ModelDirError when `model_dir` is an export, for a command that needs the trained model (before
    anything imports torch: a deployment without it gets this, not a missing torch)."""
    if is_export(model_dir):
        raise an_export_where_a_trained_model_is_needed(model_dir)


def is_export(path: Path) -> bool:
    """Whether `path` is an exported model directory, or an unfinished one: a re-export that failed at its
    first graph leaves only the old config and seqkit's marker, whose kind says "export"."""
    from seqkit.outputs import marker_kind

    names = (layout.DESCRIPTION, *layout.GRAPH_FILES)
    return any((Path(path) / name).is_file() for name in names) or marker_kind(Path(path)) == "export"


@dataclass
class Rows:
    """Named arrays that share a batch: each one's batch axis is in `axes`."""

    arrays: dict[str, np.ndarray]
    axes: dict[str, int]

    def select(self, index: np.ndarray) -> Rows:
        return Rows({n: np.take(a, index, axis=self.axes[n]) for n, a in self.arrays.items()}, self.axes)


def session(graph: Path | bytes):
    """An onnxruntime session of a graph file, or of a graph's bytes (the exporter checks them before it
    writes them), on the CPU, logging errors only."""
    where = f"{graph.parent} is an ONNX export: running it" if isinstance(graph, Path) else "seqkit export"
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"{where} needs onnxruntime (pip install onnxruntime)") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # Threads that wait without spinning: an export has several sessions (encoder, decoder step,
    # selection), each with its own pool, and spinning pools took each other's cores (beam 5, 200 verses:
    # 5.1-5.5 s spinning against 3.3-3.8 s not; bench/README.md). A busy shared machine gains the same way.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(graph) if isinstance(graph, Path) else graph
    try:
        return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own error types: a damaged or foreign file
        raise ModelDirError(
            f"{graph if isinstance(graph, Path) else 'export'}: not a graph onnxruntime can load "
            f"({str(e).splitlines()[0]}); export again"
        ) from None


class _Graph:
    """A session, fed by name from whatever arrays are at hand: `given` (what the runtime can feed it),
    and read by name: `read` (the outputs the runtime takes from it)."""

    def __init__(self, path: Path, given: Iterable[str], read: Iterable[str]):
        self.session = session(path)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        # a graph copied over another's file, or a state added to export.json by hand, failed at the first
        # batch with a KeyError: checked here, once
        unknown = [name for name in self.inputs if name not in given]
        missing = [name for name in read if name not in self.outputs]
        if unknown or missing:
            problem = (
                f"takes an input {unknown[0]!r}, which the runtime does not give this graph"
                if unknown
                else f"has no output {missing[0]!r}, which {layout.DESCRIPTION} reads from it"
            )
            raise ModelDirError(f"{path}: {problem} (another graph's file, or a hand edit?); export again")

    def run(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self.outputs, {name: arrays[name] for name in self.inputs})
        return dict(zip(self.outputs, values, strict=True))


class OnnxSeq2SeqSteps:
    """encoder.onnx and decoder.onnx as the search's steps."""

    def __init__(self, directory: Path, description: dict):
        graphs = description["graphs"]
        self.state = description["state"]  # name -> {"axis", "output"}
        self.axes = {name: spec["axis"] for name, spec in self.state.items()}
        # the pieces the torch model searches (an export written before they were stored: every piece)
        given = description.get("columns")
        self._columns = None if given is None else np.asarray(given, dtype=np.int64)
        new_state = [spec["output"] for spec in self.state.values()]
        self.encoder = _Graph(
            directory / graphs["encoder"]["file"], ("src", "src_lengths"), ("memory", "keys", *self.state)
        )
        self.decoder = _Graph(
            directory / graphs["decoder"]["file"],
            ("prev", *self.state, "memory", "keys", "mask", "src"),
            ("log_probs", *new_state, "weights"),
        )
        if "select" in graphs:
            self.selection = _Graph(
                directory / graphs["select"]["file"], ("values", "k"), ("best", "columns")
            )
            self.top_k = self._top_k  # beam search's selection in onnxruntime (search.py reads `top_k`)

    def _top_k(self, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        out = self.selection.run({"values": values, "k": np.array([k], dtype=np.int64)})
        return out["best"], out["columns"]

    def encode(self, src: np.ndarray, src_lengths: np.ndarray) -> tuple[Rows, Rows]:
        out = self.encoder.run({"src": src, "src_lengths": src_lengths})
        arrays = {"memory": out["memory"], "keys": out["keys"], "mask": src != PAD}
        if "src" in self.decoder.inputs:  # a copy model's decoder: the source ids, reordered with the rest
            arrays["src"] = src
        encoded = Rows(arrays, dict.fromkeys(arrays, 0))
        return encoded, self._state({name: out[name] for name in self.state})

    def step(self, prev: np.ndarray, state: Rows, encoded: Rows):
        out = self.decoder.run({"prev": prev, **state.arrays, **encoded.arrays})
        new_state = self._state({name: out[spec["output"]] for name, spec in self.state.items()})
        log_probs = out["log_probs"]  # (rows, vocab)
        if self._columns is not None:  # (the others' probability is 0 in float32: still normalised)
            log_probs = log_probs[:, self._columns]  # (rows, columns)
        return log_probs, new_state, out["weights"]

    def columns(self, encoded: Rows) -> np.ndarray | None:
        """The target ids of `step`'s columns, as torch_steps.Seq2SeqSteps gives them (None: all)."""
        return self._columns

    def _state(self, arrays: dict[str, np.ndarray]) -> Rows:
        return Rows(arrays, self.axes)


class OnnxLanguageModelSteps:
    """lm.onnx as sampling steps: the prompt in one run, then one token a run."""

    def __init__(self, directory: Path, description: dict):
        self.state = description["state"]
        new_state = [spec["output"] for spec in self.state.values()]
        self.graph = _Graph(
            directory / description["graphs"]["lm"]["file"],
            ("tokens", *self.state),
            ("log_probs", *new_state),
        )
        self.axes = {name: spec["axis"] for name, spec in self.state.items()}
        self.layers, self.size = description["state_shape"]

    def start(self, tokens: np.ndarray) -> tuple[np.ndarray, Rows]:
        zeros = np.zeros((self.layers, tokens.shape[0], self.size), np.float32)
        return self._run(tokens, {name: zeros for name in self.state})

    def step(self, tokens: np.ndarray, state: Rows) -> tuple[np.ndarray, Rows]:
        return self._run(tokens[:, None], state.arrays)

    def _run(self, tokens: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, Rows]:
        out = self.graph.run({"tokens": tokens, **state})
        arrays = {name: out[spec["output"]] for name, spec in self.state.items()}
        return out["log_probs"], Rows(arrays, self.axes)


class OnnxClassifierHead:
    """classifier.onnx as classify.py's head: a padded batch's outputs."""

    def __init__(self, directory: Path, description: dict, encoding: Encoding):
        path = directory / description["graphs"]["classifier"]["file"]
        self.graph = _Graph(path, ("inputs", "lengths"), ("outputs",))
        self.size = encoding.outputs
        # another export's graph (numbers for text, other labels) failed at the first batch, in onnxruntime
        inputs = next(i for i in self.graph.session.get_inputs() if i.name == "inputs")
        numbers = encoding.inputs == "numbers"
        reads = ("tensor(float)", 3, encoding.features) if numbers else ("tensor(int64)", 2, None)
        width = self.graph.session.get_outputs()[0].shape[-1]
        if (
            inputs.type,
            len(inputs.shape),
            inputs.shape[-1] if numbers else None,
        ) != reads or width != self.size:
            raise ModelDirError(
                f"{path}: does not read and give what {ENCODING} says ({encoding.inputs}, {self.size} "
                f"outputs; another model's graph?); {DAMAGED}"
            )

    def __call__(self, inputs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return self.graph.run({"inputs": inputs, "lengths": lengths})["outputs"]


def read_description(directory: Path) -> dict:
    path = directory / layout.DESCRIPTION
    if not path.is_file():
        raise ModelDirError(
            f"{directory}: an unfinished export (no {layout.DESCRIPTION}); run seqkit export again"
        )
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelDirError(f"{path}: not a seqkit export description ({e}); export again") from None
    if not isinstance(description, dict):
        raise ModelDirError(f"{path}: not a seqkit export description (not a JSON object); export again")
    version = description.get("version")
    if description.get("format") != layout.FORMAT or not isinstance(version, int) or version > layout.VERSION:
        raise ModelDirError(
            f"{path}: format {description.get('format')!r} version {version!r}, which this seqkit does not "
            "run; export again with this version"
        )
    problem = _problem(description)
    if problem:
        raise ModelDirError(f"{path}: not a seqkit export description ({problem}); export again")
    return description


def _is_training(training: Any) -> bool:
    """Whether an export's "training" is what `info` reads (viz/summary.py's `weights_origin`)."""
    if not isinstance(training, dict):
        return False
    numbers = [training.get(key) for key in ("steps", "validations", "elapsed_s")]
    best = training.get("best_validation")  # (a run that never validated has none)
    return all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers) and (
        "best_validation" not in training or isinstance(best, dict) and isinstance(best.get("step"), int)
    )


def _problem(description: dict) -> str | None:
    """What is wrong with a description's fields, if anything (a damaged or hand-edited export.json)."""
    kind = description.get("type")
    if kind not in layout.TASKS:
        return f"type {kind!r}"
    for key in ("task", "title", "cell", "opset", "source"):
        if key not in description:
            return f"no {key}"
    if description["task"] != layout.TASKS[kind][0]:
        return f"task {description['task']!r} for type {kind}"
    graphs = description.get("graphs")
    wanted = layout.GRAPHS[kind]
    if not isinstance(graphs, dict) or any(not _names_a_file(graphs.get(g)) for g in wanted):
        return f"graphs must name {' and '.join(wanted)}, each with its file"
    if "select" in graphs and not _names_a_file(graphs["select"]):
        return "graphs: select names no file"
    if "training" in description and not _is_training(description["training"]):
        return "training: not the steps, time and validations of a run"
    if kind == "classifier":  # (a whole pass: no state between runs)
        described, vocab = description.get("classifier"), description.get("vocab")
        if not isinstance(described, dict) or not isinstance(vocab, int) or vocab < 0:
            return "a classifier's export names what it reads and says (classifier) and its vocab"
        return None
    state = description.get("state")
    if not isinstance(state, dict) or not state:
        return "no state"
    for name, spec in state.items():
        if (
            not isinstance(spec, dict)
            or spec.get("axis") not in (0, 1)
            or not isinstance(spec.get("output"), str)
        ):
            return f"state {name!r}"
    columns = description.get("columns")
    if columns is not None and not (
        isinstance(columns, list)
        and all(isinstance(i, int) and i >= 0 for i in columns)
        and all(a < b for a, b in pairwise(columns))
        and EOS in columns
    ):
        return "columns must be increasing piece ids, EOS among them"
    if kind == "lm":
        shape = description.get("state_shape")
        if not (
            isinstance(shape, list) and len(shape) == 2 and all(isinstance(n, int) and n > 0 for n in shape)
        ):
            return "state_shape"
    return None


def _names_a_file(graph: object) -> bool:
    """Whether a graph's entry names a file of the export's own directory (not "../model.safetensors")."""
    if not isinstance(graph, dict) or not isinstance(graph.get("file"), str):
        return False
    name = graph["file"]
    return name not in ("", ".", "..") and Path(name).name == name


def load(
    directory: Path,
) -> tuple[Config, Any, OnnxSeq2SeqSteps | OnnxLanguageModelSteps | OnnxClassifierHead, dict]:
    """Config, tokenizer (a classifier's: data.encoding.Codec), steps (a classifier's: its head) and
    description of an exported model directory, as model_types.load gives a model directory's."""
    description = read_description(directory)
    kind = description["type"]
    config_path = directory / layout.CONFIG
    graph_path = directory / description["graphs"][layout.GRAPHS[kind][0]]["file"]
    classifier = kind == "classifier"
    for path, what in (
        (config_path, "the model's config"),
        (graph_path, "a graph"),
        *([(directory / ENCODING, "the classifier's labels and scaling")] if classifier else []),
    ):
        if not path.is_file():
            raise ModelDirError(f"{path}: missing ({what}); {DAMAGED}")
    encoding = Encoding.read(directory, DAMAGED) if classifier else None
    reads_text = encoding is None or encoding.inputs == "text"  # (a classifier of numbers: no tokenizer)
    if reads_text and not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise ModelDirError(f"{directory}: no tokenizer file ({', '.join(TOKENIZER_FILES)}); {DAMAGED}")
    try:
        cfg = config_lib.from_dict(configfile.read_toml(config_path), str(config_path))
    except ConfigError as e:
        raise ModelDirError(f"{e} (the export is damaged; export again)") from None
    tokenizer = load_tokenizer(directory) if reads_text else None
    if encoding is not None:
        _check_classifier(directory, description, cfg, encoding, tokenizer)
        head = OnnxClassifierHead(directory, description, encoding)
        return cfg, Codec(encoding, tokenizer), head, description
    assert tokenizer is not None
    columns = description.get("columns") or []
    if columns and columns[-1] >= tokenizer.tgt_vocab_size:  # (an IndexError at the first batch)
        raise ModelDirError(
            f"{directory / layout.DESCRIPTION}: columns name piece {columns[-1]}, beyond the target vocabulary "
            f"of {tokenizer.tgt_vocab_size}; {DAMAGED}"
        )
    steps_class = OnnxSeq2SeqSteps if kind == "seq2seq" else OnnxLanguageModelSteps
    return cfg, tokenizer, steps_class(directory, description), description


def _check_classifier(
    directory: Path, description: dict, cfg: Config, encoding: Encoding, tokenizer: Any
) -> None:
    """A ModelDirError when encoding.json or the tokenizer is not the exported model's (a hand edit or
    another model's file, each a traceback in numpy or onnxruntime at the first batch)."""
    said = description["classifier"]  # (export.json's, as the exporter wrote it)
    found = summary(cfg, encoding)
    if any(said.get(key) != found[key] for key in ("inputs", "head", "labels", "features", "outputs")):
        raise ModelDirError(
            f"{directory / ENCODING}: not the exported model's (its inputs, head, labels or outputs differ "
            f"from {layout.DESCRIPTION}'s); {DAMAGED}"
        )
    if tokenizer is not None and tokenizer.tgt_vocab_size != description["vocab"]:
        raise ModelDirError(
            f"{directory}: a tokenizer of {tokenizer.tgt_vocab_size:,} pieces, but the model reads "
            f"{description['vocab']:,}; {DAMAGED}"
        )


def require_task(description: dict, task: str, directory: Path, command: str | None = None) -> None:
    """A ConfigError naming the command that fits, as model_types.require_task says it for a model."""
    if description["task"] != task:
        title = description["title"]
        article = "an" if title[0] in "aeiou" else "a"
        raise ConfigError(
            f"{directory} holds {article} {title} export (model.type = {description['type']}), which "
            f"`seqkit {command or task}` cannot use; use `seqkit {description['task']}`"
        )
