"""Shared fixtures: toy corpora on disk, and the trained models that many tests reuse, trained once per
session in a background process (tests/background.py) with the suite's longest trainings, while the
tests that need no trained model run. Plain helpers are in tests/helpers.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests import background
from tests.helpers import write_text, write_toy

torch.set_num_threads(1)  # tiny models: threads only add noise
# the commands the tests start write as they would for a user: a CI machine's PYTHONUNBUFFERED made
# stdout unbuffered, and a test of the per-line flush of `translate` could not fail there
os.environ.pop("PYTHONUNBUFFERED", None)


# The models many tests share, trained once per session in the background process (tests/background.py)
SESSION_MODELS = {
    # a GRU encoder-decoder with Bahdanau attention on the toy reverse task (600 steps: dev BLEU 100; with
    # the output layer over the target pieces only, seeds 7 / 1 / 2 reach 99.1 / 100 / 100)
    "reverse_model": {
        "kind": "seq2seq",
        "task": "reverse",
        "sections": {"train": {"max_steps": 600, "valid_every": 300, "seed": 1}},
    },
    # a two-layer character LSTM with tied embeddings that has memorised helpers.LINES, the language model
    # of the generation, scoring, inspection and info tests. 400 steps at this rate reproduce every line
    # exactly from any 4-character prompt for seeds 3 to 9 (64 units, or the default rate, left a character
    # wrong for some seeds)
    "char_lm": {
        "kind": "lm",
        "sections": {
            "model": {
                "cell": "lstm",
                "decoder_layers": 2,
                "embedding_size": 96,
                "decoder_hidden_size": 96,
                "tie_embeddings": True,
            },
            "train": {"learning_rate": 0.002},
        },
    },
}


@pytest.fixture(scope="session")
def reverse_data(tmp_path_factory) -> str:
    """The toy reverse corpus (the one reverse_model was trained on: write_toy is deterministic)."""
    return write_toy(tmp_path_factory.mktemp("reverse"), "reverse")


@pytest.fixture(scope="session")
def reverse_model() -> Path:
    """SESSION_MODELS["reverse_model"]'s model directory."""
    return _background().wait("reverse_model").model_dir


@pytest.fixture(scope="session")
def lm_data(tmp_path_factory) -> Path:
    """helpers.LINES as a language model's corpus (the one char_lm was trained on)."""
    return write_text(tmp_path_factory.mktemp("lm-data"))


@pytest.fixture(scope="session")
def char_lm() -> Path:
    """SESSION_MODELS["char_lm"]'s model directory."""
    return _background().wait("char_lm").model_dir


# --- trainings in a background process -------------------------------------------------------------------


# the signals the suite sends as a terminal sends them: a suite started under nohup, or in the background
# of a script (`... &`: SIGINT ignored), passed the ignored signals down to every process it starts, and
# seqkit keeps a signal it inherits ignored (on purpose: nohup), so its signal tests failed there
_TERMINAL_HANDLERS = {signal.SIGINT: signal.default_int_handler, signal.SIGHUP: signal.SIG_DFL,
                      signal.SIGTERM: signal.SIG_DFL}  # fmt: skip


def pytest_configure(config) -> None:
    for number, handler in _TERMINAL_HANDLERS.items():
        if signal.getsignal(number) == signal.SIG_IGN:
            signal.signal(number, handler)
    config.addinivalue_line(
        "markers",
        "trained_in_background(task, **sections): the test's model (helpers.toy_config on a toy corpus "
        'of `task`, or helpers.lm_config when `task` is "lm"; the config sections overriding) is trained '
        "in the background process; the `background_model` fixture waits for it",
    )
    config.addinivalue_line(
        "markers",
        "prepared_in_background(name, uses=()): name(directory), a function of the test's module "
        "(trainings or commands the test then checks), runs in the background process, given the session "
        "models named in `uses` as keyword arguments (their directories, once trained); the "
        "`background_model` fixture waits for it (model_dir: the directory, data_dir: what it returned)",
    )


@dataclass(frozen=True)
class BackgroundModel:
    model_dir: Path
    data_dir: str  # the corpus it was trained on


class _Background:
    """The background process, and where its jobs write, by name (a session model's, or the node id of
    the test that asked). With SEQKIT_TESTS_BACKGROUND=0 in the environment there is no such process:
    each job is trained in this one when a test first needs it."""

    def __init__(self, jobs: dict[str, dict]):
        self.root = Path(tempfile.mkdtemp(prefix="seqkit-background-"))
        self.jobs = jobs
        self.outputs = {name: self.root / f"model-{number}" for number, name in enumerate(jobs)}
        for job in jobs.values():  # a prepared job's session models, by their directories
            if "uses" in job:
                job["uses"] = {model: str(self.outputs[model]) for model in job["uses"]}
        self.process = None
        if os.environ.get("SEQKIT_TESTS_BACKGROUND", "1") == "0":
            return
        listed = [{"name": name, "output": str(self.outputs[name]), **job} for name, job in jobs.items()]
        (self.root / "jobs.json").write_text(json.dumps(listed))
        with open(self.root / "log.txt", "wb") as log:  # the child keeps its own copy of the file
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.background", str(self.root / "jobs.json")],
                cwd=Path(__file__).resolve().parent.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait(self, name: str, timeout: float = 1200) -> BackgroundModel:
        """The job's result: waited for when the background process has started it, done here and now
        when it has not (the background takes jobs from the front of its list; the tests that need them
        run from the back, so that neither process idles while the other has work left)."""
        output = self.outputs[name]
        done, failed = output.with_name(output.name + ".done"), output.with_name(output.name + ".failed")
        if not done.exists() and background.claim(output):
            for model in self.jobs[name].get("uses", {}):  # trained here too if nothing has started them
                self.wait(model, timeout)
            done.write_text(background.train(self.jobs[name], output))  # here and now
        deadline = time.monotonic() + timeout
        while not (done.exists() or failed.exists()):
            if self.process.poll() is not None and not (done.exists() or failed.exists()):
                log = (self.root / "log.txt").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the background trainings stopped ({self.process.returncode}):\n{log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no model from the background trainings after {timeout} s")
            time.sleep(0.1)
        if failed.exists():
            raise RuntimeError(f"the background training of {name} failed:\n{failed.read_text()}")
        return BackgroundModel(output, done.read_text())

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


_BACKGROUND: _Background | None = None


def _background() -> _Background:
    assert _BACKGROUND is not None, "the background trainings start at collection (conftest.py)"
    return _BACKGROUND


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what will not run
def pytest_collection_modifyitems(session, config, items) -> None:
    """Starts the background trainings the selected tests need: the session models they use, then the
    models of the tests marked `trained_in_background`. The tests run in an order that gives the
    trainings time: those that need no trained model first, then those of the session models, then the
    marked ones (each group in its usual order)."""
    global _BACKGROUND
    if config.option.collectonly:
        return
    needed = {name for item in items for name in getattr(item, "fixturenames", ()) if name in SESSION_MODELS}
    marked = {}
    for item in items:
        if mark := item.get_closest_marker("trained_in_background"):
            kind = "lm" if mark.args[0] == "lm" else "seq2seq"
            marked[item.nodeid] = {"kind": kind, "task": mark.args[0], "sections": mark.kwargs}
        elif mark := item.get_closest_marker("prepared_in_background"):
            function = f"{item.module.__name__}:{mark.args[0]}"
            uses = mark.kwargs.get("uses", ())
            marked[item.nodeid] = {"kind": "prepare", "function": function, "uses": list(uses)}
            needed.update(uses)
    jobs = {name: job for name, job in SESSION_MODELS.items() if name in needed} | marked
    if not jobs:
        return

    last = list(marked)

    def group(item) -> tuple[int, int]:
        if item.nodeid in marked:
            return 2, -last.index(item.nodeid)  # from the last job back: see _Background.wait
        return (1 if SESSION_MODELS.keys() & set(getattr(item, "fixturenames", ())) else 0), 0

    items.sort(key=group)  # stable: groups 0 and 1 keep their order
    _BACKGROUND = _Background(jobs)


def pytest_terminal_summary(terminalreporter) -> None:
    """The background process's timeline (its jobs' times), to see which of the two processes the suite
    waits on."""
    if _BACKGROUND is not None and _BACKGROUND.process is not None:
        log = (_BACKGROUND.root / "log.txt").read_text(errors="replace").splitlines()
        terminalreporter.write_line(
            "background trainings: " + "; ".join(line for line in log if " s (at " in line)
        )


def pytest_unconfigure(config) -> None:
    if _BACKGROUND is not None:
        _BACKGROUND.stop()


@pytest.fixture
def background_model(request) -> BackgroundModel:
    """The model of this test's `trained_in_background` mark, once the background process trained it."""
    return _background().wait(request.node.nodeid)
