"""The suite's trainings, run in a process of their own while the tests that need no trained model run,
so that they use the machine's second core (the tests train with one thread each). conftest.py starts
this module once per session for the session models and for the tests marked `trained_in_background`,
and waits for a job's model directory when a fixture needs it.

    python -m tests.background JOBS.json

JOBS.json is a list of jobs, done in turn into their "output" directory: {"kind": "seq2seq", "task",
"sections"} is helpers.toy_config on a toy corpus of `task` (helpers.write_toy), {"kind": "lm",
"sections"} helpers.lm_config on helpers.write_text's lines, the config sections overriding;
{"kind": "prepare", "function": "module:name"} calls a test module's function with the output directory
(a test's longer preparation: several trainings, say). Each job ends with `output`.done (holding the
corpus directory, or what the function returned) or `output`.failed (the traceback)."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path


def train(job: dict, output: Path) -> str:
    """Trains one job into `output`; returns the directory of the corpus it was trained on."""
    from seqkit.training import lm as train_lm
    from seqkit.training import seq2seq as train_seq2seq
    from tests import helpers

    if job["kind"] == "prepare":
        module, name = job["function"].split(":")
        used = {model: wait_for(Path(path)) for model, path in job.get("uses", {}).items()}
        output.mkdir(parents=True)
        return str(getattr(importlib.import_module(module), name)(output, **used) or "")
    data_dir = output.with_name(f"{output.name}-data")
    if job["kind"] == "lm":
        helpers.write_text(data_dir)
        train_lm.train(helpers.lm_config(data_dir, **job["sections"]), output)
    else:
        helpers.write_toy(data_dir, job["task"])
        train_seq2seq.train(helpers.toy_config(str(data_dir), **job["sections"]), output)
    return str(data_dir)


def wait_for(output: Path, timeout: float = 1200) -> Path:
    """`output` once its job is done (a session model that a prepared job uses: the jobs before it in this
    process's list, or the tests' process, which may have claimed it, train it)."""
    deadline = time.monotonic() + timeout
    while not output.with_name(output.name + ".done").exists():
        if output.with_name(output.name + ".failed").exists() or time.monotonic() > deadline:
            raise RuntimeError(f"the model {output} that this job uses was not trained")
        time.sleep(0.1)
    return output


def claim(output: Path) -> bool:
    """Whether this process takes the job of `output` (the first to ask does; the other then waits)."""
    try:
        os.close(os.open(output.with_name(output.name + ".claimed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def main(jobs_file: str) -> None:
    import torch

    torch.set_num_threads(1)  # as in the tests' own process: one core for this one, one for the tests
    started = time.monotonic()
    for job in json.loads(Path(jobs_file).read_text()):
        output = Path(job["output"])
        if not claim(output):  # the tests' process reached it first and does it itself
            continue
        job_started = time.monotonic()
        try:
            data_dir = train(job, output)
        except Exception:
            output.with_name(output.name + ".failed").write_text(traceback.format_exc())
        else:
            output.with_name(output.name + ".done").write_text(data_dir)
        # the timeline, for conftest's summary line: when each job ended, and how long it took
        print(
            f"{job.get('name', output.name)} {time.monotonic() - job_started:.1f} s (at {time.monotonic() - started:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1])
