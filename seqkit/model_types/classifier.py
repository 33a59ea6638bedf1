"""The sequence classifier and forecaster (`model.type = "classifier"`): labels or numbers for a text or
a sequence of numbers (`seqkit predict`)."""

from __future__ import annotations

from pathlib import Path

import torch

from seqkit.config import Config
from seqkit.data.encoding import Codec, make_batch
from seqkit.data.tokenizer import EOS
from seqkit.decoding.classify import predictions, require_window
from seqkit.errors import ConfigError
from seqkit.model_types.base import ModelType, described_fixes
from seqkit.model_types.inspection import Inspection, named_traces
from seqkit.models.classifier import SequenceClassifier
from seqkit.models.trace import trace_rnn
from seqkit.training import classifier as trainer
from seqkit.wording import counted


def build(cfg: Config, model_dir: Path) -> tuple[Codec, SequenceClassifier]:
    codec = Codec.read(model_dir)
    encoding = codec.encoding
    return codec, SequenceClassifier.from_config(
        cfg.model, codec.vocab_size, encoding.features, encoding.outputs
    )


def no_perplexity(model, codec, cfg: Config, source: Path | None, reference: Path) -> dict:
    raise ConfigError(
        "a classifier has no perplexity; score it with `seqkit evaluate --model DIR --data FILE` (accuracy, "
        "F1, or MAE / RMSE for a forecaster)"
    )


@torch.no_grad()
def inspect(model: SequenceClassifier, codec: Codec, cfg: Config, text: str) -> Inspection:
    """Classify `text` (or a line of numbers), then trace the encoder on it: hidden states, gates and,
    with attention pooling, the weight of each step."""
    if not text:
        raise ConfigError("--text: empty; give a sentence (or a line of numbers) to classify")
    model.eval()
    examples = codec.examples([text], ["--text"])
    if cfg.data.series:  # as predict: a forecast from another number of steps is not the one it learned
        require_window(examples, cfg.data.window)
    inputs = codec.inputs(examples)
    batch = make_batch(inputs, [0])
    pooled, weights = model.pooled(batch.inputs, batch.lengths)
    outputs = model.outputs(pooled, batch.inputs).numpy()
    prediction = predictions(codec.encoding, outputs)[0]
    embedded = model.encoder.embedding(batch.inputs)[0]  # (steps, embedding)
    cell = cfg.model.cell
    traces, _ = trace_rnn(model.encoder.rnn, cell, embedded)
    if codec.tokenizer is not None:
        steps = codec.tokenizer.tgt_pieces(inputs[0])
    else:  # numbers: the steps by position (the values are in trace.json's text)
        steps = [f"t{t + 1}" for t in range(len(inputs[0]))]
    output = (
        prediction.label
        if prediction.label is not None
        else " ".join(f"{v:g}" for v in prediction.values or [])
    )
    return Inspection(
        text,
        output,
        cell,
        named_traces("encoder ", traces, steps),
        None,
        pooling=None if weights is None else weights[0].tolist(),
        probabilities=prediction.probabilities,
    )


def probe(model: SequenceClassifier, length: int) -> None:
    if model.reads_numbers:
        linear = model.encoder.embedding
        assert isinstance(linear, torch.nn.Linear)
        inputs = torch.zeros(2, length, linear.in_features)
    else:
        inputs = torch.full((2, length), EOS + 1, dtype=torch.long)
    model(inputs, torch.tensor([length, length]))


def describe_data(data: dict[str, int]) -> str:
    skipped = ", ".join(
        f"{data[key]:,} {what} skipped"
        for key, what in (("skipped", "empty"), ("too_long", "longer than decode.max_input_pieces"))
        if data.get(key)
    )
    skipped = f" ({skipped})" if skipped else ""
    fixed = described_fixes(data)
    skipped += f" (removed {fixed})" if fixed else ""
    held_out = " held out of data.train" if data.get("dev_held_out") else ""
    if data.get("labels"):
        what = counted(data["labels"], "label")
    else:
        what = f"{counted(data['outputs'], 'value')} to forecast"
    reads = (
        f"vocabulary {data['vocab']:,}"
        if data.get("vocab")
        else f"{counted(data['features'], 'feature')} per step"
    )
    return (
        f"{data['train_examples']:,} training examples{skipped}, {data['dev_examples']:,} dev examples{held_out}; "
        f"{what}; {reads}"
    )


MODEL_TYPE = ModelType(
    name="classifier",
    title="sequence classifier",
    task="predict",
    attends=False,
    build=build,
    train=trainer.train,
    perplexity=no_perplexity,
    inspect=inspect,
    probe=probe,
    time_name="steps",
    per_step=lambda layer: False,
    describe_data=describe_data,
    unit="examples",
    train_score=lambda data: "accuracy" if data.get("labels") else None,  # a forecaster: the loss alone
)
