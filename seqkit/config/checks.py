"""Checks across a config's keys: combinations that cannot hold, each an error naming the key and the fix.

seqkit.config.from_dict runs them once every key has its type; each section's own choices and ranges are checked
there, as the keys are read.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from seqkit.errors import ConfigError

if TYPE_CHECKING:
    from seqkit.config import Config, TokenizerConfig


def check(config: Config, source: str) -> None:
    """Every cross-key check of `config`; `source` names the file (or flags) in the errors."""
    _check_tokenizer(config.tokenizer, source)
    _check_classifier(config, source)
    if config.decode.coverage_penalty and config.decode.beam_size == 1:
        raise ConfigError(
            f"{source}: decode.coverage_penalty re-ranks a beam's finished hypotheses, and greedy search "
            "(beam size 1) has one; raise the beam size or set the penalty to 0"
        )
    if config.decode.coverage_penalty and config.decode.temperature:
        raise ConfigError(
            f"{source}: decode.coverage_penalty re-ranks a beam's finished hypotheses, and sampling "
            "(decode.temperature > 0) draws one; set the penalty or the temperature to 0"
        )
    if config.decode.shortlist and config.decode.temperature:
        raise ConfigError(
            f"{source}: decode.shortlist with sampling (decode.temperature > 0): the shortlist is the union of "
            "a batch's likely pieces, so a line's sample would depend on its batch-mates; drop the shortlist"
        )
    model = config.model
    if (model.copy or model.coverage) and model.type != "seq2seq":
        key = "copy" if model.copy else "coverage"
        raise ConfigError(f"{source}: model.{key} needs attention over a source: model.type = seq2seq")
    if model.copy_gate_start != "random" and not model.copy:
        raise ConfigError(
            f"{source}: model.copy_gate_start is the copy gate's first weights; set model.copy = true or "
            "drop it"
        )
    if model.copy and config.tokenizer.type == "sentencepiece" and not config.tokenizer.joint:
        raise ConfigError(
            f"{source}: model.copy copies source pieces into the output, so both sides need one vocabulary: "
            "set tokenizer.joint = true (and one tokenizer.model, if you bring your own)"
        )
    if model.copy and config.train.label_smoothing:
        raise ConfigError(
            f"{source}: train.label_smoothing with model.copy: the smoothing would spread the output layer's "
            "share only, not the copied one; set train.label_smoothing = 0 for a copy model"
        )
    # (a classifier has no output layer to tie: the key is unread there, and said so, not refused)
    tied = model.tie_embeddings and model.type != "classifier"
    if tied and model.embedding_size != model.decoder_hidden_size:
        raise ConfigError(
            f"{source}: model.tie_embeddings needs model.embedding_size == model.decoder_hidden_size "
            f"(got {model.embedding_size} and {model.decoder_hidden_size}); make them equal or untie"
        )


# the model keys each type never reads (seq2seq reads them all): set, they were trained past unsaid
_UNREAD_MODEL_KEYS = {
    "lm": ("encoder_hidden_size", "encoder_layers", "bidirectional", "attention"),
    "classifier": ("decoder_hidden_size", "decoder_layers", "attention", "tie_embeddings"),
}
# the data keys that choose a translation model's training pairs (corpus.py): unread by the other types
PAIR_FILTER_KEYS = ("max_length", "max_length_ratio", "dedupe")
# the data keys of a series: unread without data.series
_SERIES_KEYS = ("column", "inputs", "window", "horizon", "dev_fraction", "test_fraction", "season")
# the tokenizer keys of a SentencePiece model seqkit trains: unread for characters or a model of yours
_TRAINED_SENTENCEPIECE_KEYS = ("vocab_size", "src_vocab_size", "tgt_vocab_size", "model_type",
                               "character_coverage", "max_sentences")  # fmt: skip


def given(section: Any, keys: tuple[str, ...] | None = None) -> list[str]:
    """The keys of a config section (of `keys`, or all of them) given another value than their default."""
    names = keys if keys is not None else tuple(field.name for field in dataclasses.fields(section))
    defaults = type(section)()
    return [key for key in names if getattr(section, key) != getattr(defaults, key)]


def unread_keys(config: Config) -> list[str]:
    """The keys given another value than their default that this run would not read (a language model's
    model.attention, a series' data.column without data.series, a character tokenizer's vocab_size): a
    new run's warnings (training/run.py)."""
    unread = [f"model.{key}" for key in given(config.model, _UNREAD_MODEL_KEYS.get(config.model.type, ()))]
    if config.model.type != "seq2seq":
        unread += [f"data.{key}" for key in given(config.data, PAIR_FILTER_KEYS)]
    if not config.data.series:
        unread += [f"data.{key}" for key in given(config.data, _SERIES_KEYS)]
    tokenizer = config.tokenizer
    if tokenizer.type == "char" or tokenizer.model or tokenizer.src_model:
        keys = _TRAINED_SENTENCEPIECE_KEYS + (("joint",) if tokenizer.type == "char" else ())
        unread += [f"tokenizer.{key}" for key in given(tokenizer, keys)]
    return unread


# the dev scores each kind of model has, which train.best_metric may name; the first is what "auto" means
_METRICS = {"seq2seq": ("bleu", "chrf", "ppl"), "lm": ("ppl",), "classifier": ("accuracy", "macro_f1")}


def best_metric(config: Config) -> str:
    """train.best_metric with "auto" resolved: the dev score the run ranks its checkpoints by."""
    if config.train.best_metric != "auto":
        return config.train.best_metric
    if config.model.type == "classifier" and config.model.head == "regression":
        return "rmse"
    return _METRICS[config.model.type][0]


def _check_classifier(config: Config, source: str) -> None:
    """The classifier's keys against the rest: each misfit an error naming the key and the fix."""
    model, data = config.model, config.data
    kind = "regression" if model.type == "classifier" and model.head == "regression" else model.type
    metrics = ("rmse",) if kind == "regression" else _METRICS[model.type]
    if config.train.best_metric != "auto" and config.train.best_metric not in metrics:
        raise ConfigError(
            f"{source}: train.best_metric = {config.train.best_metric!r} is not a dev score of this model "
            f"(model.type = {model.type}{', head = regression' if kind == 'regression' else ''}); use auto "
            f"or {' or '.join(metrics)}"
        )
    if model.type != "classifier":
        changed = [
            key
            for key, default in (
                ("pooling", "last"),
                ("head", "softmax"),
                ("activation", "tanh"),
                ("word_dropout", 0.0),
                ("bag_of_tokens", False),
            )
            if getattr(model, key) != default
        ]
        if changed or data.series or config.train.class_weights != "none":
            key = (
                f"model.{changed[0]}" if changed else "data.series" if data.series else "train.class_weights"
            )
            raise ConfigError(f"{source}: {key} is a classifier's setting; set model.type = classifier")
        return
    if model.activation != "tanh" and model.cell != "rnn":
        raise ConfigError(
            f"{source}: model.activation = {model.activation!r} is the vanilla RNN's nonlinearity, and "
            f"model.cell = {model.cell!r} has its own gates; set model.cell = rnn or drop model.activation"
        )
    if data.series and not data.column:
        raise ConfigError(f"{source}: data.series needs data.column: the column to forecast or classify")
    if model.head == "regression" and model.bag_of_tokens:
        raise ConfigError(
            f"{source}: model.bag_of_tokens adds a second classifier's logits, and model.head = regression "
            "gives values, not logits; drop model.bag_of_tokens or use a softmax or sigmoid head"
        )
    if model.head == "regression" and config.train.class_weights != "none":
        raise ConfigError(
            f"{source}: train.class_weights weighs labels, and model.head = regression has none; drop it"
        )


def _check_tokenizer(cfg: TokenizerConfig, source: str) -> None:
    """Combinations of tokenizer keys that cannot hold: each an error, never silently ignored."""
    given = [key for key in ("model", "src_model", "tgt_model") if getattr(cfg, key)]
    if cfg.type == "char" and given:
        raise ConfigError(
            f"{source}: tokenizer.{given[0]} names a SentencePiece model but tokenizer.type = char; "
            "set tokenizer.type = sentencepiece or drop the model"
        )
    if cfg.model and (cfg.src_model or cfg.tgt_model):
        raise ConfigError(
            f"{source}: tokenizer.model (one model for both sides) and tokenizer.src_model/tgt_model "
            "(one per side) exclude each other; give one of them"
        )
    if cfg.model and not cfg.joint:
        raise ConfigError(
            f"{source}: tokenizer.joint = false with one tokenizer.model; give tokenizer.src_model and "
            "tokenizer.tgt_model for separate sides, or set tokenizer.joint = true"
        )
    if bool(cfg.src_model) != bool(cfg.tgt_model):
        missing = "tgt_model" if cfg.src_model else "src_model"
        raise ConfigError(f"{source}: tokenizer.{missing} is missing; separate sides need both models")
    if cfg.src_model and cfg.joint:
        raise ConfigError(
            f"{source}: tokenizer.src_model and tgt_model are separate vocabularies; set tokenizer.joint = false"
        )
    if cfg.joint and (cfg.src_vocab_size or cfg.tgt_vocab_size):
        raise ConfigError(
            f"{source}: tokenizer.src_vocab_size / tgt_vocab_size apply to separate sides; set "
            "tokenizer.joint = false, or use tokenizer.vocab_size for the joint vocabulary"
        )
