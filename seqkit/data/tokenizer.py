"""SentencePiece subwords: training on the training data, encoding and decoding.

Special ids are fixed so that the model code can rely on them: pad 0, unk 1, bos 2, eos 3.
A joint tokenizer uses one SentencePiece model for both sides; otherwise each side has its own.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import sentencepiece as spm

from seqkit.config import TokenizerConfig
from seqkit.errors import DataError, ModelDirError

PAD, UNK, BOS, EOS = 0, 1, 2, 3


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


class Tokenizer:
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


def build_tokenizer(src_lines: list[str], tgt_lines: list[str], cfg: TokenizerConfig, seed: int) -> Tokenizer:
    """Train (or load, if `cfg.model` is set) the tokenizer for a run."""
    if cfg.model:
        try:
            with open(cfg.model, "rb") as f:
                return Tokenizer(f.read(), names=(cfg.model, cfg.model))
        except FileNotFoundError:
            raise DataError(f"tokenizer.model = {cfg.model!r}: no such file; check the path") from None
    if cfg.joint:
        return Tokenizer(train_sentencepiece(src_lines + tgt_lines, cfg, seed))
    return Tokenizer(train_sentencepiece(src_lines, cfg, seed), train_sentencepiece(tgt_lines, cfg, seed))
