"""The settings a decoding or a sampling runs with: a model's own config with a caller's options put in
and checked (`seqkit translate`'s and `generate`'s options, the Python API's arguments, a server request's
fields), and the rules for the options that a search or a sampler would not read."""

from __future__ import annotations

from dataclasses import asdict
from numbers import Real
from typing import Any, TypeVar

from seqkit import config as config_lib
from seqkit.config import Config, DecodeConfig, GenerateConfig
from seqkit.decoding.sampling import SAMPLING_ONLY, sampling_option_unused
from seqkit.errors import ConfigError

Settings = TypeVar("Settings", DecodeConfig, GenerateConfig)


def decode(config: Config, source: str, options: dict[str, Any]) -> DecodeConfig:
    """`config`'s decoding settings with `options` (None: the model's own) put in and checked; `source`
    names them in errors."""
    given = {key: value for key, value in options.items() if value is not None}
    # the model's own settings that only a beam search reads give way to the greedy search or the
    # sampling asked for (they were an error blaming the caller's options); both given still are one
    sampling = _number_above(given.get("temperature"), 0)
    if sampling or given.get("beam_size") == 1:
        given.setdefault("coverage_penalty", 0.0)
    if sampling:
        given.setdefault("shortlist", False)
    settings = config_lib.with_overrides(config, {"decode": given}, source).decode
    _refuse_unused_sampling(settings.temperature, options, source)
    return settings


def generate(config: Config, source: str, options: dict[str, Any]) -> GenerateConfig:
    """`config`'s sampling settings with `options` put in and checked (as `decode`)."""
    given = {key: value for key, value in options.items() if value is not None}
    # several texts of a prompt at temperature 0 are one text, repeated: the model's own num_samples
    # gives way to such a search, and the caller's is refused
    if not _number_above(given.get("temperature", config.generate.temperature), 0):
        given.setdefault("num_samples", 1)
    settings = config_lib.with_overrides(config, {"generate": given}, source).generate
    several = {"num_samples": settings.num_samples if settings.num_samples > 1 else None}
    _refuse_unused_sampling(settings.temperature, {**options, **several}, source)
    return settings


def checked(config: Config, settings: Settings, kind: type[Settings], section: str) -> Settings:
    """Settings a caller made (with dataclasses.replace, say, which skips the checks) checked as a config
    file is; a ConfigError for another kind of object."""
    if not isinstance(settings, kind):
        raise ConfigError(
            f"settings: a {type(settings).__name__}; give a {kind.__name__} "
            f"(model.{section}_settings(...) makes one), or None for the model's own"
        )
    return getattr(config_lib.with_overrides(config, {section: asdict(settings)}, "settings"), section)


def _number_above(value: Any, bound: float) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and float(value) > bound


def _refuse_unused_sampling(temperature: float, options: dict[str, Any], source: str) -> None:
    """A ConfigError for a sampling setting given at temperature 0 (a search, which would ignore it),
    named as `source` writes it: `--top-k` on the command line, `top_k` elsewhere."""
    named = (lambda key: "--" + key.replace("_", "-")) if source == "command-line options" else str
    sampling = {named(key): options.get(key) for key in ("top_k", "top_p", "seed", "num_samples")}
    unused = sampling_option_unused(temperature, sampling)
    if unused:
        raise ConfigError(SAMPLING_ONLY.format(unused))
