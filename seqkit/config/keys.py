"""A section's keys as a config file or `--set` gives them: each key known (a misspelt one named with the
likeliest), its value of the annotated type (TOML's ints taken for floats) and in its range. Checks across
keys are in checks.py."""

from __future__ import annotations

import difflib
import math
import numbers
import typing
from typing import Any, Literal

from seqkit.errors import ConfigError

# Ranges beyond the type: (section, key) -> (predicate, what is expected)
RANGES: dict[tuple[str, str], tuple[typing.Callable[[Any], bool], str]] = {
    ("data", "max_length"): (lambda v: v > 0, "a positive integer"),
    ("data", "src_column"): (lambda v: v > 0, "a column number from 1"),
    ("data", "tgt_column"): (lambda v: v > 0, "a column number from 1"),
    ("data", "dev_size"): (lambda v: v > 0, "a positive integer"),
    ("data", "label_column"): (lambda v: v > 0, "a column number from 1"),
    ("data", "text_column"): (lambda v: v > 0, "a column number from 1"),
    ("data", "features"): (lambda v: v > 0, "a positive integer"),
    ("data", "window"): (lambda v: v > 0, "a positive integer"),
    ("data", "horizon"): (lambda v: v > 0, "a positive integer"),
    ("data", "dev_fraction"): (lambda v: 0 < v < 0.5, "in (0, 0.5)"),
    ("data", "test_fraction"): (lambda v: 0 <= v < 0.5, "in [0, 0.5)"),
    ("data", "season"): (lambda v: v >= 0, "0 (none) or a positive number of steps"),
    ("data", "max_length_ratio"): (lambda v: v == 0 or v >= 1, "0 (no limit) or at least 1"),
    # (SentencePiece reads its sizes as 32-bit ints: a larger one was its own traceback)
    ("tokenizer", "src_vocab_size"): (lambda v: v == 0 or 8 <= v < 2**31, "0 (vocab_size) or 8 to 2**31 - 1"),
    ("tokenizer", "tgt_vocab_size"): (lambda v: v == 0 or 8 <= v < 2**31, "0 (vocab_size) or 8 to 2**31 - 1"),
    ("tokenizer", "vocab_size"): (lambda v: 8 <= v < 2**31, "between 8 and 2**31 - 1"),
    ("tokenizer", "character_coverage"): (lambda v: 0.9 <= v <= 1.0, "between 0.9 and 1.0"),
    ("tokenizer", "max_sentences"): (lambda v: 0 < v < 2**31, "between 1 and 2**31 - 1"),
    ("model", "embedding_size"): (lambda v: v > 0, "a positive integer"),
    ("model", "encoder_hidden_size"): (lambda v: v > 0, "a positive integer"),
    ("model", "encoder_layers"): (lambda v: v > 0, "a positive integer"),
    ("model", "decoder_hidden_size"): (lambda v: v > 0, "a positive integer"),
    ("model", "decoder_layers"): (lambda v: v > 0, "a positive integer"),
    ("model", "dropout"): (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    ("model", "word_dropout"): (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    ("train", "batch_tokens"): (lambda v: v > 0, "a positive integer"),
    ("train", "learning_rate"): (lambda v: v > 0, "positive"),
    ("train", "clip_norm"): (lambda v: v >= 0, "0 (off) or positive"),
    ("train", "max_epochs"): (lambda v: v >= 0, "0 (no limit) or positive"),
    ("train", "max_steps"): (lambda v: v >= 0, "0 (no limit) or positive"),
    ("train", "max_minutes"): (lambda v: v >= 0, "0 (no limit) or positive"),
    ("train", "valid_every"): (lambda v: v > 0, "a positive integer"),
    ("train", "valid_max_sentences"): (lambda v: v >= 0, "0 (all) or positive"),
    ("train", "log_every"): (lambda v: v > 0, "a positive integer"),
    ("train", "keep_checkpoints"): (lambda v: v > 0, "a positive integer"),
    ("train", "warmup_steps"): (lambda v: v >= 0, "0 (none) or positive"),
    ("train", "lr_decay_factor"): (lambda v: 0 < v < 1, "in (0, 1)"),
    ("train", "lr_patience"): (lambda v: v > 0, "a positive integer"),
    ("train", "label_smoothing"): (lambda v: 0 <= v < 1, "in [0, 1)"),
    ("train", "coverage_loss"): (lambda v: v >= 0, "0 (none) or positive"),
    ("train", "patience"): (lambda v: v >= 0, "0 (off) or positive"),
    # (torch.set_num_threads overflowed past 2**63; a thousand threads is already a typo)
    ("train", "threads"): (lambda v: 0 <= v <= 1024, "0 (default) or at most 1024"),
    ("decode", "batch_size"): (lambda v: v > 0, "a positive integer"),
    # (a beam of 1e9 asked the allocator for 256 GB: a traceback; the widest beams in use are in the tens)
    ("decode", "beam_size"): (lambda v: 0 < v <= 1000, "between 1 (greedy) and 1000"),
    # (GNMT's alpha is 0 to 2 or so; ((5 + length) / 6) ** alpha overflowed from a few hundred on, and
    # at the longest output allowed (100 x 1,024 + 1,000 pieces) 50 gives about 1e212)
    ("decode", "length_penalty"): (lambda v: 0 <= v <= 50, "0 (none) to 50"),
    # an output limit beyond 100 x the source (+ 1,000) is never a translation, only a long wait
    ("decode", "max_length_ratio"): (lambda v: 0 < v <= 100, "positive, at most 100"),
    ("decode", "max_length_offset"): (lambda v: 0 <= v <= 1000, "between 0 and 1000"),
    ("decode", "max_input_pieces"): (lambda v: v > 0, "a positive integer"),
    ("decode", "coverage_penalty"): (lambda v: 0 <= v <= 50, "0 (none) to 50"),
    ("decode", "no_repeat_ngram"): (lambda v: v >= 0, "0 (none) or a positive n-gram length"),
    ("decode", "repetition_penalty"): (lambda v: 1 <= v <= 100, "between 1 (none) and 100"),
    # below 0.01 the scaled scores overflow (to NaN at 1e-310): 0 is the argmax such a temperature means
    ("decode", "temperature"): (lambda v: v == 0 or 0.01 <= v <= 100, "0 (search) or between 0.01 and 100"),
    ("decode", "top_k"): (lambda v: v >= 0, "0 (all pieces) or positive"),
    ("decode", "top_p"): (lambda v: 0 < v <= 1, "in (0, 1]"),
    # below 2**32: a larger seed would take two of the words that also seed a line's pieces
    ("decode", "seed"): (lambda v: 0 <= v < 2**32, "between 0 and 2**32 - 1"),
    ("train", "bptt_length"): (lambda v: v >= 2, "at least 2"),
    ("train", "seed"): (lambda v: 0 <= v < 2**32, "between 0 and 2**32 - 1"),
    ("generate", "seed"): (lambda v: 0 <= v < 2**63, "between 0 and 2**63 - 1"),
    ("generate", "max_tokens"): (lambda v: v > 0, "a positive integer"),
    ("generate", "temperature"): (lambda v: v == 0 or 0.01 <= v <= 100, "0 (greedy) or between 0.01 and 100"),
    ("generate", "top_k"): (lambda v: v >= 0, "0 (all tokens) or positive"),
    ("generate", "top_p"): (lambda v: 0 < v <= 1, "in (0, 1]"),
    ("generate", "num_samples"): (lambda v: v > 0, "a positive integer"),
}


def suggest(name: str, valid: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def coerce(value: Any, kind: Any, where: str) -> Any:
    """Check `value` against the annotated type `kind`; ints are accepted for floats."""
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            raise ConfigError(f"{where}: bad choice {value!r}; valid: {', '.join(map(str, choices))}")
        return value
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:  # (numpy's integers too, from a Python caller: as plain ints)
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        value = int(value) if ok else value
    elif kind is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        try:
            value = float(value) if ok else value
        except OverflowError:  # an int of hundreds of digits
            # (digits estimated from the bits: str() of an int past 4,300 digits is itself an error)
            raise ConfigError(
                f"{where}: a number of about {int(value.bit_length() * 0.30103) + 1} digits, too large"
            ) from None
        if ok and not math.isfinite(value):  # inf and nan mean nothing for any setting seqkit has
            raise ConfigError(f"{where} = {value!r}: must be a finite number")
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}{SPELLING.get(kind, '')}")
    return value


# how TOML (and --set) writes a value of each type: `True` and `.5` are text to it
SPELLING = {
    bool: "; write true or false",
    int: "; write a whole number",
    float: "; write a number such as 0.5",
}


def section(cls: type, values: dict[str, Any], name: str, source: str) -> Any:
    """The dataclass `cls` of section `name` from `values`, every key checked; `source` names the file (or
    flags) in the errors."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(
                f"{source}: unknown key {name}.{key}{suggest(key, hints)}; valid keys: {', '.join(hints)}"
            )
        where = f"{source}: {name}.{key}"
        kwargs[key] = coerce(value, hints[key], where)
        check = RANGES.get((name, key))
        if check and not check[0](kwargs[key]):
            raise ConfigError(f"{where} = {value!r}: must be {check[1]}")
    return cls(**kwargs)
