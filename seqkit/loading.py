"""`seqkit.load`: a model directory (or its ONNX export) opened as a `Model`, on the device, in the precision
and in the int8 form asked for, with seqkit's memory settings applied first (runtime/allocator.py)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from seqkit import outputs
from seqkit.api import Model
from seqkit.errors import ConfigError
from seqkit.runtime import allocator


def load(
    model_dir: str | Path, device: str = "auto", precision: str = "fp32", quantize: bool = False
) -> Model:
    """Open a model directory (`seqkit train --output`'s) for translating, scoring, generating or predicting.

    device: auto (CUDA when torch sees a GPU), cpu, cuda or cuda:N (GPU N); precision: fp32, or bf16 /
    fp16 autocast of the larger products; quantize: int8 linear and GRU/LSTM layers (CPU only). An
    exported directory runs on the CPU with onnxruntime, without torch: its int8 form is made by `seqkit
    export --quantize`."""
    return load_named(model_dir, device, precision, quantize, ("device =", "precision ="))


def load_named(
    model_dir: str | Path, device: Any, precision: str, quantize: bool, names: tuple[str, str]
) -> Model:
    """`load`, its errors naming the device and the precision as `names` say (the commands: their options,
    `--device` and `--precision`)."""
    from seqkit.export import runtime

    if not isinstance(model_dir, str | os.PathLike):  # (None, 5, b"dir": pathlib's TypeError)
        raise ConfigError(
            f"model_dir = {model_dir!r:.40}: a {type(model_dir).__name__}; give the model directory's path "
            "(a str or a Path)"
        )
    device = str(device)  # (a torch.device("cpu") was "--device cpu: unknown device; valid: ..., cpu")
    if not isinstance(quantize, bool):  # ("no" is true)
        raise ConfigError(f"quantize = {quantize!r}: give True or False")
    if runtime.is_export(Path(model_dir)):
        return _load_export(Path(model_dir), device, precision, quantize, names)
    outputs.require_model_directory(Path(model_dir))  # (before torch: a typo is not "install torch")
    allocator.configure()
    from seqkit import model_types
    from seqkit.runtime import devices

    target = devices.resolve(device, option=names[0])
    if quantize and target.type != "cpu":
        raise ConfigError(
            "--quantize: int8 decoding runs on the CPU; add --device cpu or leave out --quantize"
            if names[0].startswith("--")  # (a command's)
            else "quantize: int8 decoding runs on the CPU; load with device='cpu' or without quantize"
        )
    devices.Precision(precision, target, option=names[1])  # an unsupported precision fails here
    cfg, tokenizer, module = model_types.load(Path(model_dir), target)
    if quantize:
        module = devices.quantize_int8(module)
    return Model(Path(model_dir), cfg, tokenizer, module, precision)


def _load_export(
    model_dir: Path, device: str, precision: str, quantize: bool, names: tuple[str, str]
) -> Model:
    from seqkit.export import runtime

    command = names[0].startswith("--")
    given = [
        *([f"{names[0]} {device}"] if device not in ("auto", "cpu") else []),
        *([f"{names[1]} {precision}"] if precision != "fp32" else []),
        *(["--quantize" if command else "quantize = True"] if quantize else []),
    ]
    if given:  # (named as given: `serve` has no --precision to leave out)
        raise ConfigError(
            f"{', '.join(given)}: {model_dir} is an ONNX export, which runs on the CPU in float32 (or int8, "
            f"if exported with --quantize); leave {'it' if len(given) == 1 else 'them'} out"
        )
    cfg, tokenizer, steps, description = runtime.load(model_dir)
    # an export computes its whole output layer; one exported before its config said so may still ask
    # for the model's shortlist
    cfg = replace(cfg, decode=replace(cfg.decode, shortlist=False))
    return Model(model_dir, cfg, tokenizer, None, "fp32", steps, description)
