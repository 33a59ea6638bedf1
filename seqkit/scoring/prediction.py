"""`seqkit evaluate --model DIR --data FILE` for a classifier or forecaster: its scores on labelled test
data beside the baselines it must beat (scoring/baselines.py), as one JSON-ready dict.

The test data is read as the model's training data was (data.format, columns, data.features); for a
model trained on a series, FILE is a series and its test part (the last data.test_fraction of its
windows, by time) is scored.
"""

from __future__ import annotations

import numpy as np

from seqkit.config import Config
from seqkit.data.encoding import Codec
from seqkit.data.labelled import Examples, kind_of, read_examples
from seqkit.data.series import split_series
from seqkit.decoding.classify import Head, head_outputs, predictions
from seqkit.errors import DataError, SeqkitError
from seqkit.scoring.baselines import CLASSIFIER_BASELINES, FORECASTER_BASELINES, SERIES_BASELINES
from seqkit.scoring.classification import label_scores, regression_scores


def read_test(cfg: Config, data: str) -> tuple[Examples, Examples | str]:
    """The test examples of `data`, and the training examples the baselines learn from (or why they
    cannot be read)."""
    regression = cfg.model.head == "regression"
    if cfg.data.series:
        split = split_series(data, cfg.data, regression, option="--data")
        if not len(split.test):
            raise DataError(
                f"--data {data}: the model was trained with data.test_fraction = 0, which holds no window of a "
                "series out to test on; train with a test share (--set data.test_fraction=0.1, say) to evaluate"
            )
        return split.test, split.train
    reads_numbers = kind_of(cfg.data.train, cfg.data) == "csv"
    if (kind_of(data, cfg.data) == "csv") != reads_numbers:  # (its lines would fail to parse one by one)
        raise DataError(
            f"--data {data}: "
            + (
                "a file of text (not .csv), but the model reads numbers; give its test data as a .csv file"
                if reads_numbers
                else "a .csv file of numbers, but the model reads text; give its test data as a .tsv file "
                "(label, tab, text) or as {prefix}.text + {prefix}.label"
            )
        )
    test = read_examples(data, cfg.data, "--data", regression, skip_unlabelled=True)
    if not len(test):
        lacking = (
            "is empty or has an empty label or text" if test.texts is not None else "is empty or has no label"
        )
        raise DataError(
            f"--data {data}: no labelled examples: every line {lacking} ({test.skipped:,} skipped)"
        )
    try:
        train: Examples | str = read_examples(cfg.data.train, cfg.data, "data.train", regression)
    except SeqkitError as e:  # moved or deleted since training: the model is still scored
        train = f"the training data cannot be read ({e})"
    return test, train


def evaluate(cfg: Config, codec: Codec, head: Head, data: str, batch_size: int) -> dict:
    """The model's scores on `data` (its outputs computed by `head`: the torch model's or an ONNX
    export's), each baseline's beside them, and the predictions themselves."""
    test, train = read_test(cfg, data)
    if codec.encoding.head != "regression":
        codec.encoding.label_ids(test)  # a label the model never saw is an error naming its line
    outputs = head_outputs(head, codec.inputs(test), batch_size)
    found = predictions(codec.encoding, outputs)
    regression = codec.encoding.head == "regression"
    baselines = FORECASTER_BASELINES if regression else CLASSIFIER_BASELINES
    if regression:
        assert test.values is not None
        gold = test.values
        predicted = np.asarray([p.values for p in found])
        result = {"kind": "forecaster", "scores": regression_scores(gold, predicted)}
    else:
        predicted_labels = [p.label or "" for p in found]
        result = {
            "kind": "classifier",
            "scores": label_scores(test.labels, predicted_labels, codec.encoding.labels),
        }
    answers = {
        name: train if isinstance(train, str) else baseline(train, test)
        for name, baseline in baselines.items()
    }
    answers.update({name: baseline(test) for name, baseline in SERIES_BASELINES.items()})
    rows = []
    for name, said in answers.items():
        if said is None:
            continue
        if isinstance(said, str):
            rows.append({"name": name, "skipped": said})
        elif regression:
            rows.append({"name": name, **regression_scores(gold, np.asarray(said, dtype=np.float64))})
        else:
            scores = label_scores(test.labels, list(said), codec.encoding.labels)
            rows.append({"name": name, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]})
    return {
        "data": str(data),
        # lines left out of the scores: an empty label or text, an empty line of numbers
        "skipped_lines": test.skipped,
        **result,
        "baselines": rows,
        "predicted": predicted.tolist() if regression else predicted_labels,
        "gold": gold.tolist() if regression else test.labels,
    }
