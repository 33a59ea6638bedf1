"""Labelled examples for a classifier or forecaster (`model.type = "classifier"`), in three formats:

    text     a TSV file (.tsv, .tsv.gz) of label<TAB>text (the columns are data.label_column and
             data.text_column), or two line-aligned files {prefix}.text and {prefix}.label (or .gz)
    numbers  a CSV file (.csv, .csv.gz) of label,x1,x2,...: one sequence per line, every x a number; with
             data.features = F each time step has F values, step-major (x1..xF are the first step), so
             sequences may differ in length but each holds a multiple of F values
    series   one CSV file with a header line (data.series): windows cut from it by data/series.py

The label of a regression model (model.head = regression) is a number. Every reader names file and line
in its errors. Empty lines are skipped (and counted) in training data; `parse_numbers` reads one
unlabelled line of numbers, as `seqkit predict` gets them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqkit.config import DataConfig
from seqkit.data.text import corpus_file, iter_lines
from seqkit.errors import DataError
from seqkit.wording import counted


@dataclass(frozen=True)
class Examples:
    """What a classifier reads: inputs (texts, or raw number sequences) and their targets."""

    texts: list[str] | None  # text inputs, or None
    numbers: list[np.ndarray] | None  # number inputs, each (steps, features) float64, as read
    labels: list[str]  # the label of each example ([] for a regression model)
    values: np.ndarray | None  # regression: (examples, outputs) targets as read, else None
    places: list[str]  # "file:line" of each example, for errors that name one
    skipped: int = 0  # empty lines skipped
    # a series: what the naive forecasts say of each example (scoring/baselines.py), by name:
    # "persistence" (the last value or label seen) and "seasonal" (data.season steps before the target)
    naive: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.places)

    def take(self, indices: list[int]) -> Examples:
        def chosen(values):
            return values[indices] if isinstance(values, np.ndarray) else [values[i] for i in indices]

        return Examples(
            None if self.texts is None else chosen(self.texts),
            None if self.numbers is None else chosen(self.numbers),
            chosen(self.labels) if self.labels else [],
            None if self.values is None else self.values[indices],
            chosen(self.places),
            naive={name: chosen(values) for name, values in self.naive.items()},
        )


def kind_of(spec: str, cfg: DataConfig) -> str:
    """tsv, csv or labels ({prefix}.text + {prefix}.label): data.format unless auto, else by the name."""
    if cfg.format in ("tsv", "csv", "labels"):
        return cfg.format
    if cfg.format != "auto":
        raise DataError(
            f"data.format = {cfg.format!r} is a translation corpus format; a classifier reads tsv (label and "
            "text), labels ({prefix}.text + {prefix}.label) or csv (numbers)"
        )
    name = spec.lower()
    if name.endswith((".tsv", ".tsv.gz")):
        return "tsv"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    return "labels"


def read_examples(
    spec: str,
    cfg: DataConfig,
    option: str,
    regression: bool,
    fixes: Counter | None = None,
    skip_unlabelled: bool = False,
) -> Examples:
    """The examples of data.train / data.dev / an evaluation file `spec` (named `option` in errors);
    `fixes` counts the lines whose byte order mark, carriage return or control characters were removed
    (data/text.py). Empty lines are skipped and counted; so are examples without a label with
    `skip_unlabelled` (a test file's unlabelled lines are not scored), which are errors otherwise (in
    training data, a labelling slip: a class named "", or a text silently dropped)."""
    kind = kind_of(spec, cfg)
    if kind == "csv":
        return _read_numbers(existing_file(spec, option), cfg.features, regression, fixes, skip_unlabelled)
    if kind == "tsv":
        rows = _tsv_rows(existing_file(spec, option), cfg.label_column, cfg.text_column, fixes)
    else:
        if Path(spec).is_file() and not Path(f"{spec}.text").exists():  # a file, not a prefix of two
            raise DataError(
                f"{option} = {spec!r}: a file of none of the formats a classifier reads: tsv (label<TAB>text, "
                ".tsv), csv (label,x1,x2,..., .csv), or the prefix of {prefix}.text + {prefix}.label; "
                "give one of them (or set data.format)"
            )
        text_file, label_file = corpus_file(spec, "text", option), corpus_file(spec, "label", option)
        rows = _aligned_rows(text_file, label_file, fixes)
    texts, labels, places, skipped = [], [], [], 0
    for place, label, text in rows:
        if text.strip() and not label.strip() and not skip_unlabelled:
            raise DataError(f"{place}: a text with an empty label; give the line its label, or drop the line")
        if not text.strip() or not label.strip():
            skipped += 1
            continue
        texts.append(text)
        labels.append(label.strip())
        places.append(place)
    values = _label_values(labels, places) if regression else None
    return Examples(texts, None, [] if regression else labels, values, places, skipped)


def existing_file(spec: str, option: str) -> Path:
    path = Path(spec)
    if path.is_dir():
        raise DataError(f"{option} = {spec!r}: a directory, not a file; give the data file")
    if not path.is_file():
        raise DataError(f"{option} = {spec!r}: no such file; check the path")
    return path


def _tsv_rows(
    path: Path, label_column: int, text_column: int, fixes: Counter | None
) -> Iterator[tuple[str, str, str]]:
    needed = max(label_column, text_column)
    for number, line in enumerate(iter_lines(path, fixes), start=1):
        if not line.strip():
            yield f"{path}:{number}", "", ""
            continue
        cells = line.split("\t")
        if len(cells) < needed:
            raise DataError(
                f"{path}:{number}: {counted(len(cells), 'tab-separated column')}, but a labelled example needs column "
                f"{needed}; fix the line, or set data.label_column / data.text_column to the right columns"
            )
        yield f"{path}:{number}", cells[label_column - 1], cells[text_column - 1]


def _aligned_rows(text_file: Path, label_file: Path, fixes: Counter | None) -> Iterator[tuple[str, str, str]]:
    texts, labels = list(iter_lines(text_file, fixes)), list(iter_lines(label_file, fixes))
    if len(texts) != len(labels):
        raise DataError(
            f"{text_file} has {counted(len(texts), 'line')} but {label_file} has {len(labels):,}; the label of line i is "
            "line i of the .label file"
        )
    # a line is named by its .label file: what an error of an example read from these files is about (a
    # label the model does not know, a value that is no number); the texts are only skipped when empty
    for number, (text, label) in enumerate(zip(texts, labels, strict=True), start=1):
        yield f"{label_file}:{number}", label, text


# a regression model's target that is no number: most likely a label, and the head is what to change
NOT_A_TARGET = "model.head = regression learns numbers: fix the value, or classify with model.head = softmax"


def read_number(cell: str, where: str, what: str, fix: str = "fix the value") -> float:
    try:
        value = float(cell)
    except ValueError:
        raise DataError(f"{where}: {what} {cell.strip()!r} is not a number; {fix}") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {what} {cell.strip()!r} is not a finite number; fix or drop the row")
    return value


def _label_values(labels: list[str], places: list[str]) -> np.ndarray:
    """The numbers a regression model learns: its labels, read as numbers."""
    values = [
        read_number(label, place, "the label", NOT_A_TARGET)
        for label, place in zip(labels, places, strict=True)
    ]
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def parse_numbers(line: str, features: int, where: str, unlabelled: bool = False) -> np.ndarray:
    """One sequence of numbers x1,x2,... (step-major, `features` per step) -> (steps, features); an
    `unlabelled` one (an input to predict) whose first value alone is no number is named a label."""
    cells = line.split(",")
    if unlabelled and len(cells) > 1 and not _is_number(cells[0]) and all(map(_is_number, cells[1:])):
        raise DataError(
            f"{where}: value 1 {cells[0].strip()!r} is not a number and the others are: a label? A line to "
            "predict holds the values alone (x1,x2,...); drop the label"
        )
    # each value read first: a line that is no numbers at all ("abc") is named as such, not as a count
    values = [read_number(cell, where, f"value {i + 1}") for i, cell in enumerate(cells)]
    if len(cells) % features:
        raise DataError(
            f"{where}: {len(cells)} values, not a multiple of data.features = {features} (values per step); "
            "give whole steps"
        )
    return np.asarray(values, dtype=np.float64).reshape(-1, features)


def _read_numbers(
    path: Path, features: int, regression: bool, fixes: Counter | None, skip_unlabelled: bool
) -> Examples:
    numbers: list[np.ndarray] = []
    labels, places, skipped = [], [], 0
    for number, line in enumerate(iter_lines(path, fixes), start=1):
        label, _, rest = line.partition(",")
        if not line.strip() or (skip_unlabelled and not label.strip()):
            skipped += 1
            continue
        where = f"{path}:{number}"
        if not rest.strip():
            raise DataError(f"{where}: a label and no values; a line is label,x1,x2,...")
        if not label.strip():  # (it was learned as a class named "")
            raise DataError(
                f"{where}: no label before the first comma; a line is label,x1,x2,...: give its label"
            )
        cells = rest.split(",")
        named = next((i for i, cell in enumerate(cells) if not _is_number(cell)), None)
        if not numbers and named is not None:  # the first line, of names: most likely a header
            raise DataError(
                f"{where}: value {named + 1} {cells[named].strip()!r} is not a number: a header line? A file of "
                "label,x1,x2,... has none: remove it; a table of named columns is a series (data.series = "
                "FILE, data.column = NAME)"
            )
        numbers.append(parse_numbers(rest, features, where))
        labels.append(label.strip())
        places.append(where)
    values = _label_values(labels, places) if regression else None
    return Examples(None, numbers, [] if regression else labels, values, places, skipped)
