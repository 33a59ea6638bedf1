"""Corpora as the models read them: a parallel corpus as token ids (with the raw target text that BLEU
needs), cleaned and counted; and monolingual text as one token stream cut into rows for a language model.

Cleaning that users otherwise script by hand happens here, each step counted for the start of training:
byte order marks and carriage returns (fixed while reading), exact duplicate pairs (data.dedupe), empty
pairs, pairs longer than data.max_length pieces, and pairs whose sides' lengths differ by more than
data.max_length_ratio.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import random
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import torch

from seqkit import outputs
from seqkit.config import Config
from seqkit.data.arrays import ArrayWriter, TokenArrays, id_dtype
from seqkit.data.formats import files as corpus_files
from seqkit.data.formats import iter_pairs, read_pairs, read_target_side
from seqkit.data.tokenizer import EOS, Tokenizer
from seqkit.errors import DataError


@dataclass
class ParallelIds:
    """A tokenized parallel corpus and the raw target text (references for BLEU)."""

    src: Sequence[list[int]]  # TokenArrays for a training corpus, lists otherwise
    tgt: Sequence[list[int]]
    tgt_text: list[str]  # empty for a training corpus: its text is not kept
    kept: list[int] = field(default_factory=list)  # tokenize_parallel: which of the pairs given these are


@dataclass
class Cleaning:
    """What reading and cleaning a training corpus fixed or skipped."""

    fixes: Counter = field(default_factory=Counter)  # lines whose "bom" or "cr" was removed, with "controls"
    duplicates: int = 0
    empty: int = 0
    too_long: int = 0
    ratio: int = 0

    @property
    def skipped(self) -> int:
        return self.duplicates + self.empty + self.too_long + self.ratio

    def counts(self) -> dict[str, int]:
        """For the training log's start record."""
        return {
            "skipped_pairs": self.skipped,
            "empty_pairs": self.empty,
            "long_pairs": self.too_long,
            "ratio_pairs": self.ratio,
            "duplicate_pairs": self.duplicates,
            "bom_lines": self.fixes["bom"],
            "cr_lines": self.fixes["cr"],
            "control_lines": self.fixes["controls"],
            "break_lines": self.fixes["breaks"],
        }


def _required(cfg: Config, split: str) -> str:
    spec = getattr(cfg.data, split)
    if not spec:
        raise DataError(
            f"data.{split} is not set; give it in the config file or with --set data.{split}=PATH"
        )
    return spec


def hold_out(count: int, size: int, seed: int) -> list[int]:
    """Which of `count` pairs form a held-out dev set of `size` (at most a tenth): the same for a seed."""
    size = min(size, count // 10)
    return sorted(random.Random(f"{seed}-dev").sample(range(count), size))


def tokenize_parallel(
    tokenizer: Tokenizer,
    src: list[str],
    tgt: list[str],
    max_length: int | None,
    max_length_ratio: float = 0.0,
    cleaning: Cleaning | None = None,
) -> ParallelIds:
    """Token ids of the pairs whose sides are both non-empty and (given `max_length`) no longer than it
    and (given `max_length_ratio`) not more than that many times longer than each other."""
    src_ids, tgt_ids = tokenizer.encode_src(src), tokenizer.encode_tgt(tgt)
    keep = _keep(src_ids, tgt_ids, max_length, max_length_ratio, cleaning or Cleaning())
    return ParallelIds([src_ids[i] for i in keep], [tgt_ids[i] for i in keep], [tgt[i] for i in keep], keep)


CACHE = "cache"  # the folder of a run directory that holds its training corpus as token arrays
# raise when the arrays' layout or the cleaning changes (2: a blank JSON line is an empty pair, which
# moves the pairs held out of data.train; 3: control characters leave a line before SentencePiece reads
# it, a TSV line of spaces is an empty pair, data.dedupe drops the copies of a held-out pair)
CACHE_VERSION = 3
CHUNK_PAIRS = 50_000  # pairs tokenized at a time (sentencepiece's threads share a chunk)


@dataclass
class PreparedPairs:
    """A run's training pairs as token arrays (no text kept) and its dev pairs as lists with their text."""

    train: ParallelIds  # src and tgt are TokenArrays; tgt_text is empty
    dev: ParallelIds
    dev_src_text: list[str]
    held_out: bool  # dev was held out of data.train (no data.dev)
    cleaning: Cleaning
    from_cache: bool  # the arrays were already there: nothing was tokenized
    # the digest of what the arrays hold (the training files, the tokenizer, the data.* keys that choose
    # pairs): a checkpoint keeps it, and a resume over other pairs is told so
    key: str = ""


def _pair_key(pair: tuple[str, str]) -> bytes:
    # (0xff, which UTF-8 never holds, between the sides: not a tab, which a side may hold)
    return hashlib.blake2b(b"\xff".join(side.encode() for side in pair), digest_size=8).digest()


def _train_pairs(
    cfg: Config, held: dict[int, tuple[str, str]], fixes: Counter | None, cleaning: Cleaning | None
):
    """The training pairs as they are read: the held-out dev pairs (by line index) left out; with
    data.dedupe, duplicates too, and the copies of a held-out pair, which would leak the dev set into
    training (counted as duplicates into `cleaning` when given)."""
    seen: set[bytes] = {_pair_key(pair) for pair in held.values()} if cfg.data.dedupe else set()
    for index, pair in enumerate(iter_pairs(cfg.data.train, cfg.data, "data.train", fixes)):
        if index in held:
            continue
        if cfg.data.dedupe and all(side.strip() for side in pair):  # (an empty pair is counted as empty)
            key = _pair_key(pair)
            if key in seen:
                if cleaning is not None:
                    cleaning.duplicates += 1
                continue
            seen.add(key)
        yield pair


# the data keys the training pairs' arrays depend on (not data.dev, read apart, nor a classifier's keys):
# another value of any other key (a new seed with data.dev given, say) tokenized the corpus again
ARRAY_KEYS = (
    "train", "format", "src_lang", "tgt_lang", "src_column", "tgt_column", "src_key", "tgt_key",
    "max_length", "max_length_ratio", "dedupe",
)  # fmt: skip


def _cache_key(cfg: Config, tokenizer: Tokenizer) -> str:
    """A digest of everything the arrays depend on: the training files' bytes, the tokenizer's files,
    the data keys they read and, without data.dev, which pairs are held out (dev_size and the seed). A
    changed corpus or tokenizer gets another key."""
    digest = hashlib.blake2b(digest_size=16)
    read = {key: value for key, value in dataclasses.asdict(cfg.data).items() if key in ARRAY_KEYS}
    held_out = None if cfg.data.dev else [cfg.data.dev_size, cfg.train.seed]
    digest.update(json.dumps([CACHE_VERSION, read, held_out]).encode())
    for name, data in sorted(tokenizer.files().items()):
        digest.update(name.encode() + b"\0" + data)
    for path in corpus_files(cfg.data.train, cfg.data, "data.train"):
        size = 0
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
                size += len(block)
        digest.update(b"\0%d\0" % size)  # where one file ends: two sides' bytes may shift between them
    return digest.hexdigest()


def prepare_pairs(
    cfg: Config,
    run_dir: Path,
    tokenizer: Tokenizer | None,
    build: Callable[[Iterable[str], Iterable[str]], Tokenizer],
    threads: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[Tokenizer, PreparedPairs]:
    """The tokenizer (given, or `build` on the training text) and the run's corpus: the training pairs
    tokenized once into token arrays under `run_dir`/cache (reused while their key holds), cleaned and
    counted; the dev pairs from data.dev, or held out of data.train with the seed."""
    held: dict[int, tuple[str, str]] = {}  # the pairs held out of data.train, by line index
    if cfg.data.dev:
        dev_src, dev_tgt = read_pairs(cfg.data.dev, cfg.data, "data.dev")
    else:
        count = sum(1 for _ in iter_pairs(_required(cfg, "train"), cfg.data, "data.train"))
        chosen = hold_out(count, cfg.data.dev_size, cfg.train.seed)
        if not chosen:
            raise DataError(
                f"data.dev is not set and data.train has {count} pairs, too few to hold out a dev set "
                "(a tenth at most); give data.dev"
            )
        wanted = set(chosen)
        for index, pair in enumerate(iter_pairs(cfg.data.train, cfg.data, "data.train")):
            if index in wanted:
                held[index] = pair
        dev_src, dev_tgt = [s for s, _ in held.values()], [t for _, t in held.values()]
    if tokenizer is None:
        if cfg.data.dev:  # a pass that checks the files before SentencePiece reads them (it hides errors)
            sum(1 for _ in iter_pairs(_required(cfg, "train"), cfg.data, "data.train"))
        tokenizer = build(
            (s for s, _ in _train_pairs(cfg, held, None, None)),
            (t for _, t in _train_pairs(cfg, held, None, None)),
        )
    dev = tokenize_parallel(tokenizer, dev_src, dev_tgt, None)
    dev_src = [dev_src[i] for i in dev.kept]  # line i of the held-out files is one pair (an empty one is not)
    key = _cache_key(cfg, tokenizer)
    folder = run_dir / CACHE / f"train-{key}"
    with _cache_lock(folder.parent):
        arrays, cleaning = _open_cache(folder, tokenizer)
        from_cache = arrays is not None
        if arrays is None:
            arrays, cleaning = _build_cache(folder, cfg, tokenizer, held, threads, on_progress)
    train = ParallelIds(arrays[0], arrays[1], [])
    return tokenizer, PreparedPairs(train, dev, dev_src, not cfg.data.dev, cleaning, from_cache, key)


@contextlib.contextmanager
def _cache_lock(root: Path) -> Iterator[None]:
    """The cache folder `root` to this process alone for the block: of the processes that share a run
    directory (torchrun's on a machine where the first process is not, each with its own copy of the
    tokenizer), one builds the arrays and the others then open them. Each built them at once, and
    removed the others' unfinished arrays."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # (released when the file is closed)
        yield
    finally:
        os.close(fd)


def _open_cache(
    folder: Path, tokenizer: Tokenizer
) -> tuple[tuple[TokenArrays, TokenArrays] | None, Cleaning]:
    """The cached arrays and their cleaning counts; (None, ...) when there are none, or when they are
    damaged (a file cut short, overwritten or edited): the cache is seqkit's own, and is built again."""
    meta_path = folder / "meta.json"  # written last: its presence means the arrays are complete
    if not meta_path.is_file():
        return None, Cleaning()
    try:
        meta = json.loads(meta_path.read_text())
        cleaning = Cleaning(
            Counter(meta["fixes"]), *(int(meta[k]) for k in ("duplicates", "empty", "too_long", "ratio"))
        )
        src = TokenArrays.open(folder / "src", id_dtype(tokenizer.src_vocab_size))
        tgt = TokenArrays.open(folder / "tgt", id_dtype(tokenizer.tgt_vocab_size))
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError):
        return None, Cleaning()
    sizes = (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)
    if not all(a.whole(size) for a, size in zip((src, tgt), sizes, strict=True)) or len(src) != len(tgt):
        return None, Cleaning()
    return (src, tgt), cleaning


def _remove_arrays(root: Path) -> None:
    """The cache folder `root`'s arrays, complete or not, by their names only."""
    for old in [*root.glob("train-*"), *root.glob(".train-*.tmp")]:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)


def remove_cache(run_dir: Path) -> None:
    """The run directory's token arrays and their lock removed (by their names only; the folder too once
    empty): a run of a model type that reads no cache, started with --overwrite over an encoder-decoder's
    run, left its arrays there, a corpus' size on the disk."""
    root = run_dir / CACHE
    if not root.is_dir() or root.is_symlink():
        return
    _remove_arrays(root)
    (root / ".lock").unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # (not empty: something of the user's stays)
        root.rmdir()


@contextlib.contextmanager
def _removed_unless_complete(tmp: Path) -> Iterator[None]:
    """`tmp` removed when the block fails or is stopped (SIGTERM too: a corpus of millions of pairs takes
    minutes to tokenize, and the default action left a half-written folder)."""
    with outputs.terminable():
        try:
            yield
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _build_cache(
    folder: Path,
    cfg: Config,
    tokenizer: Tokenizer,
    held: dict[int, tuple[str, str]],
    threads: int,
    on_progress: Callable[[int], None] | None,
) -> tuple[tuple[TokenArrays, TokenArrays], Cleaning]:
    """Tokenize the training pairs chunk by chunk into new arrays, then name them complete."""
    root = folder.parent
    _remove_arrays(root)  # of an older corpus or tokenizer, or a killed build
    tmp = root / f".{folder.name}.tmp"
    tmp.mkdir(parents=True)
    with _removed_unless_complete(tmp):
        cleaning = Cleaning()
        writers = (
            ArrayWriter(tmp / "src", id_dtype(tokenizer.src_vocab_size)),
            ArrayWriter(tmp / "tgt", id_dtype(tokenizer.tgt_vocab_size)),
        )
        data, done = cfg.data, 0
        pairs = _train_pairs(cfg, held, cleaning.fixes, cleaning)
        while chunk := list(islice(pairs, CHUNK_PAIRS)):
            src_ids = tokenizer.encode_src([s for s, _ in chunk], threads)
            tgt_ids = tokenizer.encode_tgt([t for _, t in chunk], threads)
            kept = _keep(src_ids, tgt_ids, data.max_length, data.max_length_ratio, cleaning)
            writers[0].extend(src_ids[i] for i in kept)
            writers[1].extend(tgt_ids[i] for i in kept)
            done += len(chunk)
            if on_progress:
                on_progress(done)
        for writer in writers:
            writer.close()
        meta = {
            "fixes": dict(cleaning.fixes),
            **{k: getattr(cleaning, k) for k in ("duplicates", "empty", "too_long", "ratio")},
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        os.rename(tmp, folder)
        src = TokenArrays.open(folder / "src", writers[0].dtype)
        return (src, TokenArrays.open(folder / "tgt", writers[1].dtype)), cleaning


def _keep(src_ids, tgt_ids, max_length: int | None, max_length_ratio: float, cleaning: Cleaning) -> list[int]:
    """Which pairs pass the filters: both sides non-empty, within max_length and max_length_ratio."""
    keep = []
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids, strict=True)):
        if not s or not t:
            cleaning.empty += 1
        elif max_length is not None and max(len(s), len(t)) > max_length:
            cleaning.too_long += 1
        elif max_length_ratio and max(len(s), len(t)) > max_length_ratio * min(len(s), len(t)):
            cleaning.ratio += 1
        else:
            keep.append(i)
    return keep


def read_text(cfg: Config, split: str, fixes: Counter | None = None) -> list[str]:
    """The non-empty lines of the target side of data.{split}: what a language model reads."""
    lines = read_target_side(_required(cfg, split), cfg.data, f"data.{split}", fixes)
    return [line for line in lines if line.strip()]


def token_stream(tokenizer: Tokenizer, lines: list[str]) -> torch.Tensor:
    """(tokens,) EOS, then each line's tokens followed by EOS: every line starts after an end of line."""
    ids = [EOS]
    for line_ids in tokenizer.encode_tgt(lines):
        ids.extend(line_ids)
        ids.append(EOS)
    return torch.tensor(ids, dtype=torch.long)


def stream_rows(stream: torch.Tensor, rows: int) -> torch.Tensor:
    """(rows, length): the stream cut into `rows` contiguous parts (the remainder is dropped)."""
    rows = max(1, min(rows, (len(stream) - 1) // 2))
    length = len(stream) // rows
    return stream[: rows * length].view(rows, length)


def chunk_starts(data: torch.Tensor, bptt_length: int) -> list[int]:
    return list(range(0, data.size(1) - 1, bptt_length))


def chunk(data: torch.Tensor, start: int, bptt_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets, each (rows, <= bptt_length)."""
    end = min(start + bptt_length, data.size(1) - 1)
    return data[:, start:end], data[:, start + 1 : end + 1]
