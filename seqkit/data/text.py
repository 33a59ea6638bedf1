"""Reading UTF-8 text files (plain or .gz, or stdin as `-`), one example per line.

Errors name the file and line, so that a bad byte in a 30,000-line corpus can be found.
"""

from __future__ import annotations

import gzip
import re
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from seqkit.errors import DataError
from seqkit.wording import counted

# Characters no tokenizer keeps as themselves: C0 and C1 controls but tab and newline, DEL, and a byte
# order mark inside a line. Both tokenizers see a line through `without_controls`: a CR, a form feed or
# a next-line (U+0085) inside it as a space, so that no two words are joined, the others removed.
# (SentencePiece's own normalisation drops most of them, but gives NUL and most C1 controls an unknown
# piece, which a line of nothing else was translated from.)
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
SPACING_CONTROLS = re.compile("[\r\x0c\x85]")
# A lone surrogate (what JSON's \ud800 escape makes) is no text: UTF-8 cannot encode it
SURROGATE = re.compile("[\ud800-\udfff]")


def without_controls(line: str) -> str:
    """The line a tokenizer reads: CONTROLS removed, those that separate words (SPACING_CONTROLS) read
    as a space."""
    return CONTROLS.sub("", SPACING_CONTROLS.sub(" ", line))


def line_fault(line: str) -> str | None:
    """What keeps a string given as one line (a Python list's item, a server request's line) from being
    one, or None: a line break inside, or a lone surrogate. A lone CR is no line break: translate reads
    it as a control character, which the tokenizers read as a space (`without_controls`)."""
    if "\n" in line:
        return "holds a line break; give one line per item"
    if SURROGATE.search(line):
        return "holds a lone surrogate (U+D800-U+DFFF), which is not text"
    return None


def _open_binary(path: Path | str):
    if str(path) == "-":
        return sys.stdin.buffer
    path = Path(path)
    if not path.exists():  # not is_file(): pipes such as <(zcat ...) are fine
        raise DataError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a text file; give a file")
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def iter_lines(path: Path | str, fixes: Counter | None = None) -> Iterator[str]:
    """Yield the lines of a UTF-8 file without their line ending (LF or CRLF) and without a UTF-8 byte
    order mark at their start. `-` reads stdin. `fixes` counts the lines that had a "bom" or a "cr", and
    those with "controls" inside (kept here; the tokenizers drop them). A file whose lines end in CR
    alone (an old Mac file) is an error: it would be one line."""
    name = "<stdin>" if str(path) == "-" else str(path)
    try:
        stream = _open_binary(path)
    except OSError as e:  # e.g. no permission to read
        raise DataError(f"{name}: cannot be opened ({e.strerror}); check the file's permissions") from None
    try:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{name}:{number}: not valid UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                    "convert the file to UTF-8, e.g. with iconv"
                ) from None
            if number == 1 and "\r" in line.rstrip("\r\n") and not line.endswith("\n"):
                given = "FILE" if name == "<stdin>" else name
                raise DataError(
                    f"{name}: lines end in a carriage return alone (an old Mac file), which seqkit reads as "
                    f"one line; convert it first, e.g. tr '\\r' '\\n' < {given} > NEW"
                )
            line = line.rstrip("\n")
            if line.endswith("\r"):
                line = line.rstrip("\r")
                if fixes is not None:
                    fixes["cr"] += 1
            if line.startswith("\ufeff"):
                line = line[1:]
                if fixes is not None:
                    fixes["bom"] += 1
            if fixes is not None and CONTROLS.search(line):
                fixes["controls"] += 1
            yield line
    except (OSError, EOFError, zlib.error) as e:  # a truncated, damaged or fake .gz file
        raise DataError(f"{name}: cannot be read ({e}); check that the file is complete") from None
    finally:
        if str(path) != "-":  # (stdin is the caller's: and a process started with it closed has none)
            stream.close()


def read_lines(path: Path | str, fixes: Counter | None = None) -> list[str]:
    return list(iter_lines(path, fixes))


def read_parallel(
    src_path: Path | str, tgt_path: Path | str, fixes: Counter | None = None
) -> tuple[list[str], list[str]]:
    """Read two line-aligned files; different line counts are an error naming both files."""
    src, tgt = read_lines(src_path, fixes), read_lines(tgt_path, fixes)
    if len(src) != len(tgt):
        raise unaligned(src_path, len(src), tgt_path, len(tgt))
    return src, tgt


def unaligned(src_path: Path | str, src_count: int, tgt_path: Path | str, tgt_count: int) -> DataError:
    """The error of parallel files with different line counts (read whole, or streamed: data/formats.py)."""
    return DataError(
        f"{src_path} has {counted(src_count, 'line')} but {tgt_path} has {tgt_count:,}; "
        "parallel files must be line-aligned (one sentence pair per line number)"
    )


def corpus_file(prefix: str, lang: str, option: str) -> Path:
    """`{prefix}.{lang}` or `{prefix}.{lang}.gz`, whichever exists; `option` names the config key."""
    plain = Path(f"{prefix}.{lang}")
    for candidate in (plain, Path(f"{plain}.gz")):
        if candidate.is_file():
            return candidate
    for candidate in (plain, Path(f"{plain}.gz")):
        if candidate.exists():  # a directory, say
            raise DataError(f"{option} = {prefix!r}: {candidate} is not a file; give the prefix of two files")
    given = Path(prefix)
    if given.is_file():  # the file itself given (nanoGPT takes input.txt): the prefix is what is meant
        stem = given.with_suffix("")
        if Path(f"{stem}.{lang}").is_file() or Path(f"{stem}.{lang}.gz").is_file():
            raise DataError(
                f"{option} = {prefix!r}: a file; {option} is the path prefix of the files: give {stem}"
            )
        raise DataError(
            f"{option} = {prefix!r}: a file, but {option} is a path prefix (PREFIX.{lang} is read); name the "
            f"file {stem}.{lang} and give {stem}"
        )
    raise DataError(f"{option} = {prefix!r}: neither {plain} nor {plain}.gz exists; check the path prefix")
