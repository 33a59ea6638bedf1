"""Scores of a classifier (accuracy, macro-F1, per-label precision / recall / F1, the confusion matrix) and
of a forecaster (MAE, RMSE, MAPE), from predictions and references alone: the definitions are
scikit-learn's (tests/test_classifier.py compares them), with no dependency on it.
"""

from __future__ import annotations

import math

import numpy as np


def confusion(gold: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: row = the true label, column = the predicted one."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (gold, predicted), 1)
    return matrix


def classification_scores(gold: np.ndarray, predicted: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Accuracy, macro-F1 and per-label precision, recall, F1 and support of label ids `predicted`
    against `gold`. A label never predicted has precision 0 (and never present, recall 0), as
    scikit-learn's zero_division=0; macro-F1 averages over the labels that occur in `gold` or
    `predicted`, as scikit-learn's f1_score(average="macro")."""
    matrix = confusion(gold, predicted, len(labels))
    true_positives = np.diag(matrix).astype(np.float64)
    predicted_counts, gold_counts = matrix.sum(0), matrix.sum(1)
    precision = np.divide(
        true_positives, predicted_counts, out=np.zeros_like(true_positives), where=predicted_counts > 0
    )
    recall = np.divide(true_positives, gold_counts, out=np.zeros_like(true_positives), where=gold_counts > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(both), where=both > 0)
    return {
        "examples": int(len(gold)),
        "accuracy": float(true_positives.sum() / max(1, len(gold))),
        "macro_f1": float(f1[(gold_counts + predicted_counts) > 0].mean()),
        "per_label": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(gold_counts[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": list(labels),
        "confusion": matrix.tolist(),
    }


def regression_scores(gold: np.ndarray, predicted: np.ndarray) -> dict:
    """MAE, RMSE and MAPE (in %, over the targets that are not zero, as a percentage of the true value)
    of `predicted` against `gold`, both (examples, outputs); over several outputs, each metric is the mean
    of the outputs' own."""
    errors = predicted - gold
    nonzero = gold != 0
    # each output's MAPE over its own targets that are not zero, averaged over the outputs that have any
    # (pooled, an output with fewer zero targets weighed more)
    per_output = [
        np.mean(np.abs(errors[nonzero[:, j], j] / gold[nonzero[:, j], j]))
        for j in range(gold.shape[1])
        if nonzero[:, j].any()
    ]
    mape = float(np.mean(per_output) * 100) if per_output else math.nan
    return {
        "examples": int(gold.shape[0]),
        "mae": float(np.mean(np.abs(errors))),
        # each output's RMSE, averaged over the outputs (data.horizon > 1), as scikit-learn's
        # root_mean_squared_error; one RMSE over every output pooled is larger
        "rmse": float(np.mean(np.sqrt(np.mean(errors**2, axis=0)))),
        "mape": mape,
        "mape_targets": int(nonzero.sum()),  # the targets MAPE is over (a zero target has no percentage)
    }


def label_scores(gold: list[str], predicted: list[str], labels: tuple[str, ...]) -> dict:
    """`classification_scores` of label strings; a label outside `labels` (one the model never saw, in a
    baseline's output: `evaluate --data` refuses test data with one, naming its line) is added after them."""
    extra = sorted((set(gold) | set(predicted)) - set(labels))
    every = (*labels, *extra)
    index = {label: i for i, label in enumerate(every)}
    return classification_scores(
        np.asarray([index[g] for g in gold]), np.asarray([index[p] for p in predicted]), every
    )
