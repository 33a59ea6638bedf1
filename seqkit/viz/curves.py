"""Training curves: the series a training log holds, grouped into the panels `seqkit plot` draws.

The log (`train_log.jsonl`) has a "train" record every `log_every` steps and a "valid" record at every
validation. It is read as a resume left it (`training.log.read`): steps an interrupted attempt
logged after its last checkpoint are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqkit import outputs
from seqkit.errors import ModelDirError
from seqkit.training import log as training_log
from seqkit.training.log import Record, StartRecord, TrainRecord, ValidRecord


@dataclass(frozen=True)
class Curve:
    label: str  # "train", "dev", "BLEU", ...
    steps: list[int]
    minutes: list[float]  # training time at each point (elapsed_s / 60)
    values: list[float]


@dataclass(frozen=True)
class Panel:
    title: str
    log_scale: bool
    curves: list[Curve]  # train and dev overlaid when they share a unit


@dataclass(frozen=True)
class RunCurves:
    name: str  # the model directory, as given
    panels: list[Panel]  # only panels with data, in PANELS order


def _train(name: str) -> Callable[[Record], float | None]:
    return lambda r: getattr(r, name) if isinstance(r, TrainRecord) else None


def _dev(name: str) -> Callable[[Record], float | None]:
    return lambda r: r.scores.get(name) if isinstance(r, ValidRecord) else None


# panel title, log y axis, and its series: (label, the value a record gives, or None)
PANELS = (
    ("perplexity", True, (("train", _train("ppl")), ("dev", _dev("ppl")))),
    (
        "accuracy (%)",  # of target tokens; a classifier's: of examples, and its validation accuracy
        False,
        (
            ("train", lambda r: 100.0 * r.accuracy if isinstance(r, TrainRecord) else None),
            (
                "dev",
                lambda r: (
                    100.0 * r.scores["accuracy"]
                    if isinstance(r, ValidRecord) and "accuracy" in r.scores
                    else None
                ),
            ),
        ),
    ),
    ("loss", False, (("train", _train("loss")), ("dev", _dev("loss")))),
    ("dev RMSE / MAE", False, (("RMSE", _dev("rmse")), ("MAE", _dev("mae")))),
    ("dev BLEU / chrF", False, (("BLEU", _dev("bleu")), ("chrF", _dev("chrf")))),
    ("dev bits per character", False, (("dev", _dev("bpc")),)),
    ("gradient norm (before clipping)", True, (("train", _train("grad_norm")),)),
)


def _by_step(records: list[Record], kind: type[TrainRecord] | type[ValidRecord]) -> list[Any]:
    by_step = {r.step: r for r in records if isinstance(r, kind)}
    return [by_step[step] for step in sorted(by_step)]


def read_curves(model_dir: Path) -> RunCurves:
    """The curves of one run, or a ModelDirError when its log has nothing to draw."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        what = "a file, not a model directory" if model_dir.exists() else "no such model directory"
        raise ModelDirError(f"{model_dir}: {what}; give one written by `seqkit train`")
    if not (model_dir / training_log.LOG).is_file() and outputs.marker_kind(model_dir) != "run":
        # an export, or a directory that is no run (a run still reading its data has no log yet)
        raise ModelDirError(
            f"{model_dir}: no {training_log.LOG}, so no training to draw; give a directory that `seqkit "
            "train` wrote"
        )
    records = training_log.read(model_dir)
    stepped = _by_step(records, TrainRecord) + _by_step(records, ValidRecord)
    classifier = any(isinstance(r, StartRecord) and r.model_type == "classifier" for r in records)
    # a classifier's loss is not per token (no perplexity); a sequence model's loss is its perplexity's
    # log, drawn as the perplexity; a forecaster counts no correct examples
    skipped = {"perplexity"} if classifier else {"loss"}
    if classifier and not any(isinstance(r, ValidRecord) and "accuracy" in r.scores for r in records):
        skipped.add("accuracy (%)")
    panels = []
    for title, log_scale, series in PANELS:
        if title in skipped:
            continue
        curves = []
        for label, value in series:
            points = [(r, v) for r in stepped if (v := value(r)) is not None]
            if not points:
                continue
            curves.append(
                Curve(
                    label,
                    [r.step for r, _ in points],
                    [r.elapsed_s / 60 for r, _ in points],
                    [v for _, v in points],
                )
            )
        if curves:
            panels.append(Panel(title, log_scale, curves))
    if not panels:
        # (a run stopped while it read its data has no log at all: the file is not there to name)
        where = model_dir / training_log.LOG if (model_dir / training_log.LOG).is_file() else model_dir
        raise ModelDirError(
            f"{where}: no training or validation records yet; train for at least log_every steps"
        )
    return RunCurves(str(model_dir), panels)


def panel_titles(runs: list[RunCurves]) -> list[str]:
    """Every panel title any run has, in PANELS order (runs of different kinds share one figure)."""
    present = {panel.title for run in runs for panel in run.panels}
    return [title for title, _, _ in PANELS if title in present]
