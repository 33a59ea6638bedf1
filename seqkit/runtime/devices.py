"""Where tensors live and in what precision: `auto | cpu | cuda | cuda:N`, and autocast to bf16 or fp16.

Weights and optimizer state stay float32 whatever the precision: autocast runs the matrix products
of the forward pass in the lower precision. fp16's narrow range needs loss scaling (a GradScaler) so
that small gradients do not flush to zero; bf16 has float32's range and needs none.
"""

from __future__ import annotations

import contextlib
import re

import torch

from seqkit.errors import ConfigError
from seqkit.runtime import distributed
from seqkit.wording import counted

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve(name: str, option: str = "--device") -> torch.device:
    """`auto` is CUDA when torch sees a GPU, else the CPU. `cuda` is torch's current GPU, or under torchrun
    the GPU of the process's number on its machine (modulo the count); `cuda:N` is GPU N (not under
    torchrun, whose processes would all take it). `option` names the setting in errors."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    cuda = re.fullmatch(r"cuda(?::(\d+))?", name)
    if cuda is None:
        raise ConfigError(f"{option} {name}: unknown device; valid: auto, cpu, cuda, cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"{option} {name}: torch sees no CUDA GPU (this torch {torch.__version__} "
            f"{'has no CUDA support' if torch.version.cuda is None else 'found no device'}); use cpu or auto"
        )
    count = torch.cuda.device_count()
    if cuda.group(1) is not None:
        if distributed.under_torchrun():
            raise ConfigError(
                f"{option} {name}: under torchrun each process takes the GPU of its LOCAL_RANK; give cuda "
                "(CUDA_VISIBLE_DEVICES chooses the GPUs)"
            )
        if int(cuda.group(1)) >= count:
            raise ConfigError(
                f"{option} {name}: torch sees {counted(count, 'GPU')}, cuda:0 to cuda:{count - 1}; pick one"
            )
        return torch.device("cuda", int(cuda.group(1)))
    if not distributed.under_torchrun():  # a caller's own current device is not seqkit's to change
        return torch.device("cuda", torch.cuda.current_device())
    device = torch.device("cuda", distributed.local_rank() % count)
    torch.cuda.set_device(device)  # a torchrun process's collectives (nccl) run on the current device
    return device


def _bf16_supported(device: torch.device) -> bool:
    with torch.cuda.device(device):  # (torch asks the current device: GPUs of a machine may differ)
        return torch.cuda.is_bf16_supported()


def model_device(model: torch.nn.Module) -> torch.device:
    """Where `model` computes: its parameters' device; the CPU for one quantized whole (quantize_int8
    keeps packed int8 weights, which are no parameters: a forecaster of numbers has none left)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


class Precision:
    """Autocast for the forward pass, and for fp16 the loss scaler that backward and the update go through."""

    def __init__(self, name: str, device: torch.device, option: str = "--precision"):
        """`option`: how the errors name the setting (`train.precision =` in a training run)."""
        if name not in PRECISIONS:
            raise ConfigError(f"{option} {name}: unknown precision; valid: {', '.join(PRECISIONS)}")
        if name == "bf16" and device.type == "cuda" and not _bf16_supported(device):
            raise ConfigError(f"{option} bf16: this GPU has no bfloat16 support; use fp16 or fp32")
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


def fp32_time_steps(device: torch.device) -> contextlib.AbstractContextManager:
    """Inside a time loop on the CPU, autocast is switched off: the per-step products are small, and
    oneDNN's bf16 kernels lose to float32 on them while winning on the large batched products around the
    loop (figures: bench/README.md, "What made seqkit faster"). On a GPU, autocast covers the loop too.
    Tensors entering the loop must be float32."""
    if device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        return torch.autocast("cpu", enabled=False)
    return contextlib.nullcontext()


def rng_state() -> dict:
    """The random generators that training draws from (dropout): the CPU's and, if used, each GPU's."""
    state: dict[str, torch.Tensor | list[torch.Tensor]] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    saved_gpus = state.get("cuda") or []
    if saved_gpus and torch.cuda.is_available() and len(saved_gpus) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(saved_gpus)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` for decoding on the CPU whose linear layers and GRU/LSTM layers compute in int8
    (torch's dynamic quantization: weights stored as int8 with one scale per matrix, activations
    quantized batch by batch as they come). The output layer and the decoder's cell, the largest
    products of a decoding step, gain most. torch has no quantized vanilla RNN: those stay float32."""
    import copy
    import warnings

    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; its dynamic quantization is what we use
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        # every linear layer but the attention's scoring vector, whose weight the attention reads itself,
        # and every GRU / LSTM
        layers = {
            name
            for name, module in model.named_modules()
            if (isinstance(module, torch.nn.Linear) and not name.endswith("energy_layer"))
            or isinstance(module, torch.nn.GRU | torch.nn.LSTM)
        }
        return quantize_dynamic(copy.deepcopy(model).cpu(), layers, dtype=torch.qint8)
