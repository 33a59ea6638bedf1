"""Tokenizers: SentencePiece subwords, or plain characters (char-rnn style).

Special ids are fixed so that the model code can rely on them: pad 0, unk 1, bos 2, eos 3. A
SentencePiece model with other special ids (or none for pad) is mapped onto them (`SentencePieceSide`).
A joint tokenizer uses one vocabulary for both sides; otherwise each side has its own.
A tokenizer saves itself as files of a model directory (`files()`) and loads from them (`load_tokenizer`).
"""

from __future__ import annotations

import io
import itertools
import json
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import sentencepiece as spm

from seqkit import outputs
from seqkit.config import TokenizerConfig
from seqkit.data.text import without_controls
from seqkit.errors import ConfigError, DataError, ModelDirError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
SPM_JOINT, SPM_SRC, SPM_TGT, CHARS = "spm.model", "spm.src.model", "spm.tgt.model", "chars.json"
TOKENIZER_FILES = (SPM_JOINT, SPM_SRC, SPM_TGT, CHARS)
# SentencePiece drops, unsaid, every training line longer than its max_sentence_length (4,192 bytes by
# default): a corpus of documents (a classifier's, a paragraph-per-line language model's) would learn its
# vocabulary from its few short lines, or fail to train. Each line's first TRAINING_CHARS characters are
# what it learns from instead: plenty for a piece's statistics, and a bound on the memory of one line.
TRAINING_CHARS = 65536


def train_sentencepiece(
    lines: Iterable[str], cfg: TokenizerConfig, seed: int, vocab_size: int = 0, option: str = "vocab_size"
) -> bytes:
    """Train a SentencePiece model of `vocab_size` pieces (0: cfg.vocab_size) on `lines` (read once, as
    they come, keeping a sample of cfg.max_sentences drawn with `seed`); returns the serialized model.
    `option`: the key of tokenizer.* that set the size, named in an error."""
    stream = (line[:TRAINING_CHARS] for line in map(without_controls, lines) if line.strip())
    first = next(stream, None)
    if first is None:
        raise DataError("no non-empty training lines to train SentencePiece on; check data.train")
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    size, option = (vocab_size, option) if vocab_size else (cfg.vocab_size, "vocab_size")
    # (read before SentencePiece starts: a line's DataError or Ctrl-C is raised as itself, not wrapped)
    sample = _sample(itertools.chain([first], stream), cfg.max_sentences, seed)
    try:
        with outputs.native_call():
            _train(iter(sample), model, size, cfg)
    except RuntimeError as e:
        # "Vocabulary size is smaller than required_chars. 10 vs 82. ...": the data's characters need more
        required = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", str(e))
        if required is None:
            said = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(
                f"tokenizer: SentencePiece could not train on the training data ({said})"
            ) from None
        raise ConfigError(
            f"tokenizer.{option} = {size}: smaller than the {required.group(2)} pieces SentencePiece needs "
            f"for the characters of the training data (and its special pieces); raise it to at least "
            f"{required.group(2)}, or lower tokenizer.character_coverage"
        ) from None
    return model.getvalue()


def _sample(lines: Iterator[str], size: int, seed: int) -> list[str]:
    """At most `size` of `lines`, each line equally likely, the same for the same lines and seed: a
    reservoir sample. SentencePiece's own sample of a longer input (`input_sentence_size`) ignores its
    seed and differed from one process to the next, and so did the tokenizer and the run's every step."""
    rng = random.Random(seed)
    sample: list[str] = []
    for number, line in enumerate(lines):
        if number < size:
            sample.append(line)
        else:
            slot = rng.randrange(number + 1)
            if slot < size:
                sample[slot] = line
    return sample


def _train(sentences: Iterator[str], model: io.BytesIO, vocab_size: int, cfg: TokenizerConfig) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=sentences,
        model_writer=model,
        vocab_size=vocab_size,
        model_type=cfg.model_type,
        character_coverage=cfg.character_coverage,
        input_sentence_size=cfg.max_sentences,  # (no more are given: `_sample` drew them)
        max_sentence_length=4 * TRAINING_CHARS,  # bytes: a UTF-8 character takes at most 4
        shuffle_input_sentence=True,
        hard_vocab_limit=False,  # tiny corpora (tests, toy tasks) may not support the full size
        pad_id=PAD,
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        num_threads=1,  # deterministic, and the corpus is small enough
        minloglevel=2,
    )


def _processor(model_bytes: bytes, name: str) -> spm.SentencePieceProcessor:
    if not model_bytes:  # (sentencepiece takes no bytes for a model, then fails at the first line)
        raise ModelDirError(f"{name}: empty, not a SentencePiece model; retrain or restore the file")
    try:
        return spm.SentencePieceProcessor(model_proto=model_bytes)
    except (RuntimeError, OSError) as e:
        raise ModelDirError(f"{name}: not a SentencePiece model ({e}); retrain or restore the file") from None


class SentencePieceSide:
    """One SentencePiece model seen through seqkit's fixed ids: 0-3 are pad, unk, bos, eos, then come the
    model's other pieces in the model's own order. A model trained by seqkit has its specials at 0-3 and
    the mapping is the identity; any other model (sentencepiece's defaults unk=0 bos=1 eos=2 and no pad,
    BPE, user-defined symbols) is mapped, a special the model lacks taking a seqkit id of its own."""

    def __init__(self, model_bytes: bytes, name: str):
        self.model_bytes, self.processor = model_bytes, _processor(model_bytes, name)
        processor = self.processor
        specials = (
            processor.pad_id(),
            processor.unk_id(),
            processor.bos_id(),
            processor.eos_id(),
        )  # -1: none
        taken = {i for i in specials if i >= 0}
        others = [i for i in range(processor.get_piece_size()) if i not in taken]
        self.to_spm = [*specials, *others]  # seqkit id -> the model's id (-1: a special it lacks)
        self.from_spm = [0] * processor.get_piece_size()  # the model's id -> seqkit id
        for ours, theirs in enumerate(self.to_spm):
            if theirs >= 0:
                self.from_spm[theirs] = ours
        self.identity = self.to_spm == list(range(len(self.to_spm)))
        self.vocab_size = len(self.to_spm)

    def encode(self, lines: list[str], threads: int = 1) -> list[list[int]]:
        lines = [without_controls(line) for line in lines]  # (as the character tokenizer reads them)
        ids = self.processor.encode(lines, out_type=int, num_threads=threads)
        if self.identity:
            return ids
        table = self.from_spm
        return [[table[i] for i in row] for row in ids]

    def decode(self, ids: list[list[int]]) -> list[str]:
        if self.identity:
            return self.processor.decode(ids)
        to_spm, unk = self.to_spm, self.processor.unk_id()
        # specials the model lacks are dropped, as the model itself drops its control symbols
        rows = [[to_spm[i] for i in row if to_spm[i] >= 0 or i == UNK] for row in ids]
        return self.processor.decode([[unk if i < 0 else i for i in row] for row in rows])

    def piece_to_id(self, piece: str) -> int:
        """The seqkit id of a piece of the model."""
        return self.from_spm[self.processor.piece_to_id(piece)]

    def pieces(self, ids: list[int]) -> list[str]:
        return [
            self.processor.id_to_piece(self.to_spm[i]) if self.to_spm[i] >= 0 else SPECIALS[i] for i in ids
        ]


class Tokenizer(Protocol):
    """What the rest of seqkit asks of a tokenizer: both sides' ids and pieces, and its files."""

    @property
    def joint(self) -> bool: ...  # one vocabulary for both sides
    @property
    def src_vocab_size(self) -> int: ...
    @property
    def tgt_vocab_size(self) -> int: ...
    def encode_src(self, lines: list[str], threads: int = 1) -> list[list[int]]: ...
    def encode_tgt(self, lines: list[str], threads: int = 1) -> list[list[int]]: ...
    def decode_tgt(self, ids: list[list[int]]) -> list[str]: ...
    def src_pieces(self, line: str) -> list[str]: ...  # the pieces of a source line
    def tgt_pieces(self, ids: list[int]) -> list[str]: ...  # the pieces of target ids
    def src_id_pieces(self, ids: list[int]) -> list[str]: ...  # the pieces of source ids
    def files(self) -> dict[str, bytes]: ...  # file name in a model directory -> contents


class SentencePieceTokenizer:
    """Source and target SentencePiece models (the same one when joint)."""

    def __init__(
        self, src_model: bytes, tgt_model: bytes | None = None, names: Sequence[str] = ("spm", "spm")
    ):
        self.src = SentencePieceSide(src_model, names[0])
        self.tgt = self.src if tgt_model is None else SentencePieceSide(tgt_model, names[1])

    @property
    def joint(self) -> bool:
        return self.tgt is self.src

    @property
    def src_vocab_size(self) -> int:
        return self.src.vocab_size

    @property
    def tgt_vocab_size(self) -> int:
        return self.tgt.vocab_size

    def encode_src(self, lines: list[str], threads: int = 1) -> list[list[int]]:
        return self.src.encode(lines, threads)

    def encode_tgt(self, lines: list[str], threads: int = 1) -> list[list[int]]:
        return self.tgt.encode(lines, threads)

    def decode_tgt(self, ids: list[list[int]]) -> list[str]:
        return self.tgt.decode(ids)

    def src_pieces(self, line: str) -> list[str]:
        return self.src.processor.encode(without_controls(line), out_type=str)

    def tgt_pieces(self, ids: list[int]) -> list[str]:
        return self.tgt.pieces(ids)

    def src_id_pieces(self, ids: list[int]) -> list[str]:
        return self.src.pieces(ids)

    def files(self) -> dict[str, bytes]:
        if self.joint:
            return {SPM_JOINT: self.src.model_bytes}
        return {SPM_SRC: self.src.model_bytes, SPM_TGT: self.tgt.model_bytes}


class CharTokenizer:
    """Every character is a token; characters unseen in training map to unk. Always joint. Control
    characters (text.CONTROLS: NUL, a CR or a byte order mark inside a line, ...) are removed from every
    line, in training and after (a CR inside a line read as a space: text.without_controls), as for a
    SentencePiece model: they are never learnt as characters. Training counts the lines that had them
    (the start line's "removed ...")."""

    def __init__(self, chars: Sequence[str]):
        self.chars = list(chars)  # id 4 + i is chars[i]
        self.ids = {c: i + len(SPECIALS) for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, lines: Iterable[str]) -> CharTokenizer:
        chars: set[str] = set()
        for line in lines:  # line by line: a corpus of millions of pairs is never one string
            chars.update(without_controls(line))
        return cls(sorted(chars))

    @property
    def joint(self) -> bool:
        return True

    @property
    def src_vocab_size(self) -> int:
        return len(SPECIALS) + len(self.chars)

    @property
    def tgt_vocab_size(self) -> int:
        return self.src_vocab_size

    def encode_src(self, lines: list[str], threads: int = 1) -> list[list[int]]:
        return [[self.ids.get(c, UNK) for c in without_controls(line)] for line in lines]

    def encode_tgt(self, lines: list[str], threads: int = 1) -> list[list[int]]:
        return self.encode_src(lines)

    def decode_tgt(self, ids: list[list[int]]) -> list[str]:
        first = len(SPECIALS)
        return ["".join(self.chars[i - first] if i >= first else "" for i in row) for row in ids]

    def src_pieces(self, line: str) -> list[str]:
        return list(without_controls(line))

    def tgt_pieces(self, ids: list[int]) -> list[str]:
        first = len(SPECIALS)
        return [self.chars[i - first] if i >= first else SPECIALS[i] for i in ids]

    def src_id_pieces(self, ids: list[int]) -> list[str]:
        return self.tgt_pieces(ids)

    def files(self) -> dict[str, bytes]:
        return {CHARS: json.dumps(self.chars, ensure_ascii=False).encode("utf-8")}


def load_tokenizer(directory: Path) -> Tokenizer:
    """The tokenizer saved in a model directory by `files()`."""
    one_file = next((kind for kind in ((CHARS,), (SPM_JOINT,)) if (directory / kind[0]).is_file()), None)
    names = one_file or (SPM_SRC, SPM_TGT)
    for name in names:
        if not (directory / name).is_file():
            raise ModelDirError(f"{directory}: no {SPM_JOINT}, {name} or {CHARS} (the tokenizer); retrain it")
    return tokenizer_from_files({name: (directory / name).read_bytes() for name in names}, directory)


def tokenizer_from_files(files: dict[str, bytes], directory: Path) -> Tokenizer:
    """The tokenizer whose `files()` these are, as saved in (or meant for) the model directory `directory`,
    which its errors name."""
    if CHARS in files:
        try:
            return CharTokenizer(json.loads(files[CHARS].decode("utf-8")))
        except (ValueError, UnicodeDecodeError):
            raise ModelDirError(
                f"{directory / CHARS}: damaged character list; retrain or restore it"
            ) from None
    if SPM_JOINT in files:
        return SentencePieceTokenizer(files[SPM_JOINT], names=(str(directory / SPM_JOINT),) * 2)
    return SentencePieceTokenizer(
        files[SPM_SRC], files[SPM_TGT], names=(str(directory / SPM_SRC), str(directory / SPM_TGT))
    )


def _read_model(path: str, key: str) -> SentencePieceSide:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(f"tokenizer.{key} = {path!r}: no such file; check the path") from None
    except OSError as e:
        raise DataError(f"tokenizer.{key} = {path!r}: cannot be read ({e.strerror})") from None
    try:
        return SentencePieceSide(data, path)
    except ModelDirError:
        raise DataError(
            f"tokenizer.{key} = {path!r}: not a SentencePiece model; give a .model file written by "
            "spm_train, or leave the key empty to let seqkit train one"
        ) from None


def build_text_tokenizer(lines: Iterable[str], cfg: TokenizerConfig, seed: int, kind: str) -> Tokenizer:
    """`build_tokenizer` for a model of one text (`kind`: "a language model", "a classifier"), whose text
    is the target side. Separate vocabularies to train are an error naming the key: the source one had
    no lines, and the error said data.train had none. (Checked here, at a training's start, not in the
    config: a stored config that trained, a series classifier's say, never reads its tokenizer keys.)"""
    if cfg.type == "sentencepiece" and not cfg.joint and not cfg.src_model:
        raise ConfigError(
            f"tokenizer.joint = false: {kind} reads one text, with one vocabulary; set tokenizer.joint = "
            "true and use tokenizer.vocab_size (or tokenizer.model for your own SentencePiece model)"
        )
    return build_tokenizer([], lines, cfg, seed)


def build_tokenizer(
    src_lines: Iterable[str], tgt_lines: Iterable[str], cfg: TokenizerConfig, seed: int
) -> Tokenizer:
    """Train the tokenizer for a run on the lines (each iterable read once), or load the SentencePiece
    model(s) the config names."""
    if cfg.type == "char":
        return CharTokenizer.train(itertools.chain(src_lines, tgt_lines))
    if cfg.model:
        return SentencePieceTokenizer(_read_model(cfg.model, "model").model_bytes, names=(cfg.model,) * 2)
    if cfg.src_model:
        src, tgt = _read_model(cfg.src_model, "src_model"), _read_model(cfg.tgt_model, "tgt_model")
        return SentencePieceTokenizer(src.model_bytes, tgt.model_bytes, names=(cfg.src_model, cfg.tgt_model))
    if cfg.joint:
        return SentencePieceTokenizer(train_sentencepiece(itertools.chain(src_lines, tgt_lines), cfg, seed))
    return SentencePieceTokenizer(
        train_sentencepiece(src_lines, cfg, seed, cfg.src_vocab_size, "src_vocab_size"),
        train_sentencepiece(tgt_lines, cfg, seed, cfg.tgt_vocab_size, "tgt_vocab_size"),
    )
