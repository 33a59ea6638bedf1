"""The training loop shared by every model type: updates, periodic validation, keeping the best weights,
stopping limits, the training log.

A model type supplies a `TrainingTask` (its batches, its update step, its validation) and the loop knows
nothing else about it, nor about terminals: it reports through a `Reporter` (see console.py for the rich
one) and writes JSON records to the model directory's training log.
"""

from __future__ import annotations

import math
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from seqkit import checkpoint, devices, distributed, modeldir
from seqkit.config import Config
from seqkit.distributed import SINGLE, World
from seqkit.errors import ConfigError, TrainingError
from seqkit.gradients import GradientMonitor
from seqkit.progress import Limits, Progress, StopSignals, Window
from seqkit.schedules import LearningRateSchedule


class Reporter(Protocol):
    def start(self, info: dict) -> None: ...
    def step(self, stats: dict) -> None: ...
    def validation(self, record: dict) -> None: ...
    def finish(self, summary: dict) -> None: ...
    def warning(self, message: str) -> None: ...


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

    def warning(self, message: str) -> None:
        pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainingTask:
    """What the loop needs from a model type."""

    batches: Callable[[int], Sequence[Any]]  # epoch (0-based) -> that epoch's batches, in order
    # the forward pass on a batch: (objective to minimise, summed nll, target tokens, argmax-correct tokens)
    step: Callable[[Any], tuple[torch.Tensor, float, int, int]]
    validate: Callable[[], dict]  # dev scores, e.g. {"dev_ppl": ..., "dev_bleu": ..., "bleu_signature": ...}
    default_metric: str  # what train.best_metric = "auto" means for this task: bleu or ppl
    # state the task carries between batches (a language model's hidden state), for checkpoints
    state_dict: Callable[[], dict] = dict
    load_state_dict: Callable[[dict], None] = lambda state: None


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM arrived; the current step was finished and a checkpoint saved."""

    def __init__(self, signal_number: int, step: int):
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number, self.step = signal_number, step


# train.best_metric -> (validation record key, whether higher is better)
METRICS = {"bleu": ("dev_bleu", True), "chrf": ("dev_chrf", True), "ppl": ("dev_ppl", False)}
MAX_NONFINITE_STEPS = 5  # consecutive skipped updates before training gives up


class _Trainer:
    """One training session of a run: set up (or restored from a checkpoint), then `run` until a limit."""

    def __init__(
        self,
        cfg: Config,
        output_dir: Path,
        model,
        task: TrainingTask,
        reporter: Reporter,
        resume: bool,
        world: World,
    ):
        self.cfg, self.output_dir, self.model, self.task, self.world = cfg, output_dir, model, task, world
        self.reporter = reporter if world.is_main else NullReporter()  # one process speaks for all
        metric = cfg.train.best_metric if cfg.train.best_metric != "auto" else task.default_metric
        self.metric = metric
        self.best_key, higher_is_better = METRICS[metric]
        self.sign = 1 if higher_is_better else -1  # scores are compared sign-adjusted: higher is better
        model.train()
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.learning_rate)
        self.schedule = LearningRateSchedule(cfg.train)
        self.gradients = GradientMonitor(model, cfg.train.clip_norm)
        self.precision = devices.Precision(cfg.train.precision, world.device)
        self.progress = Progress()
        if resume:
            saved = checkpoint.restore(checkpoint.latest(output_dir), model, self.optimizer)
            self.progress = Progress(**saved["progress"])
            self.schedule.load_state_dict(saved["schedule"])
            devices.set_rng_state(saved["torch_rng"])
            self.precision.load_state_dict(saved.get("loss_scaler", {}))
            task.load_state_dict(saved["task"])
            if self.progress.best_step == self.progress.step and world.is_main:
                # killed between this checkpoint and the best weights written after it: write them now
                modeldir.save_weights(output_dir, model)
        self.nonfinite_steps = 0
        self.session_start = time.monotonic()
        self.window = Window()

    def elapsed(self) -> float:
        return self.progress.elapsed_s + time.monotonic() - self.session_start

    def save_checkpoint(self) -> None:
        state = {
            "progress": {**self.progress.to_dict(), "elapsed_s": self.elapsed()},
            "schedule": self.schedule.state_dict(),
            "torch_rng": devices.rng_state(),
            "loss_scaler": self.precision.state_dict(),
            "task": self.task.state_dict(),
        }
        if self.world.is_main:
            checkpoint.save(
                self.output_dir, self.model, self.optimizer, state, self.cfg.train.keep_checkpoints
            )

    def log(self, record: dict) -> None:
        if self.world.is_main:
            modeldir.append_log(self.output_dir, record)

    def warn(self, message: str) -> None:
        self.log({"kind": "warning", "step": self.progress.step, "message": message})
        self.reporter.warning(message)

    def train_step(self, batch) -> None:
        """One update: learning rate, forward and backward, clipping, and the skip of a non-finite step."""
        progress = self.progress
        lr = self.schedule.at(progress.step + 1)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        step_start = time.monotonic()
        scaler = self.precision.scaler  # fp16 only; otherwise each of its calls passes values through
        with self.precision.autocast():
            objective, nll, tokens, correct = self.task.step(batch)
        scaler.scale(objective).backward()
        scaler.unscale_(self.optimizer)  # clipping and the logged norms see the true gradients
        if self.world.size > 1:  # the figures of the whole batch, not of this process's share
            nll, tokens, correct = self.world.sum([nll, tokens, correct])
            tokens, correct = int(tokens), int(correct)
        grad_norm, clipped = self.gradients.clip()
        progress.step += 1
        progress.position += 1
        if not (math.isfinite(nll) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            if self.precision.scaling and math.isfinite(nll) and scaler.get_scale() >= 1.0:
                # fp16 gradients overflowed at this loss scale: a routine event, the scaler halves the scale
                scaler.update()
                self.log(
                    {
                        "kind": "grad",
                        "step": progress.step,
                        "norm": None,
                        "clipped": False,
                        "overflow": True,
                        "loss_scale": scaler.get_scale(),
                    }
                )
                return
            scaler.update()
            self.nonfinite_steps += 1
            self.warn(f"non-finite loss or gradient at step {progress.step}: update skipped")
            if self.nonfinite_steps >= MAX_NONFINITE_STEPS:
                raise TrainingError(
                    f"loss or gradients non-finite for {MAX_NONFINITE_STEPS} steps in a row (step {progress.step}); "
                    "lower train.learning_rate or train.clip_norm, or resume from the last checkpoint"
                )
            return
        self.nonfinite_steps = 0
        self.optimizer.step()
        scaler.update()  # fp16: the scale grows again after a run of finite steps
        self.optimizer.zero_grad(set_to_none=True)
        step_seconds = time.monotonic() - step_start
        self.window.add(nll, tokens, correct, grad_norm, step_seconds)
        progress.target_tokens += tokens
        progress.step_s += step_seconds
        self.log({"kind": "grad", "step": progress.step, "norm": grad_norm, "clipped": clipped})
        self.reporter.step(
            {
                "step": progress.step,
                "epoch": progress.epoch + 1,
                "loss": nll / max(1, tokens),
                "target_tokens_per_s": self.window.tokens_per_s,
                "elapsed_s": self.elapsed(),
                "fraction": self.limits.fraction(progress.step, self.elapsed()),
            }
        )
        if progress.step % self.cfg.train.log_every == 0:
            self.log(self.window.record(progress.step, progress.epoch + 1, lr, self.elapsed()))
            self.window = Window()

    def validate(self) -> None:
        progress = self.progress
        record = None
        if self.world.is_main:
            start = time.monotonic()
            scores = self.task.validate()
            record = {
                "kind": "valid",
                "step": progress.step,
                "epoch": progress.epoch + 1,
                **scores,
                "validation_s": time.monotonic() - start,
            }
            self.model.train()  # whatever validation did, training goes on in training mode
        record = self.world.from_main(record)  # every process keeps the same best score and schedule
        progress.validated_step = progress.step
        score = self.sign * record[self.best_key]
        record["best"] = score > progress.best
        progress.best = max(progress.best, score)
        progress.bad_validations = 0 if record["best"] else progress.bad_validations + 1
        self.schedule.after_validation(score)
        gradients, warnings = self.gradients.summary()
        record.update(gradients)
        if record["best"]:
            progress.best_step = progress.step
            progress.best_signature = record.get(f"{self.metric}_signature", "")
        self.save_checkpoint()  # first: best weights never exist without a checkpoint to resume from
        if record["best"] and self.world.is_main:
            modeldir.save_weights(self.output_dir, self.model)
        record["elapsed_s"] = self.elapsed()
        self.log(record)
        self.reporter.validation(record)
        for message in warnings:
            self.warn(message)

    def summary(self, kind: str, reason: str) -> dict:
        return {
            "kind": kind,
            "reason": reason,
            "steps": self.progress.step,
            "epochs": self.progress.epoch,
            f"best_{self.best_key}": self.sign * self.progress.best,
            **({"best_signature": self.progress.best_signature} if self.progress.best_signature else {}),
            "elapsed_s": self.elapsed(),
            "target_tokens": self.progress.target_tokens,
            "step_s": self.progress.step_s,
        }

    def reached(self) -> str | None:
        patience = self.cfg.train.patience
        if patience and self.progress.bad_validations >= patience:
            return "early_stopping"
        # rank 0 decides for every process: their clocks differ
        return self.world.from_main(
            self.limits.reached(self.progress.step, self.progress.epoch, self.elapsed())
        )

    def run(self, info: dict, resume: bool) -> dict:
        progress = self.progress
        batches = self.task.batches(progress.epoch)
        self.limits = Limits(self.cfg, len(batches))
        restored = {
            "step": progress.step,
            "epoch": progress.epoch + 1,
            "learning_rate": self.schedule.at(progress.step + 1),
            f"best_{self.best_key}": self.sign * progress.best,
        }
        info = {
            "kind": "resume" if resume else "start",
            **info,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "steps_per_epoch": len(batches),
            "threads": torch.get_num_threads(),
            "device": str(self.world.device),
            "precision": self.cfg.train.precision,
            "processes": self.world.size,
            **(restored if resume else {}),
        }
        self.log(info)
        self.reporter.start(info)
        stop = self.reached()
        with StopSignals() as signals:
            while stop is None:
                while progress.position < len(batches) and stop is None:
                    self.train_step(batches[progress.position])
                    if progress.step % self.cfg.train.valid_every == 0:
                        self.validate()
                    received = self.world.from_main(signals.received)
                    if received is not None:
                        self.save_checkpoint()
                        summary = self.summary("interrupted", signal.Signals(received).name)
                        self.log(summary)
                        self.reporter.finish(summary)
                        raise TrainingInterrupted(received, progress.step)
                    stop = self.reached()
                if progress.position >= len(batches):
                    progress.epoch += 1
                    progress.position = 0
                    batches = self.task.batches(progress.epoch)
                    stop = stop or self.reached()
            if progress.validated_step != progress.step:
                self.validate()  # the last steps count too
        summary = self.summary("end", stop)
        self.log(summary)
        self.reporter.finish(summary)
        return summary


def fit(
    cfg: Config,
    output_dir: Path,
    model,
    task: TrainingTask,
    info: dict,
    reporter: Reporter,
    resume: bool = False,
    world: World = SINGLE,
) -> dict:
    """Train `model` until a limit is reached; returns the closing summary record. With `resume`, continue
    exactly from the model directory's latest checkpoint: weights, optimizer, schedule, RNG, counters and
    the position in the data order."""
    return _Trainer(cfg, output_dir, model, task, reporter, resume, world).run(info, resume)


def start_run(cfg: Config) -> World:
    """Checks, seeds, threads, the device and the process group: before anything is written or anything
    random happens."""
    if not (cfg.train.max_steps or cfg.train.max_epochs or cfg.train.max_minutes):
        raise ConfigError("no stopping limit: set train.max_steps, train.max_epochs or train.max_minutes")
    device = devices.resolve(cfg.train.device, distributed.local_rank(), option="train.device =")
    devices.Precision(cfg.train.precision, device)  # an unsupported precision fails here, not after set-up
    seed_everything(cfg.train.seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    return distributed.join(device)


def seeded_rng(cfg: Config, epoch: int) -> random.Random:
    """The data-order generator of one epoch: a function of the seed and the epoch only."""
    return random.Random(f"{cfg.train.seed}-{epoch}")
