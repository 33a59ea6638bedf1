"""Where a training run is and when it stops: counters and the best score (one owner: `Progress`), the
state a checkpoint keeps (`TrainingState`), stopping limits, the statistics of one log interval, and stop
requests that arrive as signals."""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from seqkit.config import TrainConfig
from seqkit.scoring.likelihood import perplexity
from seqkit.training.log import TrainRecord


@dataclass
class Progress:
    """Where a run is: everything besides weights and optimizer that an exact resume needs."""

    step: int = 0
    epoch: int = 0  # completed epochs
    position: int = 0  # batches of the current epoch already trained on
    best: float = -math.inf  # best validation score so far, sign-adjusted so that higher is better
    best_tiebreak: float = -math.inf  # at that validation: minus the dev perplexity, for ties of BLEU/chrF
    validated_step: int = -1
    bad_validations: int = 0  # validations in a row without improvement (early stopping, plateau)
    best_step: int = -1  # the step whose weights are model.safetensors
    best_signature: str = ""  # sacrebleu signature of the best score, if it has one
    elapsed_s: float = 0.0  # training time of earlier sessions of this run
    target_tokens: int = 0  # target tokens (EOS included, padding not) trained on, over all sessions
    step_s: float = 0.0  # time spent in training steps over all sessions (validation and set-up excluded)
    # batches of the run's first epoch: the length of an epoch that a budget of max_epochs counts in. Each
    # epoch's bucketing makes its own count (457, then 456), so a session that resumed in another epoch
    # would otherwise decay a schedule along another line than the uninterrupted run (0: not known yet)
    steps_per_epoch: int = 0

    def record_validation(self, score: float, tiebreak: float = -math.inf) -> bool:
        """Count a validation whose sign-adjusted score is `score`; True when it is a new best. A tie (dev
        BLEU is 0.0 at every early validation of a short run) goes to the higher `tiebreak`."""
        improved = score > self.best or (score == self.best and tiebreak > self.best_tiebreak)
        if improved:
            self.best, self.best_tiebreak = score, tiebreak
        self.bad_validations = 0 if improved else self.bad_validations + 1
        self.validated_step = self.step
        return improved


@dataclass
class TrainingState:
    """What a checkpoint holds besides weights and optimizer: written by `to_dict` into state.pt (tensors,
    numbers and strings only, for torch.load(weights_only=True)) and read back by `from_dict`."""

    progress: Progress = field(default_factory=Progress)
    plateau_scale: float = 1.0  # the learning-rate schedule's decays so far
    torch_rng: dict[str, Any] = field(default_factory=dict)  # devices.rng_state()
    loss_scaler: dict[str, Any] = field(default_factory=dict)  # fp16's GradScaler; {} otherwise
    task: dict[str, Any] = field(default_factory=dict)  # what the model type carries between batches
    # the log interval and the gradient statistics begun before the checkpoint: a resumed run's next
    # records cover the steps before it too, as the uninterrupted run's do ({}: none begun)
    window: dict[str, Any] = field(default_factory=dict)  # Window's fields
    gradients: dict[str, Any] = field(default_factory=dict)  # GradientMonitor.state_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            "progress": dataclasses.asdict(self.progress),
            "schedule": {"plateau_scale": self.plateau_scale},
            "torch_rng": self.torch_rng,
            "loss_scaler": self.loss_scaler,
            "task": self.task,
            "window": self.window,
            "gradients": self.gradients,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingState:
        """Also reads checkpoints of seqkit 0.1, whose schedule kept a best score of its own (ignored)."""
        return cls(
            progress=Progress(**values["progress"]),
            plateau_scale=values["schedule"]["plateau_scale"],
            torch_rng=values["torch_rng"],
            loss_scaler=values.get("loss_scaler", {}),
            task=values.get("task", {}),
            window=values.get("window", {}),
            gradients=values.get("gradients", {}),
        )


class Limits:
    """Stop conditions (0 = none) and how far along the run is, as the largest fraction of any limit."""

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int):
        self.max_steps, self.max_epochs = cfg.max_steps, cfg.max_epochs
        self.max_seconds = cfg.max_minutes * 60
        self.patience = cfg.patience
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

    def reached(self, progress: Progress, elapsed: float) -> str | None:
        if self.patience and progress.bad_validations >= self.patience:
            return "early_stopping"
        if self.max_steps and progress.step >= self.max_steps:
            return "max_steps"
        if self.max_epochs and progress.epoch >= self.max_epochs:
            return "max_epochs"
        if self.max_seconds and elapsed >= self.max_seconds:
            return "max_minutes"
        return None


@dataclass
class Window:
    """Training statistics accumulated between two log records."""

    loss: float = 0.0  # summed training objective (label-smoothed, if asked)
    nll: float = 0.0  # summed negative log-likelihood
    tokens: int = 0
    correct: int = 0
    grad_norm: float = 0.0
    steps: int = 0
    seconds: float = 0.0  # time spent in training steps (validation excluded)

    def add(
        self, loss: float, nll: float, tokens: int, correct: int, grad_norm: float, seconds: float
    ) -> None:
        self.loss += loss
        self.nll += nll
        self.tokens += tokens
        self.correct += correct
        self.grad_norm += grad_norm
        self.steps += 1
        self.seconds += seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)

    def record(self, step: int, epoch: int, lr: float, elapsed: float) -> TrainRecord:
        return TrainRecord(
            step=step,
            epoch=epoch,
            loss=self.loss / self.tokens,
            ppl=perplexity(self.nll, self.tokens),
            accuracy=self.correct / self.tokens,
            grad_norm=self.grad_norm / self.steps,
            lr=lr,
            target_tokens_per_s=self.tokens_per_s,
            tokens=self.tokens,
            elapsed_s=elapsed,
        )


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Turns SIGINT, SIGTERM and SIGHUP (a terminal closed, an ssh session dropped) into a request the loop
    answers between two steps: a checkpoint of where it is, as for Ctrl-C. One the process ignores
    (`nohup`) is left ignored."""

    def __enter__(self):
        self.received: int | None = None
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                # a signal the process was started ignoring stays ignored: `nohup` (SIGHUP) or a shell's
                # background job (SIGINT) asked for a training that a closed terminal does not stop
                if signal.getsignal(number) != signal.SIG_IGN:
                    self.previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, frame) -> None:
        self.received = number

    def __exit__(self, *exc) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
