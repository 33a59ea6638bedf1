"""A classifier's or forecaster's examples cut from one series (`data.series`): a CSV file with a header
line, each row one time step. The windows of data.window rows of the data.inputs columns, each with its
target data.horizon rows after its last row (data.column), split by time into train, dev and test."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqkit.config import DataConfig
from seqkit.data.labelled import NOT_A_TARGET, Examples, existing_file, read_number
from seqkit.data.text import iter_lines
from seqkit.errors import DataError


@dataclass(frozen=True)
class SeriesSplit:
    """The windows of one series, cut and split by time (train first, then dev, then test)."""

    train: Examples
    dev: Examples
    test: Examples
    columns: list[str]  # the input columns, in the order of each step's features
    rows: int  # rows in the file


def input_columns(cfg: DataConfig) -> list[str]:
    return [name.strip() for name in cfg.inputs.split(",") if name.strip()] or [cfg.column]


def read_series_table(path: Path | str, option: str = "data.series") -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV file with a header line (the rows' cells as strings)."""
    lines = list(iter_lines(existing_file(str(path), option)))
    while lines and not lines[-1].strip():  # blank lines at the end: nothing
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line.strip():  # a row is a time step: skipped, it would join the steps around it
            raise DataError(
                f"{path}:{number}: an empty row inside the series; each row is one time step: fill in its "
                "values or remove the row"
            )
    table = []
    for number, line in enumerate(lines, start=1):  # a row per line: a quoted cell may not run on
        try:
            table.append(next(csv.reader([line], strict=True)))
        except csv.Error as e:
            raise DataError(
                f"{path}:{number}: not a row of comma-separated cells ({e}); each row is one time step, "
                "on one line"
            ) from None
    if len(table) < 2:
        raise DataError(f"{path}: a series needs a header line and at least one row")
    header = [name.strip() for name in table[0]]
    for number, row in enumerate(table[1:], start=2):
        if len(row) != len(header):
            raise DataError(
                f"{path}:{number}: {len(row)} cells but the header has {len(header)}; fix the row"
            )
    return header, table[1:]


def _season_seen(target: int, end: int, season: int) -> int:
    """The row seasonal persistence reads for the target in row `target` of a window ending before row
    `end`: the latest row of the same season that the window has seen (`season` rows back, or a multiple
    of it when the horizon reaches past one season); negative where the series starts later."""
    if not season:
        return -1
    return target - season * math.ceil((target - end + 1) / season)


def split_series(
    path: Path | str, cfg: DataConfig, regression: bool, option: str = "data.series"
) -> SeriesSplit:
    """Cut a series into windows and split them by time: the last data.test_fraction of the windows are
    test, the data.dev_fraction before them dev, the rest train (no window is shuffled across)."""
    header, rows = read_series_table(path, option)
    columns = input_columns(cfg)
    for name, key in [(cfg.column, "data.column")] + [(c, "data.inputs") for c in columns]:
        if name not in header:
            raise DataError(f"{key} = {name!r}: no such column in {path} (columns: {', '.join(header)})")
    window, horizon = cfg.window, cfg.horizon
    count = len(rows) - window - horizon + 1
    # A forecaster's targets are `horizon` rows: those of the last horizon - 1 windows before dev (and
    # before test) are also the next part's targets. Those windows are left out, so that no value is
    # both learned and scored (a classifier's target is one row: nothing overlaps)
    gap = horizon - 1 if regression else 0
    parts = 3 if cfg.test_fraction else 2
    gaps = gap * (parts - 1)  # the windows left out, before dev (and test)
    left_out = f" ({gap} windows left out before each later part, data.horizon - 1)" if gap else ""
    # a trained model's data keys are its own: only the series given to evaluate can change
    trained = option != "data.series"
    if count < parts + gaps:  # a window for each part, and the gaps between them
        raise DataError(
            f"{path}: {len(rows)} rows cannot hold data.window = {window} steps and data.horizon = {horizon} "
            f"more for train, dev{' and test' if cfg.test_fraction else ''} windows{left_out}; "
            + (
                "give a longer series"
                if trained
                else "lower data.window or data.horizon, or give a longer series"
            )
        )
    at = [header.index(name) for name in columns]
    fixes = {i: "fix the value" for i in at}
    if cfg.column in columns:  # the target read as an input too (data.inputs' default)
        fixes[header.index(cfg.column)] = (
            NOT_A_TARGET
            if regression
            else (
                "a series' inputs are numbers (data.inputs; without it, data.column's own values): name the "
                "numeric input columns in data.inputs"
            )
        )
    inputs = np.asarray(
        [
            [read_number(row[i], f"{path}:{r + 2}", f"column {header[i]!r}", fixes[i]) for i in at]
            for r, row in enumerate(rows)
        ]
    )  # (rows, features)
    target_at = header.index(cfg.column)
    labels = [row[target_at].strip() for row in rows]
    if not regression and "" in labels:  # it became a label of its own, "", as an empty output line reads
        raise DataError(
            f"{path}:{labels.index('') + 2}: column {cfg.column!r} is empty, and a classifier needs a label "
            "at every row; fill it in or drop the row"
        )
    target: Any = labels
    if regression:
        target = np.asarray(
            [
                read_number(row[target_at], f"{path}:{r + 2}", f"column {cfg.column!r}", NOT_A_TARGET)
                for r, row in enumerate(rows)
            ]
        )
    examples: list[tuple[np.ndarray, Any, str]] = []
    last_seen: list[Any] = []
    season_before: list[Any] = []
    for start in range(count):
        end = start + window  # the window is rows [start, end); targets follow it
        place = f"{path}:{start + 2}-{end + 1}"
        targets = range(end, end + horizon) if regression else [end + horizon - 1]
        if regression:
            examples.append((inputs[start:end], target[end : end + horizon], place))
            last_seen.append([target[end - 1]] * horizon)
            before = [_season_seen(t, end, cfg.season) for t in targets]
            season_before.append([target[i] if i >= 0 else np.nan for i in before])
        else:
            examples.append((inputs[start:end], labels[end + horizon - 1], place))
            last_seen.append(labels[end - 1])
            i = _season_seen(targets[0], end, cfg.season)
            season_before.append(labels[i] if i >= 0 else "")
    # a test share of at least one window (the windows checked above are enough for each part)
    tests = max(1, round(count * cfg.test_fraction)) if cfg.test_fraction else 0
    devs = max(1, round(count * cfg.dev_fraction))
    trains = count - devs - tests - gaps
    if trains < 1:
        raise DataError(
            f"{path}: {count} windows leave none to train on{left_out}; "
            + ("give a longer series" if trained else "lower data.dev_fraction / test_fraction")
        )
    dev_start = trains + gap
    test_start = dev_start + devs + (gap if tests else 0)

    naive: dict[str, Any] = {"persistence": np.asarray(last_seen) if regression else last_seen}
    if cfg.season:
        naive["seasonal"] = np.asarray(season_before, dtype=np.float64) if regression else season_before
    numbers = [window_inputs for window_inputs, _, _ in examples]
    places = [place for _, _, place in examples]
    if regression:
        values = np.asarray([value for _, value, _ in examples], dtype=np.float64).reshape(count, horizon)
        every = Examples(None, numbers, [], values, places, naive=naive)
    else:
        every = Examples(None, numbers, [label for _, label, _ in examples], None, places, naive=naive)
    return SeriesSplit(
        every.take(list(range(trains))),
        every.take(list(range(dev_start, dev_start + devs))),
        every.take(list(range(test_start, count))),
        columns,
        len(rows),
    )
