"""`make bench-wait`: OpenMP's wait policy on an idle and on a busy machine (issue 16, section 2).

A training step of the demo model's size (GRU, Bahdanau, embeddings 128, decoder 256, a 4,000-piece
vocabulary; 64 sentences of 30 pieces, Adam), 2 threads, timed in a process of its own under
OMP_WAIT_POLICY=ACTIVE (threads spin while they wait: libgomp's behaviour with torch's defaults here)
and PASSIVE (they sleep), unset (libgomp's default: spin a while, then sleep) and shorter spins
(GOMP_SPINCOUNT). "Busy" runs the same steps in a second process with the same policy, as two
seqkit commands sharing a laptop's cores do; the figure is the measured process's.

    python bench/wait_policy.py        # prints a table, writes bench/results-wait.{json,md}
    python bench/wait_policy.py unset  # only the settings whose names hold "unset": bench/results-wait-unset.*
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STEPS, WARMUP = 12, 3


def steps(count: int | None) -> list[float]:
    """Training steps of the demo model's size; `count` None: forever (the competing process)."""
    import torch

    from seqkit.config import ModelConfig
    from seqkit.models.seq2seq import Seq2Seq

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    cfg = ModelConfig(embedding_size=128, encoder_hidden_size=128, decoder_hidden_size=256, dropout=0.1)
    model = Seq2Seq(cfg, 4000, 4000)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    src = torch.randint(4, 4000, (64, 30))
    tgt = torch.randint(4, 4000, (64, 31))
    lengths = torch.full((64,), 30)
    times: list[float] = []
    while count is None or len(times) < count:
        start = time.perf_counter()
        loss, _, _ = model(src, lengths, tgt[:, :-1], tgt[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times


SETTINGS = {  # name -> the environment it adds (libgomp reads both variables when torch loads it)
    "unset (libgomp: spin 300,000 times, then sleep)": {},
    "OMP_WAIT_POLICY=ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=30000": {"GOMP_SPINCOUNT": "30000"},
    "GOMP_SPINCOUNT=3000": {"GOMP_SPINCOUNT": "3000"},
    "unset, 1 thread a process": {"BENCH_THREADS": "1"},
}


def measure(setting: dict[str, str], busy: bool) -> dict:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "BENCH_THREADS")
    }
    env = {**clean, **setting}
    rival = None
    if busy:
        rival = subprocess.Popen([sys.executable, __file__, "--rival"], env=env)
        time.sleep(8)  # its imports done, its steps running
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--steps"], env=env, check=True, capture_output=True, text=True
        )
    finally:
        if rival is not None:
            rival.kill()
            rival.wait()
    times = json.loads(out.stdout)[WARMUP:]
    return {"median_step_s": round(statistics.median(times), 3), "min_step_s": round(min(times), 3),
            "max_step_s": round(max(times), 3)}  # fmt: skip


def main() -> None:
    if sys.argv[1:] == ["--steps"]:
        print(json.dumps(steps(STEPS + WARMUP)))
        return
    if sys.argv[1:] == ["--rival"]:
        steps(None)
        return
    results = {}
    only = [a for a in sys.argv[1:] if not a.startswith("--")]  # names to measure (default: all)
    # a run of some settings writes bench/results-wait-SETTINGS.*, not over the whole table
    out = REPO / "bench" / ("results-wait" + "".join(f"-{o}" for o in only))
    for busy in (False, True):
        for name, setting in SETTINGS.items():
            if only and not any(o in name for o in only):
                continue
            key = f"{name}, {'busy' if busy else 'idle'}"
            results[key] = measure(setting, busy)
            print(key, results[key], file=sys.stderr)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    rows = ["| setting, machine | median step s | min | max |", "| --- | ---: | ---: | ---: |"]
    rows += [
        f"| {k} | {v['median_step_s']} | {v['min_step_s']} | {v['max_step_s']} |" for k, v in results.items()
    ]
    out.with_suffix(".md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
