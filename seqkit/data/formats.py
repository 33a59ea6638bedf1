"""Corpus formats, told apart by name or set by `data.format`:

    parallel   line-aligned files {prefix}.{src_lang} and {prefix}.{tgt_lang} (or .gz)
    tsv        one pair per line, tab-separated; the source and target columns are data.src_column and
               data.tgt_column (from 1); other columns (an attribution, an id) are ignored
    jsonl      one JSON object per line; the source and target are its data.src_key and data.tgt_key

Every reader gives the same two lists of strings, one item per pair, and names file and line in errors.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path

from seqkit.config import DataConfig
from seqkit.data.text import SURROGATE, corpus_file, iter_lines, read_parallel, unaligned
from seqkit.errors import DataError
from seqkit.wording import counted

FORMAT_SUFFIXES = {"tsv": (".tsv", ".tsv.gz"), "jsonl": (".jsonl", ".jsonl.gz")}


def detect(spec: str, cfg: DataConfig) -> str:
    """The format of `spec` (a path prefix or a file): data.format unless auto, else by the file name."""
    if cfg.format in ("labels", "csv"):  # (the reader below would take the file for JSON lines)
        raise DataError(
            f"data.format = {cfg.format!r} is a classifier's format; a translation corpus or a language "
            "model's text is auto, parallel ({prefix}.{lang}), tsv or jsonl"
        )
    if cfg.format != "auto":
        return cfg.format
    for name, suffixes in FORMAT_SUFFIXES.items():
        if spec.lower().endswith(suffixes):
            return name
    return "parallel"


def _tsv_rows(
    path: Path, columns: tuple[int, ...], option: str, fixes: Counter | None
) -> Iterator[list[str]]:
    """The given 1-based columns of each line of a TSV file; a line with too few is an error."""
    needed = max(columns)
    for number, line in enumerate(iter_lines(path, fixes), start=1):
        if not line.strip():
            yield [""] * len(columns)  # an empty pair, which training skips and counts
            continue
        cells = line.split("\t")
        if len(cells) < needed:
            raise DataError(
                f"{path}:{number}: {counted(len(cells), 'tab-separated column')}, but {option} needs column {needed}; "
                "fix the line, or set data.src_column / data.tgt_column (or --column) to the right columns"
            )
        yield [cells[column - 1] for column in columns]


LINE_BREAK = re.compile(r"\r?\n")


def _jsonl_rows(path: Path, keys: tuple[str, ...], fixes: Counter | None) -> Iterator[list[str]]:
    """The given fields of each JSON object of a JSON-lines file."""
    for number, line in enumerate(iter_lines(path, fixes), start=1):
        if not line.strip():
            yield [""] * len(keys)  # an empty pair, which training skips and counts (as a TSV's)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{number}: not valid JSON ({e.msg}); one JSON object per line") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: a JSON {type(record).__name__}, not an object with fields")
        row = []
        for key in keys:
            if key not in record:
                raise DataError(
                    f"{path}:{number}: no field {key!r} (fields: {', '.join(map(repr, record)) or 'none'}); "
                    "fix the line, or set data.src_key / data.tgt_key to the field names"
                )
            if not isinstance(record[key], str):
                raise DataError(f"{path}:{number}: field {key!r} is not a string; give the text as a string")
            if SURROGATE.search(record[key]):  # (a JSON escape such as \ud800 without its pair)
                raise DataError(
                    f"{path}:{number}: field {key!r} holds a lone surrogate (U+D800-U+DFFF), which is not text; "
                    "fix the line"
                )
            row.append(record[key])
        if any("\n" in field for field in row):
            # a sentence is a line everywhere else (translate's input, the held-out dev files, which
            # would pair the wrong lines): its line breaks read as spaces, counted
            row = [LINE_BREAK.sub(" ", field) for field in row]
            if fixes is not None:
                fixes["breaks"] += 1
        yield row


def _existing(spec: str, option: str) -> Path:
    path = Path(spec)
    if not path.exists():
        raise DataError(f"{option} = {spec!r}: no such file; check the path")
    return path


def files(spec: str, cfg: DataConfig, option: str) -> list[Path]:
    """The files a corpus is read from (for the cache key of its token arrays)."""
    if detect(spec, cfg) == "parallel":
        return [corpus_file(spec, cfg.src_lang, option), corpus_file(spec, cfg.tgt_lang, option)]
    return [_existing(spec, option)]


def _aligned(src_path: Path, tgt_path: Path, fixes: Counter | None) -> Iterator[tuple[str, str]]:
    pairs = zip_longest(iter_lines(src_path, fixes), iter_lines(tgt_path, fixes))
    for count, (source, target) in enumerate(pairs, start=1):
        if source is None or target is None:
            rest = 1 + sum(1 for _ in pairs)  # the longer file's remaining lines
            src_count, tgt_count = (
                (count - 1, count - 1 + rest) if source is None else (count - 1 + rest, count - 1)
            )
            raise unaligned(src_path, src_count, tgt_path, tgt_count)
        yield source, target


def iter_pairs(
    spec: str, cfg: DataConfig, option: str, fixes: Counter | None = None
) -> Iterator[tuple[str, str]]:
    """The (source, target) pairs of the corpus `spec` (data.train or data.dev), in its format, as they
    are read: a corpus of millions of pairs never has to be in memory as text."""
    kind = detect(spec, cfg)
    if kind == "parallel":
        src_file, tgt_file = corpus_file(spec, cfg.src_lang, option), corpus_file(spec, cfg.tgt_lang, option)
        yield from _aligned(src_file, tgt_file, fixes)
        return
    path = _existing(spec, option)
    if kind == "tsv":
        rows = _tsv_rows(path, (cfg.src_column, cfg.tgt_column), "data.src_column / tgt_column", fixes)
    else:
        rows = _jsonl_rows(path, (cfg.src_key, cfg.tgt_key), fixes)
    yield from ((row[0], row[1]) for row in rows)


def read_pairs(
    spec: str, cfg: DataConfig, option: str, fixes: Counter | None = None
) -> tuple[list[str], list[str]]:
    """Source and target lines of the corpus `spec`, in its format (parallel files whose line counts
    differ: an error naming both files and both counts)."""
    if detect(spec, cfg) == "parallel":
        src_file, tgt_file = corpus_file(spec, cfg.src_lang, option), corpus_file(spec, cfg.tgt_lang, option)
        return read_parallel(src_file, tgt_file, fixes)
    src, tgt = [], []
    for source, target in iter_pairs(spec, cfg, option, fixes):
        src.append(source)
        tgt.append(target)
    return src, tgt


def read_target_side(spec: str, cfg: DataConfig, option: str, fixes: Counter | None = None) -> list[str]:
    """The target side of a corpus: what a language model reads (a parallel corpus needs only its
    {prefix}.{tgt_lang} file)."""
    kind = detect(spec, cfg)
    if kind == "parallel":
        return list(iter_lines(corpus_file(spec, cfg.tgt_lang, option), fixes))
    path = _existing(spec, option)
    if kind == "tsv":
        return [row[0] for row in _tsv_rows(path, (cfg.tgt_column,), "data.tgt_column", fixes)]
    return [row[0] for row in _jsonl_rows(path, (cfg.tgt_key,), fixes)]


def iter_column(path: Path | str, column: int) -> Iterator[str]:
    """Column `column` (from 1) of each line of a TSV file, or of stdin as `-`: `--column N`."""
    for number, line in enumerate(iter_lines(path), start=1):
        if not line.strip():  # an empty line is an empty line in any column (as training reads a TSV's)
            yield ""
            continue
        cells = line.split("\t")
        if len(cells) < column:
            name = "<stdin>" if str(path) == "-" else str(path)
            raise DataError(
                f"{name}:{number}: {counted(len(cells), 'tab-separated column')}, no column {column}; "
                "fix the line or give another --column"
            )
        yield cells[column - 1]
