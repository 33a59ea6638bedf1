"""The checks of what a Python caller hands `seqkit.Model`: lines as a list of strings, each a line as the
CLI reads one from a file, and a chunk size; an error names the argument, or the file line the numbers name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from numbers import Integral

from seqkit.config import DecodeConfig
from seqkit.data.text import line_fault
from seqkit.decoding.inference import LineNumbers
from seqkit.decoding.sampling import SAMPLING_NBEST
from seqkit.errors import ConfigError, DataError


def check_chunk_lines(chunk_lines: int | None) -> None:
    if chunk_lines is not None and (
        isinstance(chunk_lines, bool) or not isinstance(chunk_lines, Integral) or chunk_lines < 1
    ):
        raise ConfigError(
            f"chunk_lines = {chunk_lines!r}: give a whole number of lines of at least 1 (or None)"
        )


def checked_nbest(nbest: int, settings: DecodeConfig) -> int:
    """How many outputs a line gets (`translate_stream`'s and the server's `nbest`): a whole number from 1 to
    the beam size, and 1 when sampling."""
    if isinstance(nbest, bool) or not isinstance(nbest, Integral):  # (2.0 failed as a list index)
        raise ConfigError(f"nbest = {nbest!r}: not a whole number; give how many outputs a line gets")
    nbest = int(nbest)
    if nbest > 1 and settings.temperature > 0:
        raise ConfigError(SAMPLING_NBEST.format(f"nbest = {nbest}"))
    if not 1 <= nbest <= settings.beam_size:
        raise ConfigError(
            f"nbest = {nbest}: must be between 1 and the beam size ({settings.beam_size}); raise the beam size"
        )
    return nbest


def texts(lines: Iterable[str], argument: str, numbers: LineNumbers | None = None) -> Iterator[str]:
    """`lines` as given, checked: one string is a mistake for a list of them (it would be read as one
    line per character), and an item that is not a string is named, not an AttributeError from within.
    An error names the item as `numbers` name a file's line (`source:N`), when they name a file."""
    if isinstance(lines, str | bytes):
        raise ConfigError(f"{argument}: one string; give a list of them ({argument}=[...]), one per line")
    if isinstance(lines, set | frozenset):  # its order is not the lines'
        raise ConfigError(f"{argument}: a set; give a list of strings, one per line, in order")
    if isinstance(lines, Mapping):  # (its keys were read as the lines)
        raise ConfigError(f"{argument}: a {type(lines).__name__}; give a list of strings, one per line")
    if not isinstance(lines, Iterable):  # (a TypeError from within, and only at a stream's first item)
        raise ConfigError(
            f"{argument}: {lines!r:.40} is a {type(lines).__name__}; give a list of strings, one per line"
        )
    return each_a_string(lines, argument, numbers if numbers and numbers.source else None)


def each_a_string(lines: Iterable[str], argument: str, numbers: LineNumbers | None) -> Iterator[str]:
    """Each item a line as the CLI reads one from a file: its own line ending left out (an open file's
    lines keep theirs), no line break inside, and text (a lone surrogate, which JSON's \\ud800 escape
    makes, cannot be encoded, and the tokenizer raised a bare TypeError)."""
    for number, line in enumerate(lines, start=1):
        where = numbers.name(number - 1) if numbers else f"{argument}: item {number}"
        if not isinstance(line, str):
            raise DataError(f"{where} is a {type(line).__name__}, not a string")
        line = line.removesuffix("\n").removesuffix("\r") if line.endswith("\n") else line
        fault = line_fault(line)
        if fault:
            raise DataError(f"{where} {fault}")
        yield line
