"""How many CPU threads a training takes when nothing says: no more than the cores other processes leave.

Threads that share a core with another process wait for each other at every one of a recurrent step's
many small products. With a second training on the same 2 cores, a 2-thread step of the demo model's
size took 1.31 s and a 1-thread step 0.70 s; idle, 2 threads take 0.48 s and 1 thread 0.75 s
(`make bench-wait`, bench/README.md "Threads that wait"). So a training that starts while the cores are
taken uses fewer threads, and one that starts on an idle machine keeps torch's default. `train.threads`,
OMP_NUM_THREADS and torchrun (which shares the cores out itself) each decide instead.
"""

from __future__ import annotations

import math
import os

# a process counts once it has kept a core busy for three quarters of the last minute
BUSY = 0.75


def free_cores(cores: int, load: float, machine_cores: int) -> int:
    """Cores of ours (`cores`, those we may run on) that others leave free, at least 1: the machine's
    1-minute load average, shared over its cores, counts whole processes on ours."""
    others = math.floor(load * cores / max(machine_cores, 1) + (1 - BUSY))
    return max(1, min(cores, cores - others))


def training_threads(configured: int, current: int) -> tuple[int | None, str]:
    """-> the thread count a training sets (None: keep `current`, torch's) and why, for the start line."""
    if configured:
        return configured, "train.threads"
    if "OMP_NUM_THREADS" in os.environ:
        return None, "OMP_NUM_THREADS"
    if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
        return None, "torchrun"
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this system
        return None, "default"
    # the cores this process may run on (Linux); elsewhere (macOS) all of the machine's
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    free = free_cores(cores, load, os.cpu_count() or cores)
    if free < current:
        return free, f"load average {load:.1f} on {cores} cores"
    return None, "default"
