"""Running one benchmark command: wall time and the peak resident memory of that process tree alone;
and the name of the CPU it ran on.

`os.wait4` returns the rusage of the one child waited for (its own peak RSS, which on Linux covers the
largest of it and its waited-for descendants), so runs measured one after the other never mix figures.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


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


if __name__ == "__main__":  # python bench/measure.py LOG COMMAND...: prints wall time and peak RSS
    result = run(sys.argv[2:], Path(sys.argv[1]))
    print(result)
