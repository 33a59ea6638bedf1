"""How a classifier's examples become tensors and its outputs labels or numbers: the label set, the
standardisation of numbers (fitted on the training part only) and the padded batches. Stored in the
model directory as encoding.json, beside the tokenizer of a text model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from seqkit.config import Config
from seqkit.data.labelled import Examples, parse_numbers
from seqkit.data.tokenizer import PAD, UNK, Tokenizer
from seqkit.errors import DataError, ModelDirError

if TYPE_CHECKING:  # (torch only for batches: an ONNX export's classifier reads its encoding without it)
    import torch

FILE = "encoding.json"


@dataclass(frozen=True)
class Encoding:
    inputs: Literal["text", "numbers"]
    head: Literal["softmax", "sigmoid", "regression"]
    labels: tuple[str, ...]  # the classes, sorted; () for regression (sigmoid: the second is positive)
    features: int  # numbers per time step; 0 for text
    input_mean: tuple[float, ...]  # per feature, over the training steps
    input_std: tuple[float, ...]
    outputs: int  # regression: values predicted per example (data.horizon for a series)
    target_mean: float = 0.0  # regression: of the training targets
    target_std: float = 1.0
    columns: tuple[str, ...] = ()  # a series: the input column of each feature

    @classmethod
    def fit(
        cls, train: Examples, head: str, columns: tuple[str, ...] = (), dev_labels: Sequence[str] = ()
    ) -> Encoding:
        """The encoding of a training set: its labels and the mean and deviation of its numbers. A label
        of `dev_labels` that the training set lacks (a rare one, all of whose examples a held-out dev
        set drew) is a label too: a class the model never learns, whose dev examples count as wrong."""
        mean: tuple[float, ...] = ()
        std: tuple[float, ...] = ()
        features = 0
        if train.numbers is not None:
            steps = np.concatenate(train.numbers)  # (all steps, features)
            features = steps.shape[1]
            mean, std = tuple(steps.mean(0).tolist()), tuple(_nonzero(steps.std(0)).tolist())
        if head == "regression":
            assert train.values is not None
            return cls(
                "text" if train.texts is not None else "numbers",
                "regression",
                (),
                features,
                mean,
                std,
                train.values.shape[1],
                float(train.values.mean()),
                float(_nonzero(np.asarray([train.values.std()]))[0]),
                columns,
            )
        labels = tuple(sorted(set(train.labels)))
        if head == "sigmoid" and len(labels) != 2:
            raise DataError(
                f"model.head = sigmoid is for two labels, and the training data has {len(labels)} "
                f"({', '.join(labels[:10])}); use model.head = softmax"
            )
        if len(labels) < 2:
            raise DataError(
                f"the training data has one label ({labels[0]!r}); a classifier needs two or more"
            )
        dev_only = sorted(set(dev_labels) - set(labels))
        if head == "sigmoid" and dev_only:
            raise DataError(
                f"model.head = sigmoid is for two labels, and the dev data has another ({dev_only[0]!r}, not in "
                f"the training data: {', '.join(labels)}); use model.head = softmax, or fix the dev labels"
            )
        labels = tuple(sorted(set(labels) | set(dev_only)))
        inputs: Literal["text", "numbers"] = "text" if train.texts is not None else "numbers"
        return cls(
            inputs,
            head,  # type: ignore[arg-type]  # (checked by the config: softmax or sigmoid here)
            labels,
            features,
            mean,
            std,
            1 if head == "sigmoid" else len(labels),
            columns=columns,
        )

    # -- the model directory

    def write(self, model_dir: Path) -> None:
        from seqkit.outputs import atomic_write

        atomic_write(model_dir / FILE, self.to_bytes())

    def to_bytes(self) -> bytes:
        """encoding.json's contents."""
        return json.dumps(asdict(self), indent=1).encode("utf-8")

    @classmethod
    def read(cls, model_dir: Path, fix: str = "retrain the model or restore the file") -> Encoding:
        """The encoding.json of `model_dir`; a ModelDirError, ending with `fix`, when it is missing or does
        not describe a model (a hand edit once gave a traceback at the first prediction)."""
        try:
            values = json.loads((model_dir / FILE).read_text(encoding="utf-8"))
            encoding = cls(**{key: tuple(v) if isinstance(v, list) else v for key, v in values.items()})  # type: ignore[arg-type]
        except FileNotFoundError:
            raise ModelDirError(
                f"{model_dir}: no {FILE} (the classifier's labels and scaling); {fix}"
            ) from None
        except (ValueError, TypeError, AttributeError):
            raise ModelDirError(f"{model_dir / FILE}: damaged; {fix}") from None
        problem = encoding.problem()
        if problem:
            raise ModelDirError(f"{model_dir / FILE}: damaged ({problem}); {fix}")
        return encoding

    def problem(self) -> str | None:
        """What does not fit together in the fields, if anything."""
        if self.inputs not in ("text", "numbers") or self.head not in ("softmax", "sigmoid", "regression"):
            return f"inputs {self.inputs!r}, head {self.head!r}"
        if not all(isinstance(label, str) for label in self.labels):
            return "labels must be strings"
        outputs = {"softmax": len(self.labels), "sigmoid": 1, "regression": self.outputs}[self.head]
        labels_wanted = {"softmax": len(self.labels) >= 2, "sigmoid": len(self.labels) == 2,
                         "regression": not self.labels}[self.head]  # fmt: skip
        if not labels_wanted or self.outputs != outputs or not _whole(self.outputs) or self.outputs < 1:
            return f"{len(self.labels)} labels and {self.outputs!r} outputs for a {self.head} head"
        numbers = self.inputs == "numbers"
        if not _whole(self.features) or not (self.features >= 1 if numbers else self.features == 0):
            return f"features {self.features!r} for {self.inputs} inputs"
        features = self.features
        scaling = [*self.input_mean, *self.input_std, self.target_mean, self.target_std]
        if (
            len(self.input_mean) != features
            or len(self.input_std) != features
            or not all(
                isinstance(x, int | float) and not isinstance(x, bool) and np.isfinite(x) for x in scaling
            )
            or min([*self.input_std, self.target_std]) <= 0
        ):
            return f"the scaling must be {features} means and {features} deviations above 0, as numbers"
        return None

    # -- examples to tensors

    def label_ids(self, examples: Examples) -> np.ndarray:
        """The index of each example's label in `labels`; a label the model never saw is an error."""
        index = {label: i for i, label in enumerate(self.labels)}
        ids = []
        for label, place in zip(examples.labels, examples.places, strict=True):
            if label not in index:
                shown = ", ".join(self.labels[:12]) + (", ..." if len(self.labels) > 12 else "")
                raise DataError(
                    f"{place}: label {label!r} is not one the model was trained on ({shown}); fix the label "
                    "or train a model that has it"
                )
            ids.append(index[label])
        return np.asarray(ids, dtype=np.int64)

    def scaled_inputs(self, numbers: list[np.ndarray], places: list[str] | None = None) -> list[np.ndarray]:
        """Numbers standardised with the training statistics, as float32; a value too far from the
        training data for float32 once standardised (1e40) is an error naming its place, not a NaN
        prediction (an inf input gives NaN gates)."""
        mean, std = np.asarray(self.input_mean), np.asarray(self.input_std)
        scaled = []
        for number, values in enumerate(numbers):
            if values.shape[1] != self.features:
                raise DataError(
                    f"a sequence of {values.shape[1]} features per step; the model reads {self.features}"
                )
            with np.errstate(over="ignore"):
                standard = ((values - mean) / std).astype(np.float32)
            if not np.isfinite(standard).all():
                place = places[number] if places else f"sequence {number + 1}"
                value = values[~np.isfinite(standard)][0]
                raise DataError(
                    f"{place}: value {value:g} is too far from the training data's range (beyond float32 "
                    "once standardised); fix the value"
                )
            scaled.append(standard)
        return scaled

    def scaled_targets(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.target_mean) / self.target_std).astype(np.float32)

    def unscaled(self, outputs: np.ndarray) -> np.ndarray:
        """Regression outputs in the targets' own units."""
        return outputs.astype(np.float64) * self.target_std + self.target_mean


def summary(cfg: Config, encoding: Encoding) -> dict:
    """What a classifier reads and says: `seqkit info`'s "classifier", which an export's export.json
    keeps too."""
    return {
        "head": encoding.head,
        "pooling": cfg.model.pooling,
        "bag_of_tokens": cfg.model.bag_of_tokens,
        "activation": cfg.model.activation if cfg.model.cell == "rnn" else None,
        "inputs": encoding.inputs,
        "labels": list(encoding.labels),
        "features": encoding.features,
        "columns": list(encoding.columns),
        "window": cfg.data.window if cfg.data.series else None,  # the steps a line of a series holds
        "outputs": encoding.outputs,
    }


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _nonzero(std: np.ndarray) -> np.ndarray:
    """A constant feature is divided by 1, not by 0."""
    return np.where(std > 1e-12, std, 1.0)


@dataclass
class ClassBatch:
    inputs: torch.Tensor  # (batch, steps) token ids padded with PAD, or (batch, steps, features) floats
    lengths: torch.Tensor  # (batch,) steps of each example, on the CPU (packing reads them there)
    targets: torch.Tensor | None  # (batch,) label ids, or (batch, outputs) standardised values

    def to(self, device: torch.device) -> ClassBatch:
        if device.type == "cpu":
            return self
        targets = None if self.targets is None else self.targets.to(device)
        return ClassBatch(self.inputs.to(device), self.lengths, targets)


def padded(rows: list) -> tuple[np.ndarray, np.ndarray]:
    """Examples' inputs (token-id lists, or (steps, features) float32 arrays) as one padded array ->
    (batch, steps) int64 ids padded with PAD, or (batch, steps, features) float32 padded with 0, and
    the lengths (batch,) int64. Torch's batches and an ONNX export's are both made here."""
    lengths = np.asarray([len(row) for row in rows], dtype=np.int64)
    longest = int(lengths.max())
    if isinstance(rows[0], np.ndarray):
        array = np.zeros((len(rows), longest, rows[0].shape[1]), dtype=np.float32)
    else:
        array = np.full((len(rows), longest), PAD, dtype=np.int64)
    for r, row in enumerate(rows):
        array[r, : len(row)] = row
    return array, lengths


def make_batch(inputs: list, indices: list[int], targets: np.ndarray | None = None) -> ClassBatch:
    """Padded tensors of examples `indices`: `inputs` are token-id lists or (steps, features) arrays."""
    import torch

    array, lengths = padded([inputs[i] for i in indices])
    chosen = None if targets is None else torch.from_numpy(targets[indices])
    return ClassBatch(torch.from_numpy(array), torch.from_numpy(lengths), chosen)


def encode_inputs(encoding: Encoding, tokenizer: Tokenizer | None, examples: Examples) -> list:
    """Each example's model input: token ids (text) or standardised numbers."""
    if examples.texts is not None:
        if tokenizer is None or encoding.inputs != "text":
            raise DataError(
                "text examples for a model that reads numbers; give numbers, as it was trained on"
            )
        # a text of characters the tokenizer drops (a zero-width space, a control character) has no
        # pieces, and a recurrent encoder cannot read nothing: it reads one unknown piece instead
        return [ids or [UNK] for ids in tokenizer.encode_tgt(examples.texts)]
    assert examples.numbers is not None
    if encoding.inputs != "numbers":
        raise DataError("number sequences for a model that reads text; give text, as it was trained on")
    return encoding.scaled_inputs(examples.numbers, examples.places)


@dataclass(frozen=True)
class Codec:
    """What a trained classifier reads and says: its encoding and, for text, its tokenizer."""

    encoding: Encoding
    tokenizer: Tokenizer | None

    @classmethod
    def read(cls, model_dir: Path) -> Codec:
        from seqkit.data.tokenizer import load_tokenizer

        encoding = Encoding.read(model_dir)
        return cls(encoding, load_tokenizer(model_dir) if encoding.inputs == "text" else None)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.tgt_vocab_size if self.tokenizer is not None else 0

    def files(self) -> dict[str, bytes]:
        """The model directory's files of what the model reads and says (an export copies them):
        encoding.json and the tokenizer's, by name."""
        tokenizer_files = self.tokenizer.files() if self.tokenizer is not None else {}
        return {FILE: self.encoding.to_bytes(), **tokenizer_files}

    def inputs(self, examples: Examples) -> list:
        return encode_inputs(self.encoding, self.tokenizer, examples)

    def examples(self, lines: list[str], places: list[str]) -> Examples:
        """Unlabelled examples of input lines: text, or numbers x1,x2,... (data.features per step);
        `places` name each line in errors."""
        if self.encoding.inputs == "text":
            return Examples(lines, None, [], None, places)
        features = self.encoding.features
        numbers = [
            parse_numbers(line, features, place, unlabelled=True)
            for line, place in zip(lines, places, strict=True)
        ]
        return Examples(None, numbers, [], None, places)
