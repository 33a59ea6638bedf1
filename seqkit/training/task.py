"""What a model type hands the training loop (`TrainingTask`: its batches, its update step, its validation,
and what each returns) and how the loop reports (`Reporter`: console.py has the rich one). The loop knows
nothing else about a model type, nor about terminals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from seqkit.training.log import EndRecord, StartRecord, TrainRecord, ValidRecord


@dataclass(frozen=True)
class StepReport:
    """What a reporter hears after each update (the log gets a TrainRecord every log_every steps)."""

    step: int
    epoch: int  # 1-based
    loss: float  # the objective per target token of this step
    target_tokens_per_s: float  # over the current log interval
    elapsed_s: float
    fraction: float  # how far along the run is: the largest fraction of any limit


class Reporter(Protocol):
    def start(self, record: StartRecord) -> None: ...
    def tokenizing(self, pairs: int) -> None: ...  # how many training pairs are tokenized so far
    def step(self, report: StepReport) -> None: ...
    def interval(self, record: TrainRecord, fraction: float) -> None: ...  # every log_every steps
    def validation(self, record: ValidRecord) -> None: ...
    def finish(self, record: EndRecord) -> None: ...
    def warning(self, message: str) -> None: ...


class NullReporter:
    """Reports nothing: for library use and tests."""

    def start(self, record: StartRecord) -> None:
        pass

    def tokenizing(self, pairs: int) -> None:
        pass

    def step(self, report: StepReport) -> None:
        pass

    def interval(self, record: TrainRecord, fraction: float) -> None:
        pass

    def validation(self, record: ValidRecord) -> None:
        pass

    def finish(self, record: EndRecord) -> None:
        pass

    def warning(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class StepLoss:
    """One forward pass of a model type's `step`."""

    objective: torch.Tensor  # what backward runs on (scaled to the whole batch's mean)
    loss: float  # summed training objective of this process's share (label-smoothed, if asked)
    nll: float  # summed negative log-likelihood of the same tokens (never smoothed)
    tokens: int  # target tokens of this process's share
    correct: int  # of them, predicted by the argmax

    def weighted(self, weight: float) -> StepLoss:
        """This pass as a share of weight `weight` (`World.shard`): 1, itself; 0, an item borrowed only to
        join DDP's averaging of the gradients, whose objective counts nothing and whose figures are none
        of the batch's."""
        return self if weight else StepLoss(self.objective * 0.0, 0.0, 0.0, 0, 0)


@dataclass(frozen=True)
class DevScores:
    """What a model type's validation measured; the loop makes a ValidRecord of it."""

    scores: dict[str, float]  # by name: ppl, loss, bleu, chrf, bpc
    signatures: dict[str, str] = field(default_factory=dict)  # sacrebleu signature by metric
    sentences: int | None = None  # dev sentences BLEU was computed on


@dataclass
class TrainingTask:
    """What the loop needs from a model type."""

    batches: Callable[[int], Sequence[Any]]  # epoch (0-based) -> that epoch's batches, in order
    step: Callable[[Any], StepLoss]  # the forward pass on one batch
    validate: Callable[[], DevScores]
    data: dict[str, int] = field(default_factory=dict)  # what the task counted in its data, for the log
    # state the task carries between batches (a language model's hidden state), for checkpoints
    state_dict: Callable[[], dict] = dict
    load_state_dict: Callable[[dict], None] = lambda state: None
