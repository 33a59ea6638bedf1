"""Processes started by `torchrun` (torch.distributed: gloo on CPU, nccl on CUDA, one GPU per process),
on one machine or several.

Training: every process holds the whole model and data and trains on its share of every batch; the
gradients are averaged by DistributedDataParallel. Only the first process (rank 0) makes the tokenizer,
writes files, reports and validates; its tokenizer and decisions (stop, validation results) are broadcast
so that every process takes the same steps. Translation: each process translates its share of the lines
(decoding/sharded.py).
"""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from seqkit.errors import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")  # where this process trains

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: list) -> tuple[list, float]:
        """This process's share of a batch (every size-th item from its rank on) and the weight of its loss:
        1, or 0 where the batch has fewer items than there are processes (a pool's last batch of long
        sentences may hold one). Then this process runs its forward pass on the batch's first item, borrowed
        and weighted 0, so that it still joins DDP's averaging of the gradients, which stay the real
        items' alone."""
        share = items[self.rank :: self.size]
        return (share, 1.0) if share else (items[:1], 0.0)

    def sum(self, values: list[float]) -> list[float]:
        if self.size == 1:
            return values
        totals = torch.tensor(values, dtype=torch.float64, device=self.device)  # nccl reduces GPU tensors
        dist.all_reduce(totals)
        return totals.tolist()

    def from_main(self, value: Any) -> Any:
        """Rank 0's `value`, on every process."""
        if self.size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to run forward passes through in training: DDP averages its gradients."""
        if self.size == 1:
            return model
        return DistributedDataParallel(
            model, device_ids=[self.device] if self.device.type == "cuda" else None
        )


SINGLE = World()
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ


def local_rank() -> int:
    """This process's number on its machine (torchrun sets LOCAL_RANK): which GPU it takes."""
    value = os.environ.get("LOCAL_RANK", "0")
    if not (value.isascii() and value.isdigit()):  # ("²" is a digit, and no number int() reads)
        raise ConfigError(
            f"LOCAL_RANK = {value!r}: not a process number; torchrun sets it, unset it otherwise"
        )
    return int(value)


def join(device: torch.device) -> World:
    """The world this process belongs to: torchrun's environment variables, or a single process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(device=device)
    if not dist.is_initialized():
        # the others wait in a collective while the first process trains the tokenizer on a large corpus
        # and tokenizes it, or validates: longer than nccl's default of 10 minutes
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT
        )
    return World(dist.get_rank(), dist.get_world_size(), device)


def threads_per_process() -> int:
    """CPU threads for each of the processes torchrun started on this machine: the cores shared out."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, (os.cpu_count() or 1) // local)


def leave(together: bool) -> None:
    """End this process's part in the process group, if it joined one.

    together: every process reached this point the same way (training ended or was stopped by the
    broadcast decision), so they first wait for each other. Without that, a process that finished
    early tore down its gloo connections while rank 0 was still writing the model directory, and gloo
    aborted the process ("terminate called without an active exception", exit -6), now and then.
    After an error they do not wait: the others may never come, and torchrun ends them.

    The collection first: DistributedDataParallel's reducer holds the process group, so a wrapped model
    left in a reference cycle kept the group alive past destroy_process_group, and gloo's worker threads
    were then torn down at interpreter exit, where they abort the process the same way."""
    if dist.is_initialized():
        gc.collect()
        if together:
            dist.barrier()
        dist.destroy_process_group()
