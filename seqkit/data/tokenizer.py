"""Tokenizers: SentencePiece subwords, or plain characters (char-rnn style).

Special ids are fixed so that the model code can rely on them: pad 0, unk 1, bos 2, eos 3.
A joint tokenizer uses one vocabulary for both sides; otherwise each side has its own.
A tokenizer saves itself as files of a model directory (`files()`) and loads from them (`load_tokenizer`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import sentencepiece as spm

from seqkit.config import TokenizerConfig
from seqkit.errors import DataError, ModelDirError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
SPM_JOINT, SPM_SRC, SPM_TGT, CHARS = "spm.model", "spm.src.model", "spm.tgt.model", "chars.json"
TOKENIZER_FILES = (SPM_JOINT, SPM_SRC, SPM_TGT, CHARS)


def train_sentencepiece(lines: Iterable[str], cfg: TokenizerConfig, seed: int) -> bytes:
    """Train a SentencePiece model on `lines`; returns the serialized model."""
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise DataError("no non-empty training lines to train SentencePiece on; check data.train")
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=cfg.vocab_size,
        model_type=cfg.model_type,
        character_coverage=cfg.character_coverage,
        input_sentence_size=cfg.max_sentences,
        shuffle_input_sentence=True,
        hard_vocab_limit=False,  # tiny corpora (tests, toy tasks) may not support the full size
        pad_id=PAD,
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        num_threads=1,  # deterministic, and the corpus is small enough
        minloglevel=2,
    )
    return model.getvalue()


def _processor(model_bytes: bytes, name: str) -> spm.SentencePieceProcessor:
    try:
        processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    except (RuntimeError, OSError) as e:
        raise ModelDirError(f"{name}: not a SentencePiece model ({e}); retrain or restore the file") from None
    if (processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id()) != (
        PAD,
        UNK,
        BOS,
        EOS,
    ):
        raise ModelDirError(
            f"{name}: special ids must be pad=0 unk=1 bos=2 eos=3; train it with those ids or let seqkit train one"
        )
    return processor


class Tokenizer(Protocol):
    """What the rest of seqkit asks of a tokenizer: both sides' ids and pieces, and its files."""

    @property
    def joint(self) -> bool: ...  # one vocabulary for both sides
    @property
    def src_vocab_size(self) -> int: ...
    @property
    def tgt_vocab_size(self) -> int: ...
    def encode_src(self, lines: list[str]) -> list[list[int]]: ...
    def encode_tgt(self, lines: list[str]) -> list[list[int]]: ...
    def decode_tgt(self, ids: list[list[int]]) -> list[str]: ...
    def src_pieces(self, line: str) -> list[str]: ...  # the pieces of a source line
    def tgt_pieces(self, ids: list[int]) -> list[str]: ...  # the pieces of target ids
    def files(self) -> dict[str, bytes]: ...  # file name in a model directory -> contents


class SentencePieceTokenizer:
    """Source and target SentencePiece processors (the same one when joint)."""

    def __init__(
        self, src_model: bytes, tgt_model: bytes | None = None, names: Sequence[str] = ("spm", "spm")
    ):
        self.src_model = src_model
        self.tgt_model = tgt_model  # None when joint
        self.src = _processor(src_model, names[0])
        self.tgt = self.src if tgt_model is None else _processor(tgt_model, names[1])

    @property
    def joint(self) -> bool:
        return self.tgt_model is None

    @property
    def src_vocab_size(self) -> int:
        return self.src.get_piece_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.tgt.get_piece_size()

    def encode_src(self, lines: list[str]) -> list[list[int]]:
        return self.src.encode(lines, out_type=int)

    def encode_tgt(self, lines: list[str]) -> list[list[int]]:
        return self.tgt.encode(lines, out_type=int)

    def decode_tgt(self, ids: list[list[int]]) -> list[str]:
        return self.tgt.decode(ids)

    def src_pieces(self, line: str) -> list[str]:
        return self.src.encode(line, out_type=str)

    def tgt_pieces(self, ids: list[int]) -> list[str]:
        return [self.tgt.id_to_piece(i) for i in ids]

    def files(self) -> dict[str, bytes]:
        if self.tgt_model is None:
            return {SPM_JOINT: self.src_model}
        return {SPM_SRC: self.src_model, SPM_TGT: self.tgt_model}


class CharTokenizer:
    """Every character is a token; characters unseen in training map to unk. Always joint."""

    def __init__(self, chars: Sequence[str]):
        self.chars = list(chars)  # id 4 + i is chars[i]
        self.ids = {c: i + len(SPECIALS) for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, lines: Iterable[str]) -> CharTokenizer:
        return cls(sorted(set("".join(lines))))

    @property
    def joint(self) -> bool:
        return True

    @property
    def src_vocab_size(self) -> int:
        return len(SPECIALS) + len(self.chars)

    @property
    def tgt_vocab_size(self) -> int:
        return self.src_vocab_size

    def encode_src(self, lines: list[str]) -> list[list[int]]:
        return [[self.ids.get(c, UNK) for c in line] for line in lines]

    def encode_tgt(self, lines: list[str]) -> list[list[int]]:
        return self.encode_src(lines)

    def decode_tgt(self, ids: list[list[int]]) -> list[str]:
        first = len(SPECIALS)
        return ["".join(self.chars[i - first] if i >= first else "" for i in row) for row in ids]

    def src_pieces(self, line: str) -> list[str]:
        return list(line)

    def tgt_pieces(self, ids: list[int]) -> list[str]:
        first = len(SPECIALS)
        return [self.chars[i - first] if i >= first else SPECIALS[i] for i in ids]

    def files(self) -> dict[str, bytes]:
        return {CHARS: json.dumps(self.chars, ensure_ascii=False).encode("utf-8")}


def load_tokenizer(directory: Path) -> Tokenizer:
    """The tokenizer saved in a model directory by `files()`."""
    if (directory / CHARS).is_file():
        try:
            chars = json.loads((directory / CHARS).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ModelDirError(
                f"{directory / CHARS}: damaged character list; retrain or restore it"
            ) from None
        return CharTokenizer(chars)
    if (directory / SPM_JOINT).is_file():
        return SentencePieceTokenizer(
            (directory / SPM_JOINT).read_bytes(), names=(str(directory / SPM_JOINT),) * 2
        )
    src, tgt = directory / SPM_SRC, directory / SPM_TGT
    for path in (src, tgt):
        if not path.is_file():
            raise ModelDirError(
                f"{directory}: no {SPM_JOINT}, {path.name} or {CHARS} (the tokenizer); retrain it"
            )
    return SentencePieceTokenizer(src.read_bytes(), tgt.read_bytes(), names=(str(src), str(tgt)))


def build_tokenizer(src_lines: list[str], tgt_lines: list[str], cfg: TokenizerConfig, seed: int) -> Tokenizer:
    """Train (or load, if `cfg.model` is set) the tokenizer for a run."""
    if cfg.type == "char":
        return CharTokenizer.train(src_lines + tgt_lines)
    if cfg.model:
        try:
            with open(cfg.model, "rb") as f:
                return SentencePieceTokenizer(f.read(), names=(cfg.model, cfg.model))
        except FileNotFoundError:
            raise DataError(f"tokenizer.model = {cfg.model!r}: no such file; check the path") from None
    if cfg.joint:
        return SentencePieceTokenizer(train_sentencepiece(src_lines + tgt_lines, cfg, seed))
    return SentencePieceTokenizer(
        train_sentencepiece(src_lines, cfg, seed), train_sentencepiece(tgt_lines, cfg, seed)
    )
