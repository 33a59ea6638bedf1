"""What a classifier or forecaster says about examples: the head's outputs in batches (by length, so
padding stays small; in input order), turned into labels with probabilities or into numbers.

The head is whatever computes a padded batch's outputs: the torch model (torch_steps.ClassifierHead) or
an ONNX export's graph (export/runtime.py); everything here is numpy, so an export predicts without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Protocol

import numpy as np

from seqkit.data.encoding import Codec, Encoding, padded
from seqkit.data.labelled import Examples
from seqkit.errors import ConfigError, DataError


class Head(Protocol):
    """A classifier's outputs of a padded batch (data/encoding.py's `padded`)."""

    size: int  # outputs per example: labels (softmax), 1 (sigmoid), values to forecast (regression)

    def __call__(self, inputs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """inputs (batch, steps[, features]), lengths (batch,) -> outputs (batch, size) float32."""
        ...


def head_outputs(head: Head, inputs: list, batch_size: int) -> np.ndarray:
    """The head's outputs of each input (token ids or scaled numbers) -> (inputs, outputs) float32.
    Each example is computed alone in its row (packed sequences), so its batch does not change it
    beyond float rounding."""
    order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
    outputs = np.zeros((len(inputs), head.size), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        outputs[chosen] = head(*padded([inputs[i] for i in chosen]))
    return outputs


def label_probabilities(head: str, outputs: np.ndarray) -> np.ndarray:
    """outputs (batch, outputs) -> (batch, labels) float64 probabilities of a softmax or sigmoid head."""
    logits = outputs.astype(np.float64)
    if head == "sigmoid":  # the second label's probability, from the one logit (no overflow far from 0)
        positive = np.exp(-np.logaddexp(0.0, -logits))  # (batch, 1)
        return np.concatenate([1 - positive, positive], axis=1)
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Prediction:
    """One example's prediction: a label with the probability of every label, or forecast values."""

    label: str | None
    probabilities: dict[str, float] | None  # label -> probability, in the encoding's label order
    values: list[float] | None  # regression: in the targets' own units

    def top(self, k: int) -> list[tuple[str, float]]:
        """The k likeliest labels with their probabilities, likeliest first."""
        if self.probabilities is None:
            raise ConfigError("top: a forecaster's prediction is numbers (.values), with no labels to rank")
        labels = len(self.probabilities)
        if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= k <= labels:
            raise ConfigError(f"top: k = {k!r}: the model has {labels} labels; give 1 to {labels}")
        return sorted(self.probabilities.items(), key=lambda item: -item[1])[:k]


def check_top_k(encoding: Encoding, top_k: int | None, name: str, given: str, model_dir) -> None:
    """A ConfigError for a `top_k` the model cannot rank: a forecaster has no labels, a classifier its
    labels' count. `name` and `given` say the option as its caller writes it (`--top-k`, `--top-k 3`;
    a /predict request's `top_k`, `top_k = 3`)."""
    if top_k is None:
        return
    if encoding.head == "regression":
        raise ConfigError(f"{name}: {model_dir} forecasts numbers, which have no labels to rank; drop it")
    labels = len(encoding.labels)
    if not 1 <= top_k <= labels:
        raise ConfigError(f"{given}: the model has {labels} labels; give 1 to {labels}")


def predictions(encoding: Encoding, outputs: np.ndarray) -> list[Prediction]:
    """The head's outputs (examples, outputs) as labels and probabilities, or as numbers."""
    if encoding.head == "regression":
        return [Prediction(None, None, row.tolist()) for row in encoding.unscaled(outputs)]
    probabilities = label_probabilities(encoding.head, outputs)
    return [
        Prediction(
            encoding.labels[int(row.argmax())],
            {label: float(p) for label, p in zip(encoding.labels, row, strict=True)},
            None,
        )
        for row in probabilities
    ]


def predicted_ids(encoding: Encoding, outputs: np.ndarray) -> np.ndarray:
    """The label id each example is given (argmax; sigmoid: positive when the logit is above 0)."""
    if encoding.head == "sigmoid":
        return (outputs[:, 0] > 0).astype(np.int64)
    return outputs.argmax(1)


def require_window(examples: Examples, window: int) -> None:
    """A model of one series reads windows of `window` steps: a line of numbers of another length is an
    error naming it (the RNN would read it, but a forecast from 1 day or 20 is not the one it learned)."""
    for steps, place in zip(examples.numbers or [], examples.places, strict=False):
        if len(steps) != window:
            raise DataError(
                f"{place}: {len(steps)} steps, but the model reads windows of data.window = {window} steps; "
                f"give {window} rows, step-major"
            )


def predict_lines(
    codec: Codec,
    head: Head,
    lines: list[str],
    batch_size: int,
    first_line: int = 1,
    source: str | None = None,
    window: int | None = None,
) -> list[Prediction | None]:
    """A prediction for each line (text, or numbers x1,x2,... as the model reads them); None for an
    empty line, which has nothing to classify. Errors name the line (`first_line` is the first's number)
    as `source:N`, or as `input line N` without a source (a list, stdin). `window`: the steps a model of
    one series (data.series) reads, which every line of numbers must hold."""
    kept = [i for i, line in enumerate(lines) if line.strip()]
    places = [f"{source}:{first_line + i}" if source else f"input line {first_line + i}" for i in kept]
    examples = codec.examples([lines[i] for i in kept], places)
    if window:
        require_window(examples, window)
    found = (
        predictions(codec.encoding, head_outputs(head, codec.inputs(examples), batch_size)) if kept else []
    )
    result: list[Prediction | None] = [None] * len(lines)
    for i, prediction in zip(kept, found, strict=True):
        result[i] = prediction
    return result
