"""Config files: TOML read (relative paths resolved against the file's folder), `--set SECTION.KEY=VALUE`
overrides parsed (their relative paths against the current directory), the merged `load` that every
command uses, and TOML written: plain for a model directory (`to_toml`), every key with its comment and
default for `seqkit config` (`commented_toml`). What a config is, and its checks: the config package."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from pathlib import Path
from typing import Any

import tomli_w

from seqkit.config import Config, from_dict, merge
from seqkit.errors import ConfigError

# Keys that hold file paths: relative ones in a config file are relative to the file's folder.
PATH_KEYS = {
    "data": ("train", "dev", "series"),
    "tokenizer": ("model", "src_model", "tgt_model"),
    "train": ("init_from",),
}


def _absolute(value: str, folder: Path, key: str) -> str:
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # ~name of no user on this machine
        raise ConfigError(
            f"{key} = {value!r}: no home directory for {value.split('/')[0]}; give the path"
        ) from None
    return str(path if path.is_absolute() else Path(os.path.abspath(folder / path)))


def _resolve_paths(values: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The values of a config file with its relative paths made absolute against the file's folder."""
    resolved = {name: dict(body) if isinstance(body, dict) else body for name, body in values.items()}
    for section, keys in PATH_KEYS.items():
        body = resolved.get(section)
        if isinstance(body, dict):
            for key in keys:
                if isinstance(body.get(key), str) and body[key]:
                    body[key] = _absolute(body[key], folder, f"{section}.{key}")
    return resolved


def read_toml(path: Path) -> dict[str, Any]:
    try:
        # utf-8-sig: a BOM, which some Windows editors write, was "Invalid statement (line 1, column 1)"
        return tomllib.loads(Path(path).read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; check the --config path") from None
    except OSError as e:  # a directory, no permission
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror}); give a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the file") from None
    except UnicodeDecodeError:  # (a ValueError too: before the next)
        raise ConfigError(f"{path}: not UTF-8 text; save the config file as UTF-8") from None
    except ValueError:  # (tomllib's int() of a number past 4,300 digits)
        raise ConfigError(f"{path}: a number of more than 4,300 digits; fix the file") from None


def parse_override(text: str) -> tuple[str, str, Any]:
    """`section.key=value` -> (section, key, value); the value is read as TOML, else as a string, and
    always as the text itself for a key that holds text (a CSV column named 2020, a corpus prefix 2024,
    a column 1979-05-27, which TOML reads as a number or a date)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. --set model.cell=lstm")
    dotted, raw = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # bare words like `lstm` need no quotes
    except ValueError:  # (tomllib's int() of a number past 4,300 digits)
        raise ConfigError(
            f"--set {dotted.strip()}: a number of more than 4,300 digits; give a smaller one"
        ) from None
    # a single word that TOML took for a number, a boolean or a date (lists, tables and text with a
    # comment keep their type, and the key's type error)
    word = raw.strip()
    if not isinstance(value, str | list | dict) and _holds_text(section, key) and _is_word(word):
        value = word
    return section, key, value


def _is_word(text: str) -> bool:
    return bool(text) and "#" not in text and not any(c.isspace() for c in text)


def _holds_text(section: str, key: str) -> bool:
    """Whether config key `section.key` is typed `str` (an unknown key: no; from_dict names it)."""
    sections = typing.get_type_hints(Config)
    if section not in sections:
        return False
    return typing.get_type_hints(sections[section]).get(key) is str


def load(path: Path | None, overrides: typing.Iterable[str] = (), base: Config | None = None) -> Config:
    """The config of a run: `base` (the defaults, or a resumed run's config), then the file at `path`
    (if any), then each override. Paths come out absolute: relative ones of the file against its folder,
    those of --set against the current directory."""
    values = base.to_dict() if base is not None else {}
    if path is not None:
        values_of_file = read_toml(path)
        try:
            resolved = _resolve_paths(values_of_file, Path(path).parent)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        for name, body in resolved.items():
            values[name] = {**values.get(name, {}), **body} if isinstance(body, dict) else body
    parsed = []
    for section, key, value in map(parse_override, overrides):
        if key in PATH_KEYS.get(section, ()) and isinstance(value, str) and value:
            value = _absolute(value, Path.cwd(), f"--set {section}.{key}")  # relative to where it runs
        parsed.append((section, key, value))
    source = f"{path}" if path is not None else "config"
    if parsed:
        source += " with --set overrides"
    return from_dict(merge(values, parsed), source)


def to_toml(config: Config) -> bytes:
    """The TOML text of a config (callers write it atomically)."""
    return tomli_w.dumps(config.to_dict()).encode()


# What a resumed run keeps: these decide the weights' shapes, the tokens, or the data order that the
# checkpoint's position refers to. Limits, rates, validation and decoding settings may change.
def _field_comments(cls: type) -> dict[str, str]:
    """The comment of each field of a config dataclass: what `seqkit config` prints above each key.

    A field's comment is written after it (continued on the comment lines below it, or inside its wrapped
    value), or, for a field with none of its own, as the comment lines right above it."""
    import inspect

    comments: dict[str, str] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    current: str | None = None
    block: list[str] = []  # the comment lines since the last field

    def add_to_current(text: str) -> None:
        if current is not None:
            comments[current] = f"{comments[current]} {text}".strip()

    for line in inspect.getsource(cls).splitlines():
        code, _, comment = line.partition("#")
        name = code.strip().split(":", 1)[0]
        if name in names and ":" in code:
            if block and comment.strip():  # the lines between continued the field before
                add_to_current(" ".join(block))
            elif block:  # the lines above are this field's comment
                comment = " ".join(block)
            current, comments[name], block = name, comment.strip(), []
        elif comment and not code.strip():
            block.append(comment.strip())
        elif comment:  # a comment inside a wrapped value
            add_to_current(comment.strip())
    add_to_current(" ".join(block))
    return comments


def _toml_value(value: Any) -> str:
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def commented_toml(config: Config) -> str:
    """The whole config as TOML, every key under a comment saying what it does and its built-in default:
    `seqkit config`, the way to discover the keys."""
    defaults = Config()
    out = []
    for section in dataclasses.fields(Config):
        body, default_body = getattr(config, section.name), getattr(defaults, section.name)
        doc = " ".join((type(body).__doc__ or "").split())
        out.extend([f"# {doc}"] if doc else [])
        out.append(f"[{section.name}]")
        comments, types = _field_comments(type(body)), typing.get_type_hints(type(body))
        for key in dataclasses.fields(body):
            value, default = getattr(body, key.name), getattr(default_body, key.name)
            shown = _toml_value(default)
            if typing.get_origin(types[key.name]) is typing.Literal:  # the values allowed: said nowhere else
                shown += "; one of " + ", ".join(
                    _toml_value(choice) for choice in typing.get_args(types[key.name])
                )
            out.append(f"# {comments.get(key.name, '')} [default: {shown}]".replace("#  [", "# ["))
            out.append(tomli_w.dumps({key.name: value}).strip())
        out.append("")
    return "\n".join(out)
