"""Training curves: the series a training log holds, grouped into the panels `seqkit plot` draws.

The log (`train_log.jsonl`) has a "train" record every `log_every` steps and a "valid" record at every
validation. It is read as a resume left it (`modeldir.current_history`): steps an interrupted attempt
logged after its last checkpoint are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seqkit import modeldir
from seqkit.errors import ModelDirError


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


# panel title, log y axis, and its series: (record kind, key, label)
PANELS = (
    ("perplexity", True, (("train", "ppl", "train"), ("valid", "dev_ppl", "dev"))),
    ("token accuracy (%)", False, (("train", "accuracy", "train"),)),
    ("dev BLEU / chrF", False, (("valid", "dev_bleu", "BLEU"), ("valid", "dev_chrf", "chrF"))),
    ("dev bits per character", False, (("valid", "dev_bpc", "dev"),)),
    ("gradient norm (before clipping)", True, (("train", "grad_norm", "train"),)),
)
PERCENT = {"accuracy"}  # fractions in the log, percentages on the plot


def _by_step(records: list[dict], kind: str) -> list[dict]:
    by_step = {r["step"]: r for r in records if r.get("kind") == kind and "step" in r}
    return [by_step[step] for step in sorted(by_step)]


def read_curves(model_dir: Path) -> RunCurves:
    """The curves of one run, or a ModelDirError when its log has nothing to draw."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirError(f"{model_dir}: no such model directory; give one written by `seqkit train`")
    records = modeldir.current_history(modeldir.read_log(model_dir))
    by_kind = {kind: _by_step(records, kind) for kind in ("train", "valid")}
    panels = []
    for title, log_scale, series in PANELS:
        curves = []
        for kind, key, label in series:
            points = [r for r in by_kind[kind] if r.get(key) is not None]
            if not points:
                continue
            scale = 100.0 if key in PERCENT else 1.0
            curves.append(
                Curve(
                    label,
                    [r["step"] for r in points],
                    [r.get("elapsed_s", 0.0) / 60 for r in points],
                    [r[key] * scale for r in points],
                )
            )
        if curves:
            panels.append(Panel(title, log_scale, curves))
    if not panels:
        raise ModelDirError(
            f"{model_dir / modeldir.LOG}: no training or validation records yet; train for at least "
            "log_every steps"
        )
    return RunCurves(str(model_dir), panels)


def panel_titles(runs: list[RunCurves]) -> list[str]:
    """Every panel title any run has, in PANELS order (runs of different kinds share one figure)."""
    present = {panel.title for run in runs for panel in run.panels}
    return [title for title, _, _ in PANELS if title in present]
