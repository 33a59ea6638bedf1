"""Where tensors live and in what precision: `auto | cpu | cuda`, and autocast to bf16 or fp16.

Weights and optimizer state stay float32 whatever the precision: autocast runs the matrix products
of the forward pass in the lower precision. fp16's narrow range needs loss scaling (a GradScaler) so
that small gradients do not flush to zero; bf16 has float32's range and needs none.
"""

from __future__ import annotations

import contextlib

import torch

from seqkit.errors import ConfigError

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve(name: str, local_rank: int = 0, option: str = "--device") -> torch.device:
    """`auto` is CUDA when torch sees a GPU, else the CPU. Under torchrun, process `local_rank` of a
    machine takes GPU `local_rank` (modulo the count)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda":
        raise ConfigError(f"{option} {name}: unknown device; valid: auto, cpu, cuda")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"{option} cuda: torch sees no CUDA GPU (this torch {torch.__version__} "
            f"{'has no CUDA support' if torch.version.cuda is None else 'found no device'}); use cpu or auto"
        )
    device = torch.device("cuda", local_rank % torch.cuda.device_count())
    torch.cuda.set_device(device)
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


class Precision:
    """Autocast for the forward pass, and for fp16 the loss scaler that backward and the update go through."""

    def __init__(self, name: str, device: torch.device):
        if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("train.precision = bf16: this GPU has no bfloat16 support; use fp16 or fp32")
        self.name, self.device_type, self.dtype = name, device.type, PRECISIONS[name]
        self.scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    @property
    def scaling(self) -> bool:
        return self.scaler.is_enabled()

    def state_dict(self) -> dict:
        return self.scaler.state_dict()  # {} unless fp16

    def load_state_dict(self, state: dict) -> None:
        if state and self.scaling:  # a run may switch precision on resume: then the scale starts afresh
            self.scaler.load_state_dict(state)


def rng_state() -> dict:
    """The random generators that training draws from (dropout): the CPU's and, if used, each GPU's."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict | torch.Tensor) -> None:
    if isinstance(state, torch.Tensor):  # checkpoints written before GPU support held the CPU state alone
        state = {"cpu": state}
    torch.set_rng_state(state["cpu"])
    saved_gpus = state.get("cuda") or []
    if saved_gpus and torch.cuda.is_available() and len(saved_gpus) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(saved_gpus)
