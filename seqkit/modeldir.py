"""The model directory: one self-describing folder that every command can load (`model_types.load`).

    config.toml          the full resolved config of the run (model shape, tokenizer, decoding)
    spm.model            the SentencePiece model (spm.src.model + spm.tgt.model when not joint;
                         chars.json for a character tokenizer)
    model.safetensors    the weights of the best checkpoint (no pickle)
    train_log.jsonl      one JSON record per log interval and validation
    vocab_counts.json    how often each piece occurs in the training data (`seqkit info --vocab`)
    encoding.json        a classifier's labels and the standardisation of its numbers (data/encoding.py)
    shortlist.npz        a translation model's likely target pieces per source piece, for
                         `translate --shortlist` (decoding/shortlist.py)
    dev.src.txt          without data.dev: the dev pairs held out of data.train, one per line
    dev.tgt.txt          (score the model on them: seqkit translate DIR DIR/dev.src.txt | seqkit
                         evaluate -r DIR/dev.tgt.txt)
    .seqkit              the marker of a directory seqkit owns; .seqkit.lock, held while it trains
                         (outputs.py: seqkit clears and replaces files only where the marker is)

Every file is written to a temporary name and renamed into place, so a killed process leaves either
the old file or the new one, never half of one. The weights are written last: a directory without
them is an unfinished run, and `read_weights` says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from seqkit import config as config_lib
from seqkit import configfile
from seqkit.config import Config
from seqkit.data.arrays import id_counts
from seqkit.data.corpus import CACHE, remove_cache
from seqkit.data.encoding import FILE as ENCODING
from seqkit.data.tokenizer import TOKENIZER_FILES, Tokenizer
from seqkit.decoding.shortlist import FILE as SHORTLIST
from seqkit.errors import (
    EXPORT_DESCRIPTION,
    ConfigError,
    ModelDirError,
    an_export_where_a_trained_model_is_needed,
)
from seqkit.outputs import LOCK, MARKER, atomic_write, is_file_of, marker_kind, require_model_directory

CONFIG = "config.toml"
WEIGHTS = "model.safetensors"
VOCAB_COUNTS = "vocab_counts.json"  # how often each piece occurs in the training data, per side
HELD_OUT_SRC, HELD_OUT_TGT = "dev.src.txt", "dev.tgt.txt"  # a dev set held out of data.train
LOG = "train_log.jsonl"  # written and read by training/log.py
# what marks an exported directory, finished or not (export/layout.py's names: a part below the exporter
# does not import it; test_export checks the two agree)
EXPORT_GRAPHS = ("encoder.onnx", "decoder.onnx", "lm.onnx", "classifier.onnx", "select.onnx")
CHECKPOINTS = "checkpoints"  # written by training/checkpoint.py


# seqkit's own entries of a run directory (a run's files, its folders, what training/checkpoint.py and
# data/corpus.py write in theirs): the only ones it clears, and ones it never follows when they are links
RUN_FILES = (
    CONFIG,
    *TOKENIZER_FILES,
    WEIGHTS,
    LOG,
    HELD_OUT_SRC,
    HELD_OUT_TGT,
    VOCAB_COUNTS,
    SHORTLIST,
    ENCODING,
    MARKER,
    LOCK,
)
RUN_FOLDERS = (CHECKPOINTS, CACHE)
# the names a run writes in checkpoints/: a checkpoint, one being written or replaced, the pointer. Only
# these are deleted or swept: a copy of yours beside them (step-00000400-keep) stays.
# (8 digits or more: step-100000000 follows step-99999999)
CHECKPOINT_NAME = re.compile(r"step-\d{8,}")
CHECKPOINT_TEMPORARY = re.compile(r"\.step-\d{8,}\.\d+(\.old)?\.tmp")
CHECKPOINT_POINTER = "latest"


def is_checkpoint_entry(name: str) -> bool:
    return bool(
        CHECKPOINT_NAME.fullmatch(name) or CHECKPOINT_TEMPORARY.fullmatch(name) or name == CHECKPOINT_POINTER
    )


def owns(model_dir: Path, path: Path) -> bool:
    """Whether `path` is one of the model directory's own files (its weights, config, tokenizer, log,
    anything in its checkpoints or cache); other files there (`make demo`'s test.hyp.en) are the user's
    outputs. An export's own files: export/runtime.py's `owns`, which needs no torch."""
    return is_file_of(model_dir, path, RUN_FILES, RUN_FOLDERS)


def is_export(model_dir: Path) -> bool:
    """export/runtime.py's test: an export left without its export.json (killed, damaged) still holds
    graphs, and taken for a run it was told to "train longer"; one that failed at its first graph has
    seqkit's marker of an export."""
    names = (EXPORT_DESCRIPTION, *EXPORT_GRAPHS)
    return any((model_dir / name).is_file() for name in names) or marker_kind(model_dir) == "export"


def open_run(model_dir: Path, resume: bool, overwrite: bool) -> None:
    """Before a training writes into `model_dir`, which the trainer has made seqkit's
    (`outputs.claim_directory`) and locked: none of the run's own files or folders is a link, and a new
    run does not silently replace a trained model."""
    if is_export(model_dir):  # (the runtime's test: an unfinished export, without its description, too)
        raise ModelDirError(
            f"--output {model_dir}: holds an ONNX export (seqkit export), not a training run; choose another --output"
        )
    refuse_links(model_dir)
    if resume or overwrite:
        return
    # (an unnamed checkpoint folder is a kill's leftover, not a trained model)
    trained = [name for name in (WEIGHTS, f"{CHECKPOINTS}/latest") if (model_dir / name).exists()]
    if trained:
        raise ModelDirError(
            f"--output {model_dir}: holds a trained model ({', '.join(trained)}) but no checkpoint to "
            "continue; choose another --output, or add --overwrite to start a new run there (it replaces "
            "seqkit's own files only)"
        )


def refuse_links(model_dir: Path) -> None:
    """A ModelDirError naming the first of the run's own files or folders that is a symbolic link: writes,
    deletes and restores never follow one out of the run."""
    entries = [model_dir / name for name in (*RUN_FILES, *RUN_FOLDERS)]
    for folder in RUN_FOLDERS:
        if (model_dir / folder).is_dir() and not (model_dir / folder).is_symlink():
            for entry in (model_dir / folder).iterdir():
                entries.append(entry)
                if entry.is_dir() and not entry.is_symlink():
                    entries.extend(entry.iterdir())
    for path in entries:
        if path.is_symlink():
            raise ModelDirError(
                f"{path} is a symbolic link (to {os.readlink(path)}); seqkit never follows a link out of a "
                "run directory: put the file or folder itself there, or train into another --output"
            )


def start(model_dir: Path, cfg: Config, tokenizer: Tokenizer | None, resume: bool) -> None:
    """Prepare the directory of a run (claimed and locked by the trainer, checked by `open_run`): a new one gets its tokenizer,
    config and an empty log, and loses the files of an earlier run (seqkit's own, by name: a user's file
    beside them stays); a resumed one gets the config of this session (the command may have changed limits
    or rates). Called once the new run has its tokenizer: nothing is deleted before there is something to
    save."""
    if not resume:
        model_dir.mkdir(parents=True, exist_ok=True)
        # an earlier run, or one killed before its first checkpoint, may have left files of another
        # tokenizer or model, a log, and checkpoints (named or not)
        for stale in RUN_FILES:
            if stale not in (CONFIG, MARKER, LOCK):  # (the config is written below; the others hold the run)
                (model_dir / stale).unlink(missing_ok=True)
        checkpoints = model_dir / CHECKPOINTS
        for entry in checkpoints.iterdir() if checkpoints.is_dir() else ():
            if is_checkpoint_entry(entry.name):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        if cfg.model.type != "seq2seq":  # (an encoder-decoder's run replaces only arrays of another key)
            remove_cache(model_dir)
        for name, data in (tokenizer.files() if tokenizer is not None else {}).items():  # none: numbers
            atomic_write(model_dir / name, data)
    atomic_write(model_dir / CONFIG, configfile.to_toml(cfg))


def write_held_out(model_dir: Path, src: list[str], tgt: list[str]) -> None:
    """The dev pairs held out of data.train (a language model's dev lines: tgt alone), one per line."""
    if src:
        atomic_write(model_dir / HELD_OUT_SRC, "".join(line + "\n" for line in src).encode("utf-8"))
    atomic_write(model_dir / HELD_OUT_TGT, "".join(line + "\n" for line in tgt).encode("utf-8"))


def write_vocab_counts(
    model_dir: Path, src: np.ndarray | None, tgt: np.ndarray, sizes: tuple[int, int]
) -> None:
    """How often each id occurs in the training data's ids (no src for a language model), for `info
    --vocab`."""
    counts = {}
    for side, ids, size in (("src", src, sizes[0]), ("tgt", tgt, sizes[1])):
        if ids is not None:
            counts[side] = id_counts(ids, size).tolist()
    atomic_write(model_dir / VOCAB_COUNTS, json.dumps(counts).encode("utf-8"))


def read_vocab_counts(model_dir: Path, sizes: dict[str, int]) -> dict[str, list[int]]:
    """{"src": [...], "tgt": [...]} by id, a count for each of `sizes[side]` ids; {} for a model trained
    before seqkit kept them. Anything else (JSON of another shape) is a ModelDirError."""
    path = model_dir / VOCAB_COUNTS
    try:
        counts = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    fits = isinstance(counts, dict) and all(
        side in sizes
        and isinstance(values, list)
        and len(values) == sizes[side]
        and all(type(count) is int for count in values)
        for side, values in counts.items()
    )
    if not fits:
        raise ModelDirError(
            f"{path}: damaged or of another model (not a count for each id of the vocabulary); delete it to "
            "list the vocabulary without counts, or restore it"
        )
    return counts


def weights_bytes(model: torch.nn.Module) -> bytes:
    return save_safetensors(_unshared_state(model))


def save_weights(model_dir: Path, model: torch.nn.Module) -> None:
    atomic_write(model_dir / WEIGHTS, weights_bytes(model))


def load_weights_into(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a state saved by `weights_bytes` (tied tensors stored once); a mismatch is a ValueError."""
    if set(state) != set(_unshared_state(model)):
        raise ValueError("tensor names differ from the model this config describes")
    model.load_state_dict(state, strict=False)


def _unshared_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with each tied tensor once (safetensors refuses shared memory)."""
    tensors, seen = {}, set()
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            tensors[name] = tensor.detach().cpu().contiguous()
    return tensors


def _require(path: Path, what: str, fix: str) -> Path:
    if not path.is_file():
        raise ModelDirError(f"{path.parent}: no {path.name} ({what}); {fix}")
    return path


def load_config(model_dir: Path) -> Config:
    path = _require(model_dir / CONFIG, "the run's config", "is this a seqkit model directory?")
    try:
        values = configfile.read_toml(path)
    except ConfigError as e:  # (its message names the file and how to fix it)
        raise ModelDirError(f"{e}, or retrain the model") from None
    if "model" not in values:  # seqkit writes every table: an emptied file loaded as the defaults, and
        # the weights were blamed for not fitting them
        raise ModelDirError(f"{path}: has no [model] table (emptied or cut short?); restore it, or retrain")
    try:
        return config_lib.from_dict(values, str(path))
    except ConfigError as e:
        # a hand edit, or a file of another seqkit version: the key it names is the fix, not a new training
        raise ModelDirError(f"{e} (in the model directory's config; fix that key, or retrain)") from None


def read_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    """The tensors of model.safetensors; a ModelDirError when the file is missing or damaged."""
    path = _require(model_dir / WEIGHTS, "the weights", _why_no_weights(model_dir))
    try:
        tensors = load_safetensors(path.read_bytes())
    except SafetensorError as e:
        raise damaged_weights(path, e) from None
    for name, tensor in tensors.items():  # NaN or inf weights translate to empty lines, silently
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelDirError(
                f"{path}: tensor {name} holds NaN or infinite values (a diverged or damaged model); "
                "retrain it, or restore the file from a copy"
            )
    return tensors


def _why_no_weights(model_dir: Path) -> str:
    """A run without its weights: not validated yet, or validated without a score to keep (every dev
    score non-finite: training/loop.py stops such a run with an error)."""
    log = model_dir / LOG
    try:
        validated = log.is_file() and b'"kind": "valid"' in log.read_bytes()
    except OSError:
        validated = False
    if validated:
        return (
            "the run validated but kept no weights (a run that diverged: every dev score non-finite, "
            f"see {LOG}; or the file was deleted); retrain, with a lower train.learning_rate if it diverged"
        )
    return "training has not reached its first validation; train longer"


def damaged_weights(path: Path, error: Exception) -> ModelDirError:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ModelDirError(f"{path}: damaged or from another model ({first}); retrain or restore it")


def require_directory(model_dir: Path) -> None:
    """A ModelDirError unless `model_dir` is a directory that may hold a trained model (not an export)."""
    require_model_directory(model_dir)
    # the runtime's own test: an export left without its export.json (killed, damaged) still holds graphs,
    # and taken for a run it was told to "train longer", and `seqkit shortlist` wrote its cache into it
    if is_export(model_dir):
        raise an_export_where_a_trained_model_is_needed(model_dir)
