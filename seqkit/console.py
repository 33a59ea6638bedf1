"""What seqkit shows on stderr: logs, progress (a bar on a terminal, plain lines otherwise), errors and
warnings (rich). The results on stdout, tables and JSON, are results.py's."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from rich.console import Console as RichConsole
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from seqkit.wording import counted

if TYPE_CHECKING:  # training's modules import torch, which an exported model's commands run without
    from seqkit.training.log import EndRecord, StartRecord, TrainRecord, ValidRecord
    from seqkit.training.task import StepReport


class Console(RichConsole):
    """rich's console, but a closed pipe (`seqkit info DIR | head -1`) is left to the CLI, which exits 0
    as for every command; rich's own way out is exit 1. A training outlives its log's reader instead
    (`outlive_stderr`)."""

    def on_broken_pipe(self) -> None:
        if self.stderr and _OUTLIVE_STDERR:
            # `seqkit train ... 2>&1 | head`: the run goes on, its lines go nowhere (train_log.jsonl
            # keeps them); stopping a run of hours with exit 0 and no weights looked like a success
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stderr.fileno())
            os.close(devnull)
            return
        raise BrokenPipeError


_OUTLIVE_STDERR = False


def outlive_stderr() -> None:
    """From now on, a reader of stderr that goes away does not end this process (a training)."""
    global _OUTLIVE_STDERR
    _OUTLIVE_STDERR = True


# no markup unless a call asks for it: paths and names (a file called "g[/b].tsv") print as they are
stderr = Console(stderr=True, soft_wrap=True, markup=False)
# dev score name, label, decimals: in this order when present
VALIDATION_SCORES = (
    ("ppl", "dev ppl", 2),
    ("bpc", "bits/char", 3),
    ("bleu", "BLEU", 2),
    ("chrf", "chrF", 2),
    ("accuracy", "dev accuracy", 4),
    ("macro_f1", "macro-F1", 4),
    ("rmse", "RMSE", 4),
    ("mae", "MAE", 4),
)
TOKENIZING_EVERY = 10.0  # seconds between the lines that say how far tokenization is
METRIC_NAMES = {"bleu": "BLEU", "chrf": "chrF", "ter": "TER"}
METRIC_LABELS = {name: label for name, label, _ in VALIDATION_SCORES}


def scores_text(scores: Mapping[str, float | None]) -> str:
    """The dev scores of a validation; one the log keeps as null (not finite: a diverged run) is inf."""
    return "  ".join(
        f"{label} {math.inf if scores[name] is None else scores[name]:.{digits}f}"
        for name, label, digits in VALIDATION_SCORES
        if name in scores
    )


def error(message: str) -> None:
    """One line, on stderr, never wrapped (scripts grep it)."""
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True, markup=True)


def _best(score: float | None, spec: str) -> str:
    return "(no validation yet)" if score is None else format(score, spec)


def clock_text(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _eta(elapsed: float, fraction: float) -> float:
    return elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0


class TrainingProgress:
    """The reporter of `seqkit train` on stderr. On a terminal: a progress bar with step, loss, tokens/s,
    elapsed and ETA. Otherwise (a log file, nohup, a batch scheduler): a plain line every log_every steps.
    `quiet`: errors and the closing line only."""

    def __init__(self, quiet: bool = False, plain: bool | None = None):
        self.quiet = quiet
        self.plain = not stderr.is_terminal if plain is None else plain
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.description}"),
            console=stderr,
            transient=False,
        )
        self.task = TaskID(0)  # the bar's task, added by start
        self.bar = False  # whether the bar is drawn
        self.unit = "target tokens"  # what is counted per second: the model type's, from the start record
        self.train_score: str | None = "ppl"  # what is shown beside the training loss (None: nothing)
        self.last_tokenizing = time.monotonic()

    def _say(self, text: str, markup: bool = False) -> None:
        if not self.quiet:
            (self.progress.console if self.bar else stderr).print(text, highlight=False, markup=markup)

    def start(self, record: StartRecord) -> None:
        from seqkit.model_types import MODEL_TYPES  # here: an exported model's commands run without torch

        model_type = MODEL_TYPES[record.model_type]
        self.unit, self.train_score = model_type.unit, model_type.train_score(record.data)
        data = model_type.describe_data(record.data)
        processes = f" x {record.processes} processes" if record.processes > 1 else ""
        self._say(
            f"{data}; {record.parameters:,} parameters; {record.steps_per_epoch:,} steps per epoch; "
            f"{record.threads} thread{'s' if record.threads > 1 else ''}{processes}"
        )
        if record.restored is not None:
            restored = record.restored
            self._say(
                f"restored step {restored.step:,}, epoch {restored.epoch}, learning rate "
                f"{restored.learning_rate:g}, dev_{restored.best_metric} {_best(restored.best_score, '.3f')}"
            )
        if not (self.plain or self.quiet):
            self.progress.start()
            self.task = self.progress.add_task("", total=1.0)
            self.bar = True

    def tokenizing(self, pairs: int) -> None:
        """A line at most every TOKENIZING_EVERY seconds while a large corpus is tokenized."""
        now = time.monotonic()
        if now - self.last_tokenizing >= TOKENIZING_EVERY:
            self._say(f"tokenized {pairs:,} training pairs")
            self.last_tokenizing = now

    def step(self, report: StepReport) -> None:
        if not self.bar:
            return
        fraction, elapsed = report.fraction, report.elapsed_s
        self.progress.update(
            self.task,
            completed=fraction,
            description=(
                f"step {report.step:,} epoch {report.epoch} loss {report.loss:.3f} "
                f"{report.target_tokens_per_s:,.0f} {'tok' if self.unit == 'target tokens' else self.unit}/s  "
                f"{clock_text(elapsed)} elapsed, "
                f"ETA {clock_text(_eta(elapsed, fraction))}"
            ),
        )

    def interval(self, record: TrainRecord, fraction: float) -> None:
        if self.bar:
            return  # the bar shows it
        eta = f", ETA {clock_text(_eta(record.elapsed_s, fraction))}" if fraction > 0 else ""
        score = {"accuracy": f"accuracy {record.accuracy:.4f}  ", "ppl": f"ppl {record.ppl:.2f}  "}
        self._say(
            f"step {record.step:,} epoch {record.epoch}: loss {record.loss:.3f}  {score.get(self.train_score or '', '')}"
            f"{record.target_tokens_per_s:,.0f} {self.unit}/s  lr {record.lr:.3g}  "
            f"{clock_text(record.elapsed_s)} elapsed{eta}"
        )

    def validation(self, record: ValidRecord) -> None:
        mark = "  [green]new best, saved[/]" if record.best else ""
        self._say(f"validation at step {record.step:,}: {scores_text(record.scores)}{mark}", markup=True)

    def warning(self, message: str) -> None:
        self._say(f"[yellow]warning:[/] {escape(message)}", markup=True)

    def finish(self, record: EndRecord) -> None:
        if self.bar:
            self.progress.stop()
            self.bar = False
        stderr.print(
            f"stopped by {record.reason} after {counted(record.steps, 'step')} in {clock_text(record.elapsed_s)}; "
            f"best {METRIC_LABELS[record.best_metric]} {_best(record.best_score, '.2f')}",
            highlight=False,
        )
