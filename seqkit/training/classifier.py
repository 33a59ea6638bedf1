"""Training a sequence classifier or forecaster: its data (labelled text, number sequences or the
windows of one series), the update step and validation. The weights with the best dev accuracy (RMSE,
for regression) are kept. The loop itself is `loop.fit`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqkit import modeldir
from seqkit.config import Config, checks
from seqkit.data.batches import training_batches
from seqkit.data.corpus import hold_out
from seqkit.data.encoding import Encoding, encode_inputs, make_batch
from seqkit.data.labelled import Examples, read_examples
from seqkit.data.series import split_series
from seqkit.data.tokenizer import Tokenizer
from seqkit.decoding.classify import head_outputs, predicted_ids
from seqkit.decoding.torch_steps import ClassifierHead
from seqkit.errors import ConfigError, DataError
from seqkit.models.classifier import SequenceClassifier, head_loss, parts_loss
from seqkit.runtime.distributed import World
from seqkit.scoring.classification import classification_scores, regression_scores
from seqkit.training.log import EndRecord
from seqkit.training.loop import fit
from seqkit.training.run import built, run_training, seeded_rng, text_tokenizer
from seqkit.training.task import DevScores, Reporter, StepLoss, TrainingTask


@dataclass(frozen=True)
class Split:
    """One part of the data, encoded: the model's inputs and targets, beside the examples as read."""

    examples: Examples
    inputs: list  # token ids or scaled (steps, features) arrays
    targets: np.ndarray  # label ids (examples,), or scaled values (examples, outputs) float32


def read_splits(
    cfg: Config, fixes: Counter | None = None
) -> tuple[Examples, Examples, tuple[str, ...], bool]:
    """The training and dev examples as configured, the input columns of a series, and whether the dev
    set was held out of data.train; `fixes` counts the training lines that text reading mended."""
    regression = cfg.model.head == "regression"
    if cfg.data.series:
        split = split_series(cfg.data.series, cfg.data, regression)
        return split.train, split.dev, tuple(split.columns), False
    if not cfg.data.train:
        raise DataError("data.train is not set; give it in the config file or with --set data.train=PATH")
    train = read_examples(cfg.data.train, cfg.data, "data.train", regression, fixes)
    if cfg.data.dev:
        return train, read_examples(cfg.data.dev, cfg.data, "data.dev", regression), (), False
    chosen = set(hold_out(len(train), cfg.data.dev_size, cfg.train.seed))
    kept = [i for i in range(len(train)) if i not in chosen]
    # data.train's empty lines, skipped before the dev examples were held out, are counted with training
    return dataclasses.replace(train.take(kept), skipped=train.skipped), train.take(sorted(chosen)), (), True


def encode_split(encoding: Encoding, tokenizer: Tokenizer | None, examples: Examples) -> Split:
    inputs = encode_inputs(encoding, tokenizer, examples)
    if encoding.head == "regression":
        assert examples.values is not None
        targets = encoding.scaled_targets(examples.values)
    else:
        targets = encoding.label_ids(examples)
    return Split(examples, inputs, targets)


def class_weights(encoding: Encoding, targets: np.ndarray) -> torch.Tensor:
    """scikit-learn's "balanced" weights: examples / (labels x the label's count); an absent label gets 1."""
    counts = np.bincount(targets, minlength=len(encoding.labels)).astype(np.float64)
    weights = np.where(counts > 0, len(targets) / (len(encoding.labels) * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


def dev_scores(
    model: SequenceClassifier, encoding: Encoding, dev: Split, batch_size: int
) -> dict[str, float]:
    """Dev loss, and accuracy with macro-F1 (classifier) or RMSE with MAE in the targets' units."""
    model.eval()  # (the loop puts it back in training mode)
    outputs = head_outputs(ClassifierHead(model), dev.inputs, batch_size)
    _, loss, _ = head_loss(encoding.head, torch.from_numpy(outputs), torch.from_numpy(dev.targets))
    scores = {"loss": loss / max(1, len(dev.inputs))}
    if encoding.head == "regression":
        gold = encoding.unscaled(dev.targets)
        measured = regression_scores(gold, encoding.unscaled(outputs))
        return {**scores, "rmse": measured["rmse"], "mae": measured["mae"]}
    measured = classification_scores(dev.targets, predicted_ids(encoding, outputs), encoding.labels)
    return {**scores, "accuracy": measured["accuracy"], "macro_f1": measured["macro_f1"]}


def train(
    cfg: Config,
    output_dir: Path,
    reporter: Reporter | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> EndRecord:
    """Train a classifier or forecaster into `output_dir` (or continue its latest checkpoint, with
    `resume`; with `overwrite`, replace the trained run it holds); returns the closing record."""
    return run_training(_train, cfg, output_dir, reporter, resume, overwrite)


def _header_like(*parts: Examples) -> str | None:
    """A warning when the first line of a file has a label no other example has: a header row (`label<TAB>
    text`) that the classifier would learn as a class of one example, then score at every evaluation."""
    labels = Counter(label for part in parts for label in part.labels)
    for part in parts:
        for place, label in zip(part.places, part.labels, strict=False):
            if place.endswith(":1") and labels[label] == 1 and len(labels) > 1:
                return (
                    f"{place}: label {label!r} is on this line alone: a header row? The model learns it as a "
                    "class of one example; remove the line if it is one"
                )
    return None


def _measurements(examples: Examples) -> str | None:
    """A warning when every label is a number and some have a fraction: measurements (scikit-learn refuses
    such "continuous" targets for a classifier), which a softmax or sigmoid head learns as a class each."""
    labels = sorted(set(examples.labels))
    try:
        values = [float(label) for label in labels]
    except ValueError:
        return None
    if all(value.is_integer() for value in values):  # (none, or classes numbered 0, 1, 2...)
        return None
    return (
        f"the labels are numbers with fractions ({len(labels):,} different, such as {labels[0]!r}): the model "
        "learns each as a class of its own; to predict numbers, set model.head = regression"
    )


def _train(cfg: Config, output_dir: Path, world: World, reporter: Reporter, resume: bool) -> EndRecord:
    # (nothing read it: the weights came out the same. Checked here, not with the config's other checks,
    # so that a model trained with it before still loads; its resume is told, not refused)
    if cfg.train.label_smoothing:
        if not resume:
            raise ConfigError(
                "train.label_smoothing smooths the targets of a translation or a language model; a "
                "classifier's loss has no smoothing: drop it"
            )
        if world.is_main:
            reporter.warning("train.label_smoothing does nothing for a classifier; drop it from the config")
    fixes: Counter = Counter()
    train_examples, dev_examples, columns, held_out = read_splits(cfg, fixes)
    if held_out and (len(train_examples) < 1 or len(dev_examples) < 1):
        raise DataError(
            f"data.train = {cfg.data.train!r}: {len(train_examples) + len(dev_examples):,} labelled examples, too "
            "few to hold data.dev_size of them out for dev and train on the rest; give more, or a data.dev file"
        )
    for part, examples, spec in (
        ("train", train_examples, cfg.data.train),
        ("dev", dev_examples, cfg.data.dev),
    ):
        if not len(examples):  # (each line empty, or an empty file)
            raise DataError(
                f"data.{part} = {spec!r}: no labelled examples ({examples.skipped:,} empty lines skipped); a "
                "classifier needs at least one"
            )
    header = None if resume else _header_like(train_examples, dev_examples)
    if header and world.is_main:
        reporter.warning(header)
    measurements = None if resume else _measurements(train_examples)
    if measurements and world.is_main:
        reporter.warning(measurements)
    tokenizer = None
    if train_examples.texts is not None:
        tokenizer = text_tokenizer(world, output_dir, resume, train_examples.texts, cfg, "a classifier")
    if tokenizer is None and not resume and world.is_main:  # (as training/run.py's unread keys)
        named = checks.unread_keys(cfg)  # (the run's start warned of these already)
        for key in (key for key in checks.given(cfg.tokenizer) if f"tokenizer.{key}" not in named):
            reporter.warning(
                f"tokenizer.{key}: this classifier reads numbers and has no tokenizer; it is not read (drop it "
                "from the config)"
            )
    if tokenizer is None and cfg.model.word_dropout:
        raise ConfigError(
            f"model.word_dropout = {cfg.model.word_dropout:g}: this classifier reads numbers, not tokens; drop "
            "model.word_dropout"
        )
    if tokenizer is None and cfg.model.bag_of_tokens:
        raise ConfigError(
            "model.bag_of_tokens: this classifier reads numbers, not tokens; drop model.bag_of_tokens"
        )
    if resume:
        encoding = Encoding.read(output_dir)
    else:
        encoding = Encoding.fit(train_examples, cfg.model.head, columns, dev_examples.labels)
        dev_only = sorted(set(encoding.labels) - set(train_examples.labels))
        if dev_only and world.is_main:
            reporter.warning(
                f"label {dev_only[0]!r}{f' (and {len(dev_only) - 1} more)' if len(dev_only) > 1 else ''} is in "
                "the dev data only: the model has it as a class it never learns, and dev scores count its "
                "examples wrong; give training examples of it"
            )
    train_data = encode_split(encoding, tokenizer, train_examples)
    # a text of tens of thousands of pieces made one step of many minutes: the training skips the texts
    # longer than the model reads at all (decode.max_input_pieces; data.max_length is the sentence
    # pairs', and 100 pieces would cut a document classifier's data)
    limit = cfg.decode.max_input_pieces
    kept = [i for i, row in enumerate(train_data.inputs) if tokenizer is None or len(row) <= limit]
    too_long = len(train_data.inputs) - len(kept)
    if too_long:
        train_data = Split(
            train_data.examples.take(kept), [train_data.inputs[i] for i in kept], train_data.targets[kept]
        )
    if not kept:
        raise DataError(
            f"every training example is longer than decode.max_input_pieces = {limit} pieces; raise it"
        )
    dev = encode_split(encoding, tokenizer, dev_examples)
    # built before the run writes its config: a model that cannot be (too large for memory) leaves no
    # directory behind, as the other model types'
    vocab_size = tokenizer.tgt_vocab_size if tokenizer is not None else 0
    model = built(
        lambda: SequenceClassifier.from_config(cfg.model, vocab_size, encoding.features, encoding.outputs),
        world.device,
    )
    if world.is_main:
        modeldir.start(output_dir, cfg, tokenizer, resume)
        if not resume:
            encoding.write(output_dir)
        if tokenizer is not None:  # for `info --vocab`, as the other model types have them
            ids = np.fromiter((i for row in train_data.inputs for i in row), dtype=np.int64)
            both = (tokenizer.tgt_vocab_size, tokenizer.tgt_vocab_size)
            modeldir.write_vocab_counts(output_dir, None, ids, both)
    model = model.to(world.device)
    train_model = world.wrap(model)
    weights = None
    if cfg.train.class_weights == "balanced":
        weights = class_weights(encoding, train_data.targets).to(world.device)
    sizes = [len(row) for row in train_data.inputs]

    def step(indices: list[int]) -> StepLoss:
        share, weight = world.shard(indices)
        batch = make_batch(train_data.inputs, share, train_data.targets).to(world.device)
        assert batch.targets is not None
        parts = train_model(batch.inputs, batch.lengths, parts=True)  # (parts, batch, outputs)
        objective, loss, correct = parts_loss(encoding.head, parts, batch.targets, weights)
        # the mean over the whole batch's examples (DDP averages the processes' gradients: * world.size).
        # The loss logged is the prediction's own, unweighted, as validation's: the objective adds each
        # part's loss (a bag beside the RNN doubles it) and weighs labels (train.class_weights), so drawn
        # beside the dev loss it would not compare
        share_loss = StepLoss(objective * world.size / len(indices), loss, loss, len(share), correct)
        return share_loss.weighted(weight)

    task = TrainingTask(
        batches=lambda epoch: training_batches(sizes, cfg.train.batch_tokens, seeded_rng(cfg, epoch)),
        step=step,
        validate=lambda: DevScores(dev_scores(model, encoding, dev, cfg.decode.batch_size)),
        data={
            "train_examples": len(train_data.inputs),
            "dev_examples": len(dev_examples),
            "dev_held_out": int(held_out),
            "skipped": train_examples.skipped,
            "too_long": too_long,
            # named as a translation's start record names them (model_types/base.py FIXES)
            "bom_lines": fixes["bom"],
            "cr_lines": fixes["cr"],
            "control_lines": fixes["controls"],
            "labels": len(encoding.labels),
            "outputs": encoding.outputs,
            "features": encoding.features,
            "vocab": vocab_size,
        },
    )
    return fit(cfg, output_dir, model, task, reporter, resume, world)
