"""The training loop shared by every model type: updates, periodic validation, keeping the best weights,
stopping limits, the training log.

A model type supplies a `TrainingTask` (its batches, its update step, its validation) and the loop knows
nothing else about it, nor about terminals: it reports through a `Reporter` (see console.py for the rich
one) and writes JSON records to the model directory's training log.
"""

from __future__ import annotations

import dataclasses
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from seqkit import checkpoint, modeldir
from seqkit.config import Config
from seqkit.errors import ConfigError
from seqkit.metrics import perplexity


class Reporter(Protocol):
    def start(self, info: dict) -> None: ...
    def step(self, stats: dict) -> None: ...
    def validation(self, record: dict) -> None: ...
    def finish(self, summary: dict) -> None: ...


class NullReporter:
    """Reports nothing: for library use and tests."""

    def start(self, info: dict) -> None:
        pass

    def step(self, stats: dict) -> None:
        pass

    def validation(self, record: dict) -> None:
        pass

    def finish(self, summary: dict) -> None:
        pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


class Limits:
    """Stop conditions (0 = none) and how far along the run is, as the largest fraction of any limit."""

    def __init__(self, cfg: Config, steps_per_epoch: int):
        self.max_steps, self.max_epochs = cfg.train.max_steps, cfg.train.max_epochs
        self.max_seconds = cfg.train.max_minutes * 60
        self.steps_per_epoch = steps_per_epoch

    def fraction(self, step: int, elapsed: float) -> float:
        done = [0.0]
        if self.max_steps:
            done.append(step / self.max_steps)
        if self.max_epochs:
            done.append(step / (self.steps_per_epoch * self.max_epochs))
        if self.max_seconds:
            done.append(elapsed / self.max_seconds)
        return min(1.0, max(done))

    def reached(self, step: int, epoch: int, elapsed: float) -> str | None:
        if self.max_steps and step >= self.max_steps:
            return "max_steps"
        if self.max_epochs and epoch >= self.max_epochs:
            return "max_epochs"
        if self.max_seconds and elapsed >= self.max_seconds:
            return "max_minutes"
        return None


@dataclass
class Window:
    """Training statistics accumulated between two log records."""

    nll: float = 0.0
    tokens: int = 0
    correct: int = 0
    grad_norm: float = 0.0
    steps: int = 0
    seconds: float = 0.0  # time spent in training steps (validation excluded)

    def add(self, nll: float, tokens: int, correct: int, grad_norm: float, seconds: float) -> None:
        self.nll += nll
        self.tokens += tokens
        self.correct += correct
        self.grad_norm += grad_norm
        self.steps += 1
        self.seconds += seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)

    def record(self, step: int, epoch: int, lr: float, elapsed: float) -> dict:
        return {
            "kind": "train",
            "step": step,
            "epoch": epoch,
            "loss": self.nll / self.tokens,
            "ppl": perplexity(self.nll, self.tokens),
            "accuracy": self.correct / self.tokens,
            "grad_norm": self.grad_norm / self.steps,
            "lr": lr,
            "target_tokens_per_s": self.tokens_per_s,
            "elapsed_s": elapsed,
        }


@dataclass
class TrainingTask:
    """What the loop needs from a model type."""

    batches: Callable[[int], Sequence[Any]]  # epoch (0-based) -> that epoch's batches, in order
    step: Callable[[Any], tuple[float, int, int]]  # forward + backward on a batch: (nll, tokens, correct)
    validate: Callable[[], dict]  # dev scores, e.g. {"dev_ppl": ..., "dev_bleu": ...}
    best_key: str  # the validation score that decides which weights are kept
    higher_is_better: bool
    # state the task carries between batches (a language model's hidden state), for checkpoints
    state_dict: Callable[[], dict] = dict
    load_state_dict: Callable[[dict], None] = lambda state: None


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM arrived; the current step was finished and a checkpoint saved."""

    def __init__(self, signal_number: int, step: int):
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number, self.step = signal_number, step


class _StopSignals:
    """Turns SIGINT / SIGTERM into a request the loop answers between two steps."""

    def __enter__(self):
        self.received: int | None = None
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, frame) -> None:
        self.received = number

    def __exit__(self, *exc) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def apply_gradients(model, optimizer, clip_norm: float) -> float:
    """Clip the gradient norm, update, clear; returns the norm before clipping."""
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm or math.inf))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm


@dataclass
class Progress:
    """Where a run is: everything besides weights and optimizer that an exact resume needs."""

    step: int = 0
    epoch: int = 0  # completed epochs
    position: int = 0  # batches of the current epoch already trained on
    best: float = -math.inf  # best validation score so far, sign-adjusted so that higher is better
    validated_step: int = -1
    elapsed_s: float = 0.0  # training time of earlier sessions of this run

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def fit(
    cfg: Config,
    output_dir: Path,
    model,
    task: TrainingTask,
    info: dict,
    reporter: Reporter,
    resume: bool = False,
) -> dict:
    """Train `model` until a limit is reached; returns the closing summary record. With `resume`, continue
    exactly from the model directory's latest checkpoint: weights, optimizer, RNG, counters, data position."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.learning_rate)
    progress = Progress()
    if resume:
        saved = checkpoint.restore(checkpoint.latest(output_dir), model, optimizer)
        for group in optimizer.param_groups:  # the learning rate may be changed on resume
            group["lr"] = cfg.train.learning_rate
        progress = Progress(**saved["progress"])
        torch.set_rng_state(saved["torch_rng"])
        task.load_state_dict(saved["task"])
    batches = task.batches(progress.epoch)
    limits = Limits(cfg, len(batches))
    info = {
        "kind": "resume" if resume else "start",
        **info,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps_per_epoch": len(batches),
        "threads": torch.get_num_threads(),
        **(
            {
                "step": progress.step,
                "epoch": progress.epoch + 1,
                "learning_rate": optimizer.param_groups[0]["lr"],
                f"best_{task.best_key}": (1 if task.higher_is_better else -1) * progress.best,
            }
            if resume
            else {}
        ),
    }
    modeldir.append_log(output_dir, info)
    reporter.start(info)

    sign = 1 if task.higher_is_better else -1
    session_start = time.monotonic()
    window = Window()

    def elapsed() -> float:
        return progress.elapsed_s + time.monotonic() - session_start

    def save_checkpoint() -> None:
        state = {
            "progress": {**progress.to_dict(), "elapsed_s": elapsed()},
            "torch_rng": torch.get_rng_state(),
            "task": task.state_dict(),
        }
        checkpoint.save(output_dir, model, optimizer, state, cfg.train.keep_checkpoints)

    def run_validation() -> None:
        record = {"kind": "valid", "step": progress.step, "epoch": progress.epoch + 1, **task.validate()}
        model.train()  # whatever validation did, training goes on in training mode
        progress.validated_step = progress.step
        record["best"] = sign * record[task.best_key] > progress.best
        if record["best"]:
            progress.best = sign * record[task.best_key]
        save_checkpoint()  # first: best weights never exist without a checkpoint to resume from
        if record["best"]:
            modeldir.save_weights(output_dir, model)
        record["elapsed_s"] = elapsed()
        modeldir.append_log(output_dir, record)
        reporter.validation(record)

    def closing_summary(kind: str, reason: str) -> dict:
        return {
            "kind": kind,
            "reason": reason,
            "steps": progress.step,
            "epochs": progress.epoch,
            f"best_{task.best_key}": sign * progress.best,
            "elapsed_s": elapsed(),
        }

    stop = limits.reached(progress.step, progress.epoch, elapsed())
    with _StopSignals() as signals:
        while stop is None:
            while progress.position < len(batches) and stop is None:
                step_start = time.monotonic()
                nll, tokens, correct = task.step(batches[progress.position])
                grad_norm = apply_gradients(model, optimizer, cfg.train.clip_norm)
                progress.step += 1
                progress.position += 1
                window.add(nll, tokens, correct, grad_norm, time.monotonic() - step_start)
                reporter.step(
                    {
                        "step": progress.step,
                        "epoch": progress.epoch + 1,
                        "loss": nll / max(1, tokens),
                        "target_tokens_per_s": window.tokens_per_s,
                        "elapsed_s": elapsed(),
                        "fraction": limits.fraction(progress.step, elapsed()),
                    }
                )
                if progress.step % cfg.train.log_every == 0:
                    lr = optimizer.param_groups[0]["lr"]
                    modeldir.append_log(
                        output_dir, window.record(progress.step, progress.epoch + 1, lr, elapsed())
                    )
                    window = Window()
                if progress.step % cfg.train.valid_every == 0:
                    run_validation()
                if signals.received is not None:
                    save_checkpoint()
                    summary = closing_summary("interrupted", signal.Signals(signals.received).name)
                    modeldir.append_log(output_dir, summary)
                    reporter.finish(summary)
                    raise TrainingInterrupted(signals.received, progress.step)
                stop = limits.reached(progress.step, progress.epoch, elapsed())
            if progress.position >= len(batches):
                progress.epoch += 1
                progress.position = 0
                batches = task.batches(progress.epoch)
                stop = stop or limits.reached(progress.step, progress.epoch, elapsed())
        if progress.validated_step != progress.step:
            run_validation()  # the last steps count too
    summary = closing_summary("end", stop)
    modeldir.append_log(output_dir, summary)
    reporter.finish(summary)
    return summary


def start_run(cfg: Config) -> None:
    """Checks, seeds and threads: before anything is written or anything random happens."""
    if not (cfg.train.max_steps or cfg.train.max_epochs or cfg.train.max_minutes):
        raise ConfigError("no stopping limit: set train.max_steps, train.max_epochs or train.max_minutes")
    seed_everything(cfg.train.seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)


def seeded_rng(cfg: Config, epoch: int) -> random.Random:
    """The data-order generator of one epoch: a function of the seed and the epoch only."""
    return random.Random(f"{cfg.train.seed}-{epoch}")
