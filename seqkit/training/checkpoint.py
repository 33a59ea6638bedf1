"""Resumable training checkpoints inside a model directory.

    checkpoints/step-00000120/weights.safetensors   the model
    checkpoints/step-00000120/state.pt              optimizer, RNG state, counters, data position
    checkpoints/latest                              the name of the newest complete checkpoint

A checkpoint is written into a temporary folder, renamed into place, and only then named in `latest`
(itself replaced atomically): a process killed at any moment leaves `latest` naming a complete
checkpoint, or no `latest` at all. `state.pt` holds only tensors, numbers and strings and is read with
`torch.load(weights_only=True)`, which refuses anything else.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from seqkit import outputs
from seqkit.errors import ModelDirError
from seqkit.modeldir import (
    CHECKPOINT_NAME,
    CHECKPOINT_POINTER,
    CHECKPOINT_TEMPORARY,
    CHECKPOINTS,
    RUN_FILES,
    damaged_weights,
    load_weights_into,
    require_directory,
    weights_bytes,
)
from seqkit.modeldir import WEIGHTS as MODEL_WEIGHTS
from seqkit.outputs import LOCK, MARKER, atomic_write, marker_bytes

ROOT, LATEST, WEIGHTS, STATE = CHECKPOINTS, CHECKPOINT_POINTER, "weights.safetensors", "state.pt"


def _complete(path: Path) -> bool:
    return (path / WEIGHTS).is_file() and (path / STATE).is_file()


def _steps(root: Path) -> list[Path]:
    """The checkpoint folders, oldest first (a link in their place is not one of the run's)."""
    folders = [p for p in root.glob("step-*") if CHECKPOINT_NAME.fullmatch(p.name) and not p.is_symlink()]
    return sorted(folders, key=lambda p: int(p.name.removeprefix("step-")))  # (not by name: 9 digits)


def latest(model_dir: Path) -> Path | None:
    """The newest complete checkpoint of a model directory, if any: the one `latest` names, or, if that
    was deleted by hand, the newest complete one left. `latest` names a folder beside it, nothing else: a
    path out of the run is a ModelDirError."""
    root = model_dir / ROOT
    pointer = root / LATEST
    if pointer.is_file() and not pointer.is_symlink():
        name = pointer.read_bytes().decode("utf-8", "replace").strip()
        if not CHECKPOINT_NAME.fullmatch(name):
            raise ModelDirError(
                f"{pointer}: names {name[:80]!r}, not a checkpoint of this run (step-NNNNNNNN); delete the "
                "file to continue from the newest checkpoint left"
            )
        path = root / name
        if _complete(path) and not path.is_symlink():
            return path
    # no pointer (deleted, or a kill between renaming a checkpoint and naming it), or one naming a
    # checkpoint that is gone: the newest complete one left (each is renamed into place whole)
    remaining = [p for p in _steps(root) if _complete(p)]
    return remaining[-1] if remaining else None


def save(model_dir: Path, model, optimizer, state: dict, keep: int) -> None:
    """Write a checkpoint of the current step (`state["progress"]["step"]`) and keep the newest `keep`.

    `state` is the loop's own: counters, RNG state, the task's carried state."""
    root = model_dir / ROOT
    root.mkdir(exist_ok=True)
    name = f"step-{state['progress']['step']:08d}"
    final = root / name
    for stale in root.iterdir():  # left by a killed process
        if CHECKPOINT_TEMPORARY.fullmatch(stale.name) and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".{name}.{os.getpid()}.tmp"
    tmp.mkdir()
    try:
        atomic_write(tmp / WEIGHTS, weights_bytes(model))
        buffer = io.BytesIO()
        torch.save({"optimizer": optimizer.state_dict(), "state": state}, buffer)
        atomic_write(tmp / STATE, buffer.getvalue())
        # A folder of the same step is replaced, never kept: its state can differ from this one (saved
        # at an interruption before the step's validation, or by an earlier session that a resume
        # with other settings has retrained since, and a kill kept out of `latest`). A kill between the
        # two renames leaves no folder of this step, and `latest` falls back to the newest one left.
        replaced = root / f".{name}.{os.getpid()}.old.tmp"
        if final.is_dir() and not final.is_symlink():
            os.rename(final, replaced)
        os.rename(tmp, final)
        shutil.rmtree(replaced, ignore_errors=True)
    except BaseException as e:  # e.g. no space left: no half checkpoint stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):  # named as the checkpoint (its temporary name is gone with it)
            raise OSError(e.errno, e.strerror, str(final)) from None
        raise
    atomic_write(root / LATEST, name.encode())
    for old in [p for p in _steps(root) if _complete(p)][:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def restore(path: Path, model, optimizer) -> dict:
    """Load a checkpoint into `model` and `optimizer`; returns the `state` given to `save`."""
    try:
        load_weights_into(model, load_safetensors((path / WEIGHTS).read_bytes()))
        # tensors land on the CPU (a GPU run resumes on a CPU-only machine); the optimizer moves its state
        # to its parameters' device
        # (torch's remarks on a foreign file's pickle protocol are not for the user: ours is a refusal)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            saved = torch.load(io.BytesIO((path / STATE).read_bytes()), map_location="cpu", weights_only=True)
        if not (isinstance(saved, dict) and isinstance(saved.get("state"), dict) and "optimizer" in saved):
            raise ValueError("not a checkpoint state of seqkit's")
        optimizer.load_state_dict(saved["optimizer"])
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, which would run whatever the file holds: not
        # passed on
        raise ModelDirError(
            f"{path / STATE}: holds objects other than tensors, numbers and strings (refused unread: loading "
            "them could run code); delete the checkpoint to use an older one"
        ) from None
    except (
        OSError,
        SafetensorError,
        RuntimeError,
        ValueError,
        KeyError,
        EOFError,
        TypeError,
        AttributeError,
    ) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelDirError(
            f"{path}: checkpoint cannot be restored ({first}); delete it to use an older one"
        ) from None
    return saved["state"]


def without_checkpoint(directory: Path, wanted: str) -> str:
    """What to do with a directory where `train --resume` (`wanted` = "resume") or `average` ("average")
    finds no checkpoint: the fix depends on what it holds (the one fix for all, a run with --output there,
    was refused for an export, an averaged model or a folder of the user's)."""
    from seqkit import modeldir

    if (directory / modeldir.WEIGHTS).is_file():  # an averaged model, or a run whose checkpoints are gone
        config = directory / modeldir.CONFIG
        if wanted == "average":
            return "it holds a trained model without checkpoints; average the run it was trained in"
        if config.is_file() and modeldir.load_config(directory).model.type == "seq2seq":
            return (
                f"start a new run from its weights: seqkit train --config {config} --set "
                f"train.init_from={directory} --output NEW_DIR"
            )
        return "it holds a trained model without checkpoints; train a new one with --output NEW_DIR"
    elsewhere = "give a run's directory" if wanted == "average" else "start a run with --output NEW_DIR"
    kind = outputs.marker_kind(directory) if outputs.owns(directory) else None
    if kind not in (None, "run"):
        holds = outputs.HOLDS.get(kind, "another command")
        return f"it holds seqkit's files of {holds}, not a training run; {elsewhere}"
    if directory.is_dir() and any(directory.iterdir()) and not outputs.owns(directory):
        return f"it holds files that are not seqkit's: {elsewhere}"
    return (
        f"train with --output {directory} first"
        if wanted == "average"
        else f"start a run with --output {directory}"
    )


def average(model_dir: Path, output_dir: Path, last: int) -> list[str]:
    """Write a model directory whose weights are the mean of the newest `last` checkpoints' weights
    (the run's own files copied: config, tokenizer, log, ...; not the user's outputs beside them); returns
    the names of the checkpoints averaged. Checkpoints of another model (other tensors) are refused."""
    require_directory(model_dir)  # (an export, say, is refused by name)
    chosen = [p for p in _steps(model_dir / ROOT) if _complete(p)][-last:]
    if not chosen:
        raise ModelDirError(
            f"{model_dir}: no checkpoints to average; {without_checkpoint(model_dir, 'average')}"
        )
    if output_dir.exists() or output_dir.is_symlink():
        raise ModelDirError(f"{output_dir} already exists; choose a new --output for the averaged model")
    total: dict[str, torch.Tensor] = {}
    first: dict[str, tuple[int, ...]] = {}  # the first checkpoint's tensors' shapes, which the others share
    for path in chosen:
        try:
            tensors = load_safetensors((path / WEIGHTS).read_bytes())
        except SafetensorError as e:
            raise damaged_weights(path / WEIGHTS, e) from None
        shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
        first = first or shapes
        if shapes != first:  # (another run's checkpoint copied in: a traceback, or a wrong mean of names)
            raise ModelDirError(
                f"{path}: its tensors are not those of {chosen[0].name} (another model's checkpoint?); move "
                f"it out of {model_dir / ROOT} or average fewer with --last"
            )
        for name, tensor in tensors.items():
            total[name] = total.get(name, 0) + tensor.double()
    tmp = output_dir.with_name(f".{output_dir.name}.{os.getpid()}.tmp")
    with outputs.terminable():  # SIGTERM too leaves no half directory
        try:
            tmp.mkdir(parents=True)
            atomic_write(tmp / MARKER, marker_bytes("average"))
            for name in RUN_FILES:  # the run's own files: not its links, nor the user's outputs beside them
                item = model_dir / name
                if name not in (MARKER, LOCK) and item.is_file() and not item.is_symlink():
                    shutil.copy2(item, tmp / name)
            averaged = {name: (t / len(chosen)).float() for name, t in total.items()}
            atomic_write(tmp / MODEL_WEIGHTS, save_safetensors(averaged))
            os.rename(tmp, output_dir)  # the averaged directory appears whole or not at all
        except BaseException as e:  # e.g. no space left: no half directory stays behind
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, OSError):  # named as the output (copy2 names its source; the temp name is ours)
                raise OSError(e.errno, e.strerror, str(output_dir)) from None
            raise
    return [path.name for path in chosen]
