"""A vocabulary shortlist, as Marian's lexical shortlist: decoding computes the output layer over a few
hundred likely target pieces instead of the whole vocabulary.

For each source piece, the `translations` target pieces it most likely translates into, from a word
alignment of the training data (IBM Model 1, a few EM iterations: the lexical table that fast_align
also starts from), plus the `frequent` most frequent target pieces and the special tokens. At decoding,
a batch's columns are the union over its source pieces (`Shortlist.columns`), and the search ranks
log-probabilities normalised over those columns only (decoding/search.py maps them back to piece ids).

A sentence's union includes its batch-mates' candidates, so with a shortlist a sentence's output can
depend on the batch it was decoded in; without one it never does.

Stored in the model directory as `shortlist.npz` (numpy arrays, no pickle), written at the end of
training or by `seqkit shortlist MODEL_DIR`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np

from seqkit.data.arrays import id_counts
from seqkit.data.tokenizer import SPECIALS
from seqkit.errors import ConfigError, ModelDirError
from seqkit.outputs import atomic_write

FILE = "shortlist.npz"
# target pieces per source piece. Marian's examples use 50 to 100 words; with 8k subword pieces, 20 kept
# dev BLEU within 0.15 of the whole layer on the bench and demo models (greedy and beam 5, float32 and
# int8) and decoded 5-12% faster than 50 in int8 (bench/README.md, "The shortlist's int8 output layer")
TRANSLATIONS = 20
FREQUENT = 100  # the most frequent target pieces, always in
ITERATIONS = 5  # EM iterations of IBM Model 1
MAX_LINKS = 20_000_000  # source x target positions aligned at most: pairs sampled beyond (memory ~ 1 GB)
CHUNK_PAIRS = 1024  # pairs whose links are made at once


@dataclass(frozen=True)
class Shortlist:
    frequent: np.ndarray  # (n,) int64 target ids, most frequent first
    translations: np.ndarray  # (src_vocab, k) int64 target ids, most likely first; -1 pads

    def columns(self, src: np.ndarray) -> np.ndarray:
        """src (batch, src_len) int64 -> (n,) the sorted target ids a batch decodes over: the specials,
        the frequent pieces, and the translations of every source piece in the batch."""
        candidates = self.translations[np.unique(src)].ravel()
        ids = np.concatenate([np.arange(len(SPECIALS)), self.frequent, candidates[candidates >= 0]])
        return np.unique(ids).astype(np.int64)

    def to_bytes(self) -> bytes:
        buffer = BytesIO()
        np.savez(buffer, frequent=self.frequent, translations=self.translations)
        return buffer.getvalue()

    @classmethod
    def load(cls, path: Path) -> Shortlist:
        """The shortlist `to_bytes` wrote; a ValueError saying what is wrong with any other file (the ids'
        upper bound is the model's vocabulary: `read` checks it)."""
        try:
            arrays = np.load(path, allow_pickle=False)
        except (ValueError, EOFError):  # text, an empty file: numpy's advice to allow pickles does not fit
            raise ValueError("not a numpy .npz archive") from None
        if not isinstance(arrays, np.lib.npyio.NpzFile):  # one array saved under the .npz name
            raise ValueError("one numpy array, not the .npz archive of frequent and translations")
        with arrays:
            try:
                frequent, translations = arrays["frequent"], arrays["translations"]
            except (ValueError, EOFError):  # an object (pickled) array, a member cut short
                raise ValueError("an array numpy reads only by unpickling, or one cut short") from None
        _check_ids(frequent, "frequent", 1, 0)
        _check_ids(translations, "translations", 2, -1)  # (-1 pads)
        return cls(frequent.astype(np.int64), translations.astype(np.int64))


def _check_ids(ids: np.ndarray, name: str, dims: int, lowest: int) -> None:
    """A ValueError unless `ids` are integers of `dims` dimensions, none below `lowest`."""
    if ids.dtype.kind not in "iu" or ids.ndim != dims:
        raise ValueError(f"{name} is {ids.ndim}-d {ids.dtype}, not {dims}-d integer ids")
    if ids.size and ids.min() < lowest:
        raise ValueError(f"{name} holds id {ids.min()}, below {lowest}")


def read(model_dir: Path, src_vocab: int, tgt_vocab: int) -> Shortlist:
    """The shortlist of a model directory whose vocabularies have these sizes: a ConfigError saying how
    to build it when there is none, a ModelDirError when it is damaged or belongs to other vocabularies."""
    path = Path(model_dir) / FILE
    if not path.is_file():
        raise ConfigError(
            f"shortlist: {path} does not exist (a model trained before seqkit built shortlists); build it "
            f"with `seqkit shortlist {model_dir}`, or leave out the shortlist"
        )
    try:
        shortlist = Shortlist.load(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:  # (BadZipFile: a file cut short)
        raise ModelDirError(
            f"{path}: unreadable ({e}); build it again with `seqkit shortlist {model_dir}`"
        ) from None
    ids = np.concatenate([shortlist.frequent, shortlist.translations.ravel()])
    if len(shortlist.translations) != src_vocab or ids.max(initial=0) >= tgt_vocab:
        raise ModelDirError(
            f"{path}: made for other vocabularies than the model's; build it again with `seqkit shortlist {model_dir}`"
        )
    return shortlist


def write(model_dir: Path, shortlist: Shortlist) -> None:
    atomic_write(Path(model_dir) / FILE, shortlist.to_bytes())


def _sample(src_lengths: np.ndarray, tgt_lengths: np.ndarray, max_links: int, seed: int) -> np.ndarray:
    """The pairs to align: all of them, or a seeded random sample (in corpus order) of at most
    `max_links` source (+ NULL) x target positions."""
    links = (src_lengths + 1) * tgt_lengths
    if links.sum() <= max_links:
        return np.arange(len(links))
    order = np.random.default_rng(seed).permutation(len(links))
    taken = order[: int(np.searchsorted(np.cumsum(links[order]), max_links, side="right"))]
    return np.sort(taken)


def _links(src_ids, src_offsets, tgt_ids, tgt_offsets, pairs, null: int, tgt_vocab: int):
    """For every (pair, target position, source position or NULL) of `pairs`: the code of its (source
    piece, target piece), source x tgt_vocab + target, and the target position's number -> two (links,)
    arrays, filled CHUNK_PAIRS pairs at a time (the temporaries of all the links at once were the peak
    of a training's memory: 1.7 GB for the 20 M links of a large corpus)."""
    src_ids, tgt_ids = np.asarray(src_ids), np.asarray(tgt_ids)
    src_offsets, tgt_offsets = np.asarray(src_offsets), np.asarray(tgt_offsets)
    src_lengths, tgt_lengths = np.diff(src_offsets), np.diff(tgt_offsets)
    per_pair = (src_lengths[pairs] + 1) * tgt_lengths[pairs]
    codes = np.empty(int(per_pair.sum()), dtype=np.int64)
    positions = np.empty(len(codes), dtype=np.int32)  # (at most MAX_LINKS target positions)
    filled = numbered = 0
    for start in range(0, len(pairs), CHUNK_PAIRS):
        chunk = pairs[start : start + CHUNK_PAIRS]
        source, target, position = _chunk_links(
            src_ids,
            src_offsets[chunk],
            src_lengths[chunk],
            tgt_ids,
            tgt_offsets[chunk],
            tgt_lengths[chunk],
            null,
        )
        codes[filled : filled + len(source)] = source * tgt_vocab + target
        positions[filled : filled + len(source)] = position + numbered
        filled += len(source)
        numbered += int(tgt_lengths[chunk].sum())
    return codes, positions


def _chunk_links(src_ids, src_starts, src_lengths, tgt_ids, tgt_starts, tgt_lengths, null: int):
    """`_links` of a few pairs (their starts and lengths in the flat ids): the source piece, the target
    piece and the target position's number (from 0) -> three (links,) arrays."""
    width = src_lengths + 1  # + NULL: the source of target pieces that translate nothing
    per_pair = width * tgt_lengths
    pair = np.repeat(np.arange(len(src_starts)), per_pair)  # (links,)
    within = np.arange(int(per_pair.sum())) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
    tgt_position, src_position = within // width[pair], within % width[pair]
    is_null = src_position == src_lengths[pair]
    src_index = np.where(is_null, 0, src_starts[pair] + src_position)
    source = np.where(is_null, null, src_ids[src_index].astype(np.int64))
    target = tgt_ids[tgt_starts[pair] + tgt_position].astype(np.int64)
    # each target position of the sample, numbered: the posterior is normalised over its sources
    position = np.repeat(np.cumsum(tgt_lengths) - tgt_lengths, per_pair) + tgt_position
    return source, target, position


def lexical_table(
    src_ids, src_offsets, tgt_ids, tgt_offsets, src_vocab: int, tgt_vocab: int, seed: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IBM Model 1 p(target piece | source piece) over the pairs (flat ids + offsets, data/arrays.py)
    -> (entries,) source ids, target ids, probabilities, for every pair of pieces seen together."""
    src_offsets, tgt_offsets = np.asarray(src_offsets), np.asarray(tgt_offsets)
    pairs = _sample(np.diff(src_offsets), np.diff(tgt_offsets), MAX_LINKS, seed)
    null = src_vocab  # one more source "piece"
    link_codes, position = _links(src_ids, src_offsets, tgt_ids, tgt_offsets, pairs, null, tgt_vocab)
    codes, entry = np.unique(link_codes, return_inverse=True)  # entry: (links,)
    del link_codes
    entry_src, entry_tgt = codes // tgt_vocab, codes % tgt_vocab
    prob = np.ones(len(codes))  # uniform start: the first iteration counts co-occurrences
    for _ in range(ITERATIONS):
        weight = prob[entry]
        weight /= np.bincount(position, weight)[position]  # posterior of each source for its target
        counts = np.bincount(entry, weight, minlength=len(codes))
        prob = counts / np.bincount(entry_src, counts, minlength=null + 1)[entry_src]
    real = entry_src != null
    return entry_src[real], entry_tgt[real], prob[real]


def build(
    src_ids,
    src_offsets,
    tgt_ids,
    tgt_offsets,
    src_vocab: int,
    tgt_vocab: int,
    translations: int = TRANSLATIONS,
    frequent: int = FREQUENT,
    seed: int = 1,
) -> Shortlist:
    """The shortlist of a parallel corpus of token ids (flat arrays and offsets, as data/arrays.py)."""
    source, target, prob = lexical_table(
        src_ids, src_offsets, tgt_ids, tgt_offsets, src_vocab, tgt_vocab, seed
    )
    # more than the target vocabulary would only add -1 padding (and --translations 2000000000 asked
    # numpy for terabytes)
    translations = min(translations, tgt_vocab)
    order = np.lexsort((-prob, source))  # by source piece, most likely first
    source, target = source[order], target[order]
    starts = np.searchsorted(source, np.arange(src_vocab))
    rank = np.arange(len(source)) - starts[source]
    table = np.full((src_vocab, translations), -1, dtype=np.int64)
    kept = rank < translations
    table[source[kept], rank[kept]] = target[kept]
    counts = id_counts(tgt_ids, tgt_vocab)  # (a slice at a time: no int64 copy of the whole side)
    counts[: len(SPECIALS)] = -1  # the specials are always in
    most_frequent = np.argsort(-counts, kind="stable")[: min(frequent, tgt_vocab - len(SPECIALS))]
    return Shortlist(most_frequent.astype(np.int64), table)


@dataclass
class _Restricted:
    """A batch's encoded source with its shortlist: the columns and the output layer that computes them."""

    encoded: object
    columns: np.ndarray  # (n,) sorted target ids
    output_layer: object  # the inner steps' `output_layer(columns)`

    def select(self, index: np.ndarray) -> _Restricted:
        return _Restricted(self.encoded.select(index), self.columns, self.output_layer)  # type: ignore[attr-defined]


class ShortlistSteps:
    """A model's search steps (decoding/search.py) whose output layer computes, for each batch, only the
    columns of `shortlist`; `columns(encoded)` tells the search which target ids they are."""

    def __init__(self, steps, shortlist: Shortlist):
        if not hasattr(steps, "output_layer"):
            raise ConfigError("shortlist: these steps compute their whole output layer (an ONNX export's do)")
        self.steps, self.shortlist = steps, shortlist
        if hasattr(steps, "top_k"):
            self.top_k = steps.top_k

    def encode(self, src: np.ndarray, src_lengths: np.ndarray):
        encoded, state = self.steps.encode(src, src_lengths)
        columns = self.shortlist.columns(src)
        return _Restricted(encoded, columns, self.steps.output_layer(columns)), state

    def step(self, prev: np.ndarray, state, encoded: _Restricted):
        return self.steps.step(prev, state, encoded.encoded, encoded.output_layer)

    @staticmethod
    def columns(encoded: _Restricted) -> np.ndarray:
        return encoded.columns
