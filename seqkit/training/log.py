"""The training log, `train_log.jsonl` of a model directory: one JSON record per line, each a typed record.

    start / resume   what a session trains on and with (StartRecord)
    train            statistics of the last `log_every` steps (TrainRecord)
    grad             one step's gradient norm, or an fp16 overflow (GradRecord)
    valid            one validation's dev scores (ValidRecord)
    warning          something the run noticed (WarningRecord)
    end / interrupted  how a session ended, and the best score so far (EndRecord)

The trainer writes these records and every reader (console, curves, info, bench) reads them through
`read`, which also reads logs written by seqkit 0.1 (flat start records, `best_dev_{metric}` keys).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from seqkit.errors import ModelDirError
from seqkit.modeldir import LOG

METRIC_KEYS = {
    "bleu": "dev_bleu",
    "chrf": "dev_chrf",
    "ppl": "dev_ppl",
    "accuracy": "dev_accuracy",
    "macro_f1": "dev_macro_f1",
    "rmse": "dev_rmse",
}  # train.best_metric -> dev score


@dataclass(frozen=True)
class Restored:
    """Where a resumed session starts: the checkpoint's counters."""

    step: int
    epoch: int  # 1-based, as the console shows it
    learning_rate: float
    best_metric: str  # bleu, chrf or ppl
    best_score: float | None  # None: no validation yet


@dataclass(frozen=True)
class StartRecord:
    kind: Literal["start", "resume"]
    model_type: str  # a key of model_types.MODEL_TYPES
    data: dict[str, int]  # what the model type counted in its data, e.g. train_pairs, dev_pairs, src_vocab
    parameters: int
    steps_per_epoch: int
    threads: int
    device: str
    precision: str
    processes: int = 1
    restored: Restored | None = None  # resume only


@dataclass(frozen=True)
class TrainRecord:
    step: int
    epoch: int  # 1-based
    # the training objective per target token (label-smoothed when train.label_smoothing > 0); a classifier's:
    # its prediction's loss per example, unweighted, as its dev loss (training/classifier.py)
    loss: float
    ppl: float  # training perplexity: exp of the negative log-likelihood per target token (no smoothing)
    accuracy: float  # share of target tokens the argmax predicts
    grad_norm: float  # mean gradient norm before clipping
    lr: float
    target_tokens_per_s: float
    tokens: int
    elapsed_s: float
    kind: Literal["train"] = "train"


@dataclass(frozen=True)
class GradRecord:
    step: int
    norm: float | None  # before clipping; None when fp16 gradients overflowed
    clipped: bool
    overflow: bool = False
    loss_scale: float | None = None  # fp16: the scale after an overflow
    kind: Literal["grad"] = "grad"


@dataclass(frozen=True)
class ValidRecord:
    step: int
    epoch: int
    scores: dict[str, float]  # dev scores by name: ppl, loss (nats per token), bleu, chrf, bpc
    signatures: dict[str, str] = field(default_factory=dict)  # sacrebleu signature by metric
    sentences: int | None = None  # dev sentences BLEU was computed on
    validation_s: float = 0.0
    best: bool = False  # this validation's weights are now model.safetensors
    elapsed_s: float = 0.0
    gradients: dict[str, Any] = field(default_factory=dict)  # clipped_fraction, mean_grad_norm, layer norms
    kind: Literal["valid"] = "valid"

    def score(self, metric: str) -> float:
        """The dev score that train.best_metric `metric` (bleu, chrf, ppl) ranks by."""
        return self.scores[metric]


@dataclass(frozen=True)
class WarningRecord:
    step: int
    message: str
    kind: Literal["warning"] = "warning"


@dataclass(frozen=True)
class EndRecord:
    kind: Literal["end", "interrupted"]
    reason: str  # the limit reached (max_steps, early_stopping, ...) or the signal's name
    steps: int
    epochs: int
    best_metric: str  # bleu, chrf or ppl
    best_score: float | None  # None: no validation yet (JSON has no infinity)
    best_signature: str = ""
    elapsed_s: float = 0.0
    target_tokens: int = 0
    step_s: float = 0.0  # time in training steps (validation and set-up excluded)

    @property
    def finished(self) -> bool:
        return self.kind == "end"


Record = StartRecord | TrainRecord | GradRecord | ValidRecord | WarningRecord | EndRecord
STEPPED = (TrainRecord, GradRecord, ValidRecord, WarningRecord)  # records that describe one training step


def to_json(record: Record) -> dict[str, Any]:
    """The JSON object of a record, in the layout of seqkit 0.1 where one existed (valid records are flat)."""
    if isinstance(record, ValidRecord):
        values = {"kind": "valid", "step": record.step, "epoch": record.epoch}
        values.update({f"dev_{name}": value for name, value in record.scores.items()})
        values.update({f"{metric}_signature": sig for metric, sig in record.signatures.items()})
        if record.sentences is not None:
            values["dev_sentences"] = record.sentences
        values.update(
            validation_s=record.validation_s, best=record.best, elapsed_s=record.elapsed_s, **record.gradients
        )
        return values
    values = dataclasses.asdict(record)
    if isinstance(record, GradRecord) and not record.overflow:
        del values["overflow"], values["loss_scale"]
    return values


def _start(values: dict[str, Any]) -> StartRecord:
    data = values.get("data")
    model_type = values.get("model_type")
    if data is None:  # seqkit 0.1: the data counts were top-level keys, the model type implied by them
        keys = ("train_pairs", "skipped_pairs", "dev_pairs", "src_vocab", "tgt_vocab")
        if "train_pairs" not in values:
            keys = ("train_lines", "train_tokens", "streams", "dev_lines", "vocab")
        model_type = "seq2seq" if "train_pairs" in values else "lm"
        data = {key: values[key] for key in keys if key in values}
    restored = None
    if values["kind"] == "resume":
        if isinstance(values.get("restored"), dict):
            given = values["restored"]
            restored = Restored(**{**given, "best_score": finite_or_none(given.get("best_score"))})
        else:
            metric, score = _best(values)
            restored = Restored(values["step"], values["epoch"], values["learning_rate"], metric, score)
    return StartRecord(
        kind=values["kind"],
        model_type=str(model_type),
        data=data,
        parameters=values["parameters"],
        steps_per_epoch=values["steps_per_epoch"],
        threads=values["threads"],
        device=values.get("device", "cpu"),
        precision=values.get("precision", "fp32"),
        processes=values.get("processes", 1),
        restored=restored,
    )


def _best(values: dict[str, Any]) -> tuple[str, float | None]:
    """(best_metric, best_score) of an end or resume record, also from seqkit 0.1's `best_dev_{metric}`;
    a score of no validation (written as -Infinity or Infinity by earlier versions) is None."""
    if "best_metric" in values:
        return values["best_metric"], finite_or_none(values["best_score"])
    for metric, key in METRIC_KEYS.items():
        if f"best_{key}" in values:
            return metric, finite_or_none(values[f"best_{key}"])
    raise KeyError("best_metric")


def finite_or_none(score: float | None) -> float | None:
    """A best score as the log keeps it: None before the first validation (the start value is ±inf)."""
    return score if score is not None and math.isfinite(score) else None


def _valid(values: dict[str, Any]) -> ValidRecord:
    gradient_keys = ("clipped_fraction", "mean_grad_norm", "layer_grad_norms")
    return ValidRecord(
        step=values["step"],
        epoch=values["epoch"],
        scores={
            key.removeprefix("dev_"): v
            for key, v in values.items()
            if key.startswith("dev_") and key != "dev_sentences"
        },
        signatures={k.removesuffix("_signature"): v for k, v in values.items() if k.endswith("_signature")},
        sentences=values.get("dev_sentences"),
        validation_s=values.get("validation_s", 0.0),
        best=values.get("best", False),
        elapsed_s=values.get("elapsed_s", 0.0),
        gradients={key: values[key] for key in gradient_keys if key in values},
    )


def _fields(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in values.items() if key in names}


def from_json(values: dict[str, Any]) -> Record | None:
    """The typed record of one JSON object; None for a kind this version does not know."""
    kind = values.get("kind")
    if kind in ("start", "resume"):
        return _start(values)
    if kind == "valid":
        return _valid(values)
    if kind in ("end", "interrupted"):
        metric, score = _best(values)
        return EndRecord(**{**_fields(EndRecord, values), "best_metric": metric, "best_score": score})
    if kind == "train":
        return TrainRecord(**_fields(TrainRecord, values))
    if kind == "grad":
        return GradRecord(**_fields(GradRecord, values))
    if kind == "warning":
        return WarningRecord(**_fields(WarningRecord, values))
    return None


def append(model_dir: Path, record: Record) -> None:
    """Add one record at the end of the log (a line torn by a killed process is left on its own line)."""
    path = model_dir / LOG
    try:
        with open(path, "a+b") as f:  # appends always go to the end
            torn = False
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
            line = json.dumps(_finite(to_json(record)), allow_nan=False).encode("utf-8")
            f.write((b"\n" if torn else b"") + line + b"\n")
    except OSError as e:  # a write's error names no file (a full disk): name the log
        raise OSError(e.errno, e.strerror, str(path)) from None


def _finite(value: Any) -> Any:
    """`value` with every infinite or NaN float as None: JSON has no such numbers (json.dumps wrote
    `Infinity`, which JSON.parse and jq refuse or misread) and a diverged run's perplexity is one."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def read_all(model_dir: Path | str) -> list[Record]:
    """Every record of the log, interrupted attempts included; a torn line (only ever the last) is skipped."""
    path = Path(model_dir) / LOG
    if not path.is_file():
        return []
    records = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelDirError(
                f"{path}:{number}: not UTF-8, so not a line seqkit wrote: the training log is damaged; "
                "restore it from a copy (translating with the model does not need it)"
            ) from None
        try:
            record = from_json(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        if record is not None:
            records.append(record)
    return records


def current(records: list[Record]) -> list[Record]:
    """The log as the run now stands: a resume from the checkpoint at step S discards the records of
    steps after S that the interrupted attempt wrote (those steps are trained again, or never were)."""
    kept: list[Record] = []
    for record in records:
        if isinstance(record, StartRecord) and record.restored is not None:
            step = record.restored.step
            kept = [r for r in kept if not (isinstance(r, STEPPED) and r.step > step)]
        kept.append(record)
    return kept


def read(model_dir: Path | str) -> list[Record]:
    """The log of a run as it now stands (`current` of `read_all`)."""
    return current(read_all(model_dir))


def of_kind(records: list[Record], kind: type) -> list[Any]:
    return [r for r in records if isinstance(r, kind)]
