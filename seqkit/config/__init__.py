"""Typed configuration: the only place defaults live.

Built-in defaults < TOML config file < command-line overrides (`--set section.key=value`).
Unknown keys and bad choices are errors that list what is valid.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from seqkit.config import checks, keys
from seqkit.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    """A corpus is line-aligned files `{prefix}.{lang}` (or .gz), a TSV file (.tsv, .tsv.gz) or JSON lines
    (.jsonl, .jsonl.gz); a language model reads the target side. A classifier reads labelled text (a TSV
    of label and text, or `{prefix}.text` + `{prefix}.label`), numeric sequences (.csv: `label,x1,x2,...`)
    or windows cut from one series (data.series). Relative paths in a config file are relative to the
    file's folder; paths given with --set, to the current directory."""

    train: str = ""  # the training set: a path prefix (e.g. corpora/bible-es-en/train), .tsv or .jsonl file
    dev: str = ""  # the validation set, the same way; empty: dev_size pairs held out of data.train
    # auto: by the file name (a classifier: .tsv/.tsv.gz labelled text, .csv numbers, else {prefix}.text
    # + {prefix}.label)
    format: Literal["auto", "parallel", "tsv", "jsonl", "labels", "csv"] = "auto"
    src_lang: str = "es"  # parallel files: the suffix of the source side
    tgt_lang: str = "en"  # parallel files: the suffix of the target side (what a language model reads)
    src_column: int = 1  # tsv: the source column (1-based); other columns are ignored
    tgt_column: int = 2  # tsv: the target column
    src_key: str = "src"  # jsonl: the source field of each object
    tgt_key: str = "tgt"  # jsonl: the target field
    dev_size: int = 500  # without data.dev: pairs held out of data.train (at most a tenth of it)
    max_length: int = 100  # training pairs longer than this (in pieces, either side) are skipped
    max_length_ratio: float = 0.0  # training pairs whose longer side has more than this many times the
    # pieces of the shorter are skipped; 0 = no limit
    dedupe: bool = False  # skip exact duplicate training pairs
    label_column: int = 1  # classifier, tsv: the label's column (1-based)
    text_column: int = 2  # classifier, tsv: the text's column (1-based)
    features: int = 1  # classifier, csv: values per time step (x1..xn are step-major: n = steps x features)
    # classifier on one series (a CSV file with a header; data.train/dev are then unused): the windows of
    # data.window steps of the data.inputs columns (comma-separated; "" = data.column alone), each
    # followed data.horizon steps later by data.column's value: a number to forecast (model.head =
    # regression: the values 1..horizon steps ahead) or a label (softmax/sigmoid: the one at the horizon)
    series: str = ""
    column: str = ""  # series: the column to forecast or classify
    inputs: str = ""  # series: the columns a window reads, comma-separated; "" = data.column alone
    window: int = 10  # series: the steps of a window
    horizon: int = 1  # series: the steps from a window's last to its target
    # series: the last shares of the windows, by time, are dev and test (never shuffled across the split)
    dev_fraction: float = 0.15
    test_fraction: float = 0.15  # series: the test share (see dev_fraction)
    season: int = 0  # series: the seasonal period in steps, for the seasonal-persistence baseline; 0 = none


@dataclass(frozen=True)
class TokenizerConfig:
    """SentencePiece (trained on the training data unless `model` names an existing one), or characters."""

    type: Literal["sentencepiece", "char"] = "sentencepiece"  # subword pieces, or characters (char-rnn)
    vocab_size: int = 8000  # of each side, when seqkit trains SentencePiece (see src/tgt_vocab_size)
    src_vocab_size: int = 0  # not joint: the source side's size; 0 = vocab_size
    tgt_vocab_size: int = 0  # not joint: the target side's size; 0 = vocab_size
    model_type: Literal["unigram", "bpe"] = "unigram"  # the SentencePiece algorithm seqkit trains
    joint: bool = True  # one vocabulary for source and target
    model: str = ""  # an existing SentencePiece .model file for both sides (any special ids)
    src_model: str = ""  # not joint: existing models for each side (both, or neither)
    tgt_model: str = ""  # not joint: the target side's existing model
    character_coverage: float = 1.0  # share of characters SentencePiece must cover; rarer ones become unk
    max_sentences: int = 1_000_000  # sentences sampled to train SentencePiece


@dataclass(frozen=True)
class ModelConfig:
    """seq2seq: an embedding + RNN encoder and an attentional RNN decoder.
    lm: the decoder alone, without attention (a recurrent language model).
    classifier: the encoder (embeddings, or a linear layer for numbers), pooling over time and a head."""

    # encoder-decoder with attention, language model, or sequence classifier / forecaster
    type: Literal["seq2seq", "lm", "classifier"] = "seq2seq"
    cell: Literal["rnn", "gru", "lstm"] = "gru"  # the recurrent cell of every layer
    activation: Literal["tanh", "relu"] = "tanh"  # classifier with cell = rnn: the vanilla RNN's nonlinearity
    embedding_size: int = 256  # token embeddings, both sides
    encoder_hidden_size: int = 256  # per direction
    encoder_layers: int = 1  # stacked recurrent layers of the encoder
    bidirectional: bool = True  # the encoder reads the source both ways
    decoder_hidden_size: int = 512  # the decoder's (or language model's) state size
    decoder_layers: int = 1  # stacked recurrent layers of the decoder (or language model)
    attention: Literal["bahdanau", "luong"] = "bahdanau"  # additive (before the step) or dot (after)
    dropout: float = 0.2  # on embeddings, between layers and before the output layer
    tie_embeddings: bool = (
        False  # share the target embedding and output matrix (needs embedding_size == decoder_hidden_size)
    )
    # pointer-generator (See et al. 2017): a gate mixes the output layer's distribution with the attention
    # over the source pieces, so a piece can be copied from the input (needs a joint vocabulary)
    copy: bool = False
    # the copy gate's first weights: "random" (a linear layer's usual start; translation learns faster)
    # or "copying" (weights 0, bias -3: it copies from the first update, for outputs that are mostly the
    # input, such as correcting or modernising a text)
    copy_gate_start: Literal["random", "copying"] = "random"
    # the attention sees how much each source piece has had so far (See et al.'s coverage), and training
    # adds train.coverage_loss x the attention that falls again on what was covered
    coverage: bool = False
    # classifier: how the encoder's states over time become one vector: the last state (of each
    # direction), their mean or maximum, or an attention-weighted sum (weights `seqkit inspect` shows)
    pooling: Literal["last", "mean", "max", "attention"] = "last"
    # classifier: softmax over the labels (cross-entropy), one sigmoid for two labels (binary
    # cross-entropy), or linear outputs for numbers (mean squared error on standardised values)
    head: Literal["softmax", "sigmoid", "regression"] = "softmax"
    # classifier reading tokens: the share of each training example's tokens replaced by unk (word
    # dropout, a regulariser against learning the training examples by heart); 0 = none
    word_dropout: float = 0.0
    # classifier reading tokens (softmax or sigmoid head): a linear model of the input's tokens and pairs
    # of neighbouring tokens beside the RNN, each trained on its own loss; the prediction is the sum of
    # their logits (models/classifier.py's TokenBag)
    bag_of_tokens: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """How training runs: batches, rates, limits, validation, checkpoints, device."""

    seed: int = 1  # seeds the weights, dropout and the data order
    batch_tokens: int = 3000  # padded tokens per batch (sentences x longest side); lm: streams x bptt_length
    bptt_length: int = 64  # lm: tokens per truncated-backpropagation chunk
    learning_rate: float = 1e-3  # Adam's step size (the peak, with warmup)
    # how the rate changes; linear: down to 0 at the end of the budget (max_steps, max_epochs or
    # max_minutes, whichever ends first)
    lr_schedule: Literal["constant", "plateau", "inverse_sqrt", "linear"] = "constant"
    warmup_steps: int = 0  # linear warmup (any schedule); inverse_sqrt and linear decay after it
    lr_decay_factor: float = 0.5  # plateau: multiply the rate by this ...
    lr_patience: int = 2  # ... after this many validations without improvement
    label_smoothing: float = 0.0  # share of each target's probability spread over the vocabulary
    coverage_loss: float = 1.0  # model.coverage: the coverage loss's weight (See et al.'s lambda)
    # classifier: "balanced" weighs each label's loss by n / (labels x its count), as scikit-learn's
    class_weights: Literal["none", "balanced"] = "none"
    clip_norm: float = 1.0  # gradient-norm clipping; 0 disables
    max_epochs: int = 0  # 0 = no limit
    max_steps: int = 0  # 0 = no limit
    max_minutes: float = 0.0  # wall-clock limit; 0 = no limit
    valid_every: int = 500  # steps between validations (one more always runs at the end)
    # keeps the best weights; auto: bleu, lm: ppl, classifier: accuracy (regression: rmse)
    best_metric: Literal["auto", "bleu", "chrf", "ppl", "accuracy", "macro_f1", "rmse"] = "auto"
    patience: int = 0  # early stopping: validations without improvement of best_metric; 0 = off
    valid_max_sentences: int = 0  # BLEU on the first N dev sentences only; 0 = all
    log_every: int = 50  # steps between training-log records
    keep_checkpoints: int = 2  # resumable checkpoints kept (one is written at every validation)
    # a trained model directory this run starts from: its tokenizer and weights (what the model has that
    # it lacks, such as model.coverage added to a copy model, starts new); seq2seq only; "" = from scratch
    init_from: str = ""
    threads: int = 0  # torch intra-op threads; 0 = the cores other processes leave free, at least 1
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when torch sees a GPU, else the CPU
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast of the forward pass (fp16: loss scaling)


@dataclass(frozen=True)
class DecodeConfig:
    """How `seqkit translate` searches (each model keeps its own; options override)."""

    beam_size: int = 5  # 1 = greedy search
    length_penalty: float = (
        1.0  # GNMT alpha: hypotheses rank by log-prob / ((5 + length) / 6) ** alpha; 0 = none
    )
    batch_size: int = 64  # sentences per decoding batch
    max_length_ratio: float = 2.0  # output length limit: ratio * source length + offset (pieces)
    max_length_offset: int = 10  # ... plus this many pieces
    # a longer input line is an error naming it (split such lines first): one line of thousands of pieces
    # would hold its whole batch, a pipeline or a server's worker for minutes
    max_input_pieces: int = 1024
    # the output layer computes only the batch's shortlist of likely pieces (decoding/shortlist.py;
    # seqkit shortlist MODEL_DIR builds one): faster, BLEU cost in bench/README.md
    shortlist: bool = False
    # against loops (search.py): GNMT's coverage penalty on finished beam hypotheses, beta * sum over source
    # pieces of log(min(attention received, 1)); 0 = none
    coverage_penalty: float = 0.0
    no_repeat_ngram: int = 0  # no n-gram of this many pieces twice in one output (fairseq's); 0 = none
    # a piece already in the output has its log-probability multiplied by this (CTRL's); 1 = none
    repetition_penalty: float = 1.0
    # sampling instead of search (varied outputs, as fairseq's --sampling for back-translation):
    # temperature > 0 draws each piece from the model's distribution at that temperature, restricted
    # to the top_k pieces and the top_p nucleus (as generate's); 0 = greedy or beam search
    temperature: float = 0.0
    top_k: int = 0  # sampling: the k most likely pieces only; 0 = all
    top_p: float = 1.0  # sampling: the smallest set of pieces whose probability reaches p
    seed: int = 1  # sampling: a line's output depends on the seed and the line only, not on its batch


@dataclass(frozen=True)
class GenerateConfig:
    """How `seqkit generate` samples (each model keeps its own; options override)."""

    max_tokens: int = 200  # new tokens per sample at most (a sample also ends at end-of-sentence)
    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # sample from the k most likely tokens only; 0 = all
    top_p: float = 1.0  # sample from the smallest set of tokens whose probability reaches p (nucleus)
    num_samples: int = 1  # output lines per prompt
    seed: int = 1  # the same seed gives the same samples


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def from_dict(values: dict[str, Any], source: str = "config") -> Config:
    """Build a Config from nested dicts, e.g. a parsed TOML file; `source` names it in errors."""
    sections = typing.get_type_hints(Config)
    built = {}
    for name, body in values.items():
        owners = [section for section, cls in sections.items() if name in typing.get_type_hints(cls)]
        if name not in sections and not isinstance(body, dict) and owners:  # `seed = 3` above every table
            also = f" (also of [{'], ['.join(owners[1:])}])" if owners[1:] else ""
            raise ConfigError(
                f"{source}: {name} is a key of [{owners[0]}]{also}, not a table: put it under its table's "
                f"heading (or --set {owners[0]}.{name}=...)"
            )
        if name not in sections:
            raise ConfigError(
                f"{source}: unknown section [{name}]{keys.suggest(name, sections)}; valid: {', '.join(sections)}"
            )
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: [{name}] must be a table of keys, got {body!r}")
        built[name] = keys.section(sections[name], body, name, source)
    config = Config(**built)
    checks.check(config, source)
    return config


def merge(base: dict[str, Any], overrides: typing.Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    merged = {name: dict(body) if isinstance(body, dict) else body for name, body in base.items()}
    for section, key, value in overrides:
        body = merged.setdefault(section, {})
        if isinstance(body, dict):  # (a section that is no table: from_dict says so)
            body[key] = value
    return merged


def differences(old: Config, new: Config) -> list[str]:
    """`section.key: old -> new` for every key whose value differs."""
    old_values, new_values = old.to_dict(), new.to_dict()
    return [
        f"{name}.{key}: {old_values[name][key]!r} -> {value!r}"
        for name, body in new_values.items()
        for key, value in body.items()
        if old_values[name][key] != value
    ]


def with_overrides(config: Config, overrides: dict[str, dict[str, Any]], source: str) -> Config:
    """`config` with some keys replaced (None values are ignored), checked like a config file."""
    changes = [(name, key, v) for name, body in overrides.items() for key, v in body.items() if v is not None]
    return from_dict(merge(config.to_dict(), changes), source)
