"""`seqkit info`: what a model directory holds, like Keras' `model.summary()`.

Output shapes come from running the model once on a tiny batch with forward hooks, so they are the
shapes the code really makes: batch and time dimensions are named, the others are sizes. The decoder
of an encoder-decoder runs one step at a time, so its shapes are per step.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from seqkit import model_types, modeldir, outputs
from seqkit.data import encoding
from seqkit.data.tokenizer import SPECIALS, TOKENIZER_FILES, load_tokenizer
from seqkit.errors import ConfigError
from seqkit.model_types.base import ModelType
from seqkit.models.attention import ATTENTIONS
from seqkit.models.softmax import given_pieces
from seqkit.training import log as training_log
from seqkit.training.log import EndRecord, Record, ValidRecord

# Time steps of the probe batches: a size that equals one of them is a layer's (11 labels) where the other
# probe's shape says so, and only the time axis has both
SAMPLE_LENGTHS = (11, 13)
SAMPLE_PIECES = 12


def _shape(value, time_name: str, length: int) -> str:
    """A module output -> "(batch, src_len, 512)"; a tuple of tensors (attention) -> each of them."""
    if isinstance(value, PackedSequence):  # the encoder RNN: (sum of lengths, features)
        return f"(batch, {time_name}, {value.data.size(-1)})"  # (a packed sequence's time is time)
    if isinstance(value, tuple):
        if isinstance(value[0], PackedSequence | torch.Tensor) and isinstance(value[1], tuple | torch.Tensor):
            if isinstance(value[1], torch.Tensor) and value[1].dim() == 2:  # attention: (context, weights)
                return ", ".join(_shape(v, time_name, length) for v in value)
            return _shape(value[0], time_name, length)  # an RNN's (output, state): the output
    dims = ["batch"] + [time_name if size == length else str(size) for size in value.shape[1:]]
    return f"({', '.join(dims)})"


def layer_table(model: nn.Module, model_type: ModelType) -> list[dict]:
    """Every module that holds parameters (and each attention module), in definition order:
    name, type, output shape (None if the module is never called as a module), own parameters."""
    time_name = model_type.time_name
    names = {module: name for name, module in model.named_modules()}
    probed: list[dict[str, str]] = []
    for length in SAMPLE_LENGTHS:
        shapes: dict[str, str] = {}

        def record_shape(module: nn.Module, args, output, shapes=shapes, length=length) -> None:
            shapes.setdefault(names[module], _shape(output, time_name, length))  # (None keeps the output)

        hooks = [module.register_forward_hook(record_shape) for module in names]
        try:
            with torch.no_grad():
                model_type.probe(model, length)
        finally:
            for hook in hooks:
                hook.remove()
        probed.append(shapes)
    # where the probes differ, a size equalled one probe's length: the shape naming time less often is right
    shapes = {
        name: min((each[name] for each in probed), key=lambda shape: shape.count(time_name))
        for name in probed[0]
    }
    seen: dict[int, str] = {}
    rows = []
    for name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        if not own and not isinstance(module, tuple(ATTENTIONS.values())):
            continue
        count, tied = 0, []
        for param_name, param in own:
            if id(param) in seen:
                tied.append(f"{param_name} = {seen[id(param)]}")
            else:
                seen[id(param)] = f"{name}.{param_name}"
                count += param.numel()
        per_step = model_type.per_step(name)
        rows.append(
            {
                "name": name,
                "type": type(module).__name__,
                "output_shape": shapes.get(name),
                "per_step": per_step and name in shapes,
                "parameters": count,
                "tied": tied,
            }
        )
    return rows


def _training(records: list[Record]) -> dict:
    """Steps, time and best dev score of the run so far, from its log."""
    stepped = [r for r in records if isinstance(r, training_log.TrainRecord | ValidRecord)]
    ends = training_log.of_kind(records, EndRecord)
    summary: dict = {
        # (an end record's: the log's step records come every log_every steps, a signal any time)
        "steps": max([r.step for r in stepped] + [end.steps for end in ends], default=0),
        "elapsed_s": max((getattr(r, "elapsed_s", 0.0) for r in records), default=0.0),
        "finished": bool(ends) and ends[-1].finished,
    }
    if ends:
        end = ends[-1]
        summary["stopped_by"] = end.reason
        # the JSON of seqkit 0.1: best_dev_bleu, best_dev_ppl, ...
        summary[f"best_{training_log.METRIC_KEYS[end.best_metric]}"] = end.best_score
        if end.best_signature:
            summary["best_signature"] = end.best_signature
    valid = training_log.of_kind(records, ValidRecord)
    best_valid = [r for r in valid if r.best]
    summary["validations"] = len(valid)
    if best_valid:  # the validation whose weights are model.safetensors, with all its scores
        record = best_valid[-1]
        summary["best_validation"] = {
            key: value
            for key, value in training_log.to_json(record).items()
            if key == "step" or key.startswith("dev_") or key.endswith("_signature")
        }
    return summary


def _file_sizes(model_dir: Path) -> dict[str, int]:
    """Bytes per entry of the directory; a folder's files counted without following links (a link to /usr
    or /proc is the size of the link, not a walk of what it names)."""
    sizes = {}
    for entry in sorted(model_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        folder = entry.is_dir() and not entry.is_symlink()
        sizes[entry.name + ("/" if folder else "")] = _bytes_under(entry) if folder else entry.lstat().st_size
    return sizes


def _bytes_under(folder: Path) -> int:
    total = 0
    for root, _, names in os.walk(folder, followlinks=False):  # unreadable folders: skipped by os.walk
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _pieces(tokenizer, vocab_size: int) -> list[str]:
    ids = list(range(len(SPECIALS), min(vocab_size, len(SPECIALS) + SAMPLE_PIECES)))
    return tokenizer.tgt_pieces(ids)


def vocabulary(model_dir: Path | str) -> dict:
    """`seqkit info --vocab`: every id of each side's vocabulary, its piece, and how often it occurs in
    the training data (None for a model trained before seqkit counted)."""
    model_dir = Path(model_dir)
    modeldir.require_directory(model_dir)
    if (
        not any((model_dir / name).is_file() for name in TOKENIZER_FILES)
        and (model_dir / encoding.FILE).is_file()
    ):
        raise ConfigError(f"--vocab: {model_dir} reads numbers, and has no vocabulary; leave out --vocab")
    tokenizer = load_tokenizer(model_dir)
    counts = modeldir.read_vocab_counts(
        model_dir, {"src": tokenizer.src_vocab_size, "tgt": tokenizer.tgt_vocab_size}
    )
    sides = {"target": ("tgt", tokenizer.tgt_vocab_size, tokenizer.tgt_pieces)}
    if not tokenizer.joint:
        sides = {"source": ("src", tokenizer.src_vocab_size, tokenizer.src_id_pieces), **sides}
    table = {}
    for side, (key, size, pieces) in sides.items():
        side_counts = counts.get(key)
        if tokenizer.joint and "src" in counts and side_counts:  # one vocabulary: both sides' counts
            side_counts = [a + b for a, b in zip(counts["src"], side_counts, strict=True)]
        table[side] = [
            {"id": i, "piece": piece, "count": side_counts[i] if side_counts else None}
            for i, piece in enumerate(pieces(list(range(size))))
        ]
    return {"model_dir": str(model_dir), "joint": tokenizer.joint, "vocabulary": table}


def weights_origin(model_dir: Path) -> dict:
    """The run that made a model directory's weights, as `info` shows it: "training" (steps, time, the
    best validation) and "averaged"."""
    return {
        "training": _training(training_log.read(model_dir)),
        # `seqkit average` wrote the weights (the mean of checkpoints): the log's best validation is the
        # run's, not theirs
        "averaged": outputs.marker_kind(model_dir) == "average",
    }


def summarize(model_dir: Path | str) -> dict:
    """Everything `seqkit info` shows, as one JSON-ready dict."""
    model_dir = Path(model_dir)
    cfg, tokenizer, model = model_types.load(model_dir)
    model_type = model_types.of(cfg)
    parameters = list(model.parameters())  # each tied tensor once
    info = {
        "model_dir": str(model_dir),
        "type": model_type.name,
        "cell": cfg.model.cell,
        "attention": cfg.model.attention if model_type.attends else None,
        # the pointer-generator and coverage (an encoder-decoder's options; False for a language model)
        "copy": cfg.model.copy,
        "coverage": cfg.model.coverage,
        "layers": layer_table(model, model_type),
        "parameters": {
            "trainable": sum(p.numel() for p in parameters if p.requires_grad),
            "all": sum(p.numel() for p in parameters),
        },
        "vocabulary": _vocabulary(cfg, tokenizer, model),
        **weights_origin(model_dir),
        "files": _file_sizes(model_dir),
    }
    if cfg.model.type == "classifier":  # what it reads and says: a classifier's tokenizer is a Codec
        info["classifier"] = encoding.summary(cfg, tokenizer.encoding)
    return info


def _vocabulary(cfg, tokenizer, model) -> dict | None:
    if cfg.model.type == "classifier":
        tokenizer = tokenizer.tokenizer  # the Codec's, None for numbers
        if tokenizer is None:
            return None
    # a translation model's output layer gives only the pieces that were training targets (softmax.py)
    given = given_pieces(model.decoder.output) if cfg.model.type == "seq2seq" else None
    return {
        "tokenizer": cfg.tokenizer.type,
        "joint": tokenizer.joint,
        "source": tokenizer.src_vocab_size,
        "target": tokenizer.tgt_vocab_size,
        "output_pieces": tokenizer.tgt_vocab_size if given is None else int(given.numel()),
        "sample_pieces": _pieces(tokenizer, tokenizer.tgt_vocab_size),
    }
