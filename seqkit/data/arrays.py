"""Token ids of many sequences in one flat binary array with an offsets index, memory-mapped from disk.

Sequence i is ids[offsets[i]:offsets[i + 1]]. The ids are int16 where the vocabulary fits (2 bytes a
token) and int32 otherwise; a Python list of lists of ints costs about 36 bytes a token. Files:

    {stem}.ids.bin        the ids, raw little-endian
    {stem}.offsets.npy    int64, one more than there are sequences
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import overload

import numpy as np


def id_dtype(vocab_size: int) -> np.dtype:
    return np.dtype("<i2") if vocab_size <= np.iinfo(np.int16).max + 1 else np.dtype("<i4")


COUNT_CHUNK = 1 << 22  # ids counted at a time (32 MB as int64)


def id_counts(ids: np.ndarray, size: int) -> np.ndarray:
    """(size,) int64: how often each id in [0, size) occurs in `ids`, counted a slice at a time.
    np.bincount of a whole memory-mapped side made an int64 copy of it: 8 bytes a token, against the
    arrays' 2, about 760 MB a side at 3M pairs."""
    counts = np.zeros(size, dtype=np.int64)
    for start in range(0, len(ids), COUNT_CHUNK):
        counts += np.bincount(np.asarray(ids[start : start + COUNT_CHUNK], dtype=np.int64), minlength=size)
    return counts


class TokenArrays(Sequence[list[int]]):
    """Read-only sequences of token ids: `len`, `[i]` (a list of ints), slices and `lengths`."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray):
        # plain ndarray views of the memory maps: a slice of an np.memmap pays for a memmap object
        self.ids, self.offsets = ids.view(np.ndarray), offsets.view(np.ndarray)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, index: int) -> list[int]: ...
    @overload
    def __getitem__(self, index: slice) -> list[list[int]]: ...
    def __getitem__(self, index: int | slice) -> list[int] | list[list[int]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:  # from the end, as a list's (offsets[-1 + 1] would be the first row's start)
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"row {index} of {len(self)}")
        return self.ids[self.offsets[index] : self.offsets[index + 1]].tolist()

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def whole(self, vocab_size: int) -> bool:
        """Whether the arrays are as a writer left them: offsets from 0, rising, ending at the last id, and
        every id in the vocabulary (a cache file cut short or overwritten is not)."""
        offsets = self.offsets
        if offsets.ndim != 1 or offsets.dtype != np.int64 or not len(offsets) or offsets[0] != 0:
            return False
        if offsets[-1] != len(self.ids) or (np.diff(offsets) < 0).any():
            return False
        return not len(self.ids) or (int(self.ids.min()) >= 0 and int(self.ids.max()) < vocab_size)

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.offsets.nbytes

    @classmethod
    def from_rows(cls, rows: list[list[int]], vocab_size: int) -> TokenArrays:
        """In memory, from lists (for small corpora and tests)."""
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(row) for row in rows], out=offsets[1:])
        flat = np.fromiter(
            (i for row in rows for i in row), dtype=id_dtype(vocab_size), count=int(offsets[-1])
        )
        return cls(flat, offsets)

    @classmethod
    def open(cls, stem: Path, dtype: np.dtype) -> TokenArrays:
        """The arrays written by an `ArrayWriter` with this stem, memory-mapped."""
        offsets = np.load(f"{stem}.offsets.npy")
        ids_path = Path(f"{stem}.ids.bin")
        if ids_path.stat().st_size == 0:
            return cls(np.zeros(0, dtype=dtype), offsets)
        return cls(np.memmap(ids_path, dtype=dtype, mode="r"), offsets)


class ArrayWriter:
    """Appends sequences to `{stem}.ids.bin` as they come, so a corpus never has to fit in memory as lists."""

    def __init__(self, stem: Path, dtype: np.dtype):
        self.stem, self.dtype = stem, dtype
        self.file = open(f"{stem}.ids.bin", "wb")
        self.offsets = array("q", [0])

    def extend(self, rows: Iterable[list[int]]) -> None:
        flat: list[int] = []
        for row in rows:
            flat.extend(row)
            self.offsets.append(self.offsets[-1] + len(row))
        np.asarray(flat, dtype=self.dtype).tofile(self.file)

    def close(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        np.save(f"{self.stem}.offsets.npy", np.frombuffer(self.offsets, dtype=np.int64))
