"""Running one benchmark command: wall time and the peak resident memory of that process tree alone;
workers run in turn and their median; and the name of the CPU it ran on.

`os.wait4` returns the rusage of the one child waited for (its own peak RSS, which on Linux covers the
largest of it and its waited-for descendants), so runs measured one after the other never mix figures.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform module says."""
    if Path("/proc/cpuinfo").exists():
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor()


@dataclass
class Run:
    returncode: int
    wall_s: float
    peak_rss_mb: float


def run(
    command: list[str],
    log: Path,
    env: dict | None = None,
    stop_after_s: float | None = None,
    stop_signal: int = signal.SIGINT,
    cwd: Path | None = None,
    on_poll: Callable[[float], None] | None = None,
) -> Run:
    """Run `command` with stdout and stderr into `log`; after `stop_after_s` send `stop_signal` (the
    command is expected to save and exit), and kill it 300 s later if it has not. `on_poll(elapsed)` is
    called about every 50 ms while it runs."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        signalled = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.monotonic() - start
            if stop_after_s is not None and not signalled and elapsed > stop_after_s:
                process.send_signal(stop_signal)
                signalled = True
            if signalled and elapsed > stop_after_s + 300:
                process.kill()
            if on_poll is not None:
                on_poll(elapsed)
            time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    return Run(process.returncode, time.monotonic() - start, usage.ru_maxrss / 1024)


def load_model(model_dir: Path, options: dict) -> tuple[Any, float]:
    """`seqkit.load(model_dir, **options)` in a worker, a torch model held to 2 threads (an export's
    process never imports torch) -> the model and the seconds loading took."""
    if options:
        import torch

        torch.set_num_threads(2)
    import seqkit

    start = time.perf_counter()
    model = seqkit.load(model_dir, **options)
    return model, time.perf_counter() - start


def interleaved(commands: dict[str, list[str]], repeats: int) -> dict[str, list[dict]]:
    """Each command (a worker that prints one JSON object) run `repeats` times, the commands in turn
    within each round, so that a slow spell of a shared machine falls on all of them -> each command's
    results, in order."""
    rounds: dict[str, list[dict]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:  # (its traceback, not only the exit status)
                raise SystemExit(f"{name}: exit {done.returncode}\n{done.stderr[-3000:]}")
            rounds[name].append(json.loads(done.stdout))
    return rounds


def median_run(runs: list[dict], key: str, leave_out: tuple[str, ...] = ()) -> dict:
    """The run whose `key` is the median of the runs', without the keys `leave_out`, and with
    `{key}_range`: the lowest and the highest."""
    values = sorted(run[key] for run in runs)
    middle = next(run for run in runs if run[key] == values[len(values) // 2])
    return {
        **{name: value for name, value in middle.items() if name not in leave_out},
        f"{key}_range": [values[0], values[-1]],
    }


if __name__ == "__main__":  # python bench/measure.py LOG COMMAND...: prints wall time and peak RSS
    result = run(sys.argv[2:], Path(sys.argv[1]))
    print(result)
