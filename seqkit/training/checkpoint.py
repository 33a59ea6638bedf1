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
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from seqkit.errors import ModelDirError
from seqkit.modeldir import CHECKPOINTS, atomic_write, load_weights_into, weights_bytes
from seqkit.modeldir import WEIGHTS as MODEL_WEIGHTS

ROOT, LATEST, WEIGHTS, STATE = CHECKPOINTS, "latest", "weights.safetensors", "state.pt"


def _complete(path: Path) -> bool:
    return (path / WEIGHTS).is_file() and (path / STATE).is_file()


def latest(model_dir: Path) -> Path | None:
    """The newest complete checkpoint of a model directory, if any: the one `latest` names, or, if that
    was deleted by hand, the newest complete one left."""
    root = model_dir / ROOT
    pointer = root / LATEST
    if pointer.is_file():
        path = root / pointer.read_text().strip()
        if _complete(path):
            return path
        remaining = [p for p in sorted(root.glob("step-*")) if _complete(p)]
        return remaining[-1] if remaining else None
    return None


def save(model_dir: Path, model, optimizer, state: dict, keep: int) -> None:
    """Write a checkpoint of the current step (`state["progress"]["step"]`) and keep the newest `keep`.

    `state` is the loop's own: counters, RNG state, the task's carried state."""
    root = model_dir / ROOT
    root.mkdir(exist_ok=True)
    name = f"step-{state['progress']['step']:08d}"
    final = root / name
    if not final.exists():  # the same step saved twice (validation, then the end) is the same state
        for stale in root.glob(".step-*.tmp"):  # left by a killed process
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root / f".{name}.{os.getpid()}.tmp"
        tmp.mkdir()
        atomic_write(tmp / WEIGHTS, weights_bytes(model))
        buffer = io.BytesIO()
        torch.save({"optimizer": optimizer.state_dict(), "state": state}, buffer)
        atomic_write(tmp / STATE, buffer.getvalue())
        os.rename(tmp, final)
    atomic_write(root / LATEST, name.encode())
    for old in sorted(root.glob("step-*"))[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def restore(path: Path, model, optimizer) -> dict:
    """Load a checkpoint into `model` and `optimizer`; returns the `state` given to `save`."""
    try:
        load_weights_into(model, load_safetensors((path / WEIGHTS).read_bytes()))
        # tensors land on the CPU (a GPU run resumes on a CPU-only machine); the optimizer moves its state
        # to its parameters' device
        saved = torch.load(io.BytesIO((path / STATE).read_bytes()), map_location="cpu", weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
    except (OSError, SafetensorError, RuntimeError, ValueError, KeyError) as e:
        raise ModelDirError(
            f"{path}: checkpoint cannot be restored ({e}); delete it to use an older one"
        ) from None
    return saved["state"]


def average(model_dir: Path, output_dir: Path, last: int) -> list[str]:
    """Write a model directory whose weights are the mean of the newest `last` checkpoints' weights
    (config, tokenizer and log copied); returns the names of the checkpoints averaged."""
    chosen = sorted((model_dir / ROOT).glob("step-*"))[-last:]
    if not chosen:
        raise ModelDirError(f"{model_dir}: no checkpoints to average; train with --output {model_dir} first")
    if output_dir.exists():
        raise ModelDirError(f"{output_dir} already exists; choose a new --output for the averaged model")
    total: dict[str, torch.Tensor] = {}
    for path in chosen:
        for name, tensor in load_safetensors((path / WEIGHTS).read_bytes()).items():
            total[name] = total.get(name, 0) + tensor.double()
    tmp = output_dir.with_name(f".{output_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for item in model_dir.iterdir():
        if item.is_file() and not item.name.startswith("."):
            shutil.copy2(item, tmp / item.name)
    averaged = {name: (t / len(chosen)).float() for name, t in total.items()}
    atomic_write(tmp / MODEL_WEIGHTS, save_safetensors(averaged))
    os.rename(tmp, output_dir)  # the averaged directory appears whole or not at all
    return [path.name for path in chosen]
