"""What a model type is: how it is built, trained, scored, inspected and described. One `ModelType` per
module of this package; the registry in `__init__.py` maps `model.type` to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

from seqkit.config import Config, ModelConfig
from seqkit.data.tokenizer import Tokenizer, load_tokenizer
from seqkit.model_types.inspection import Inspection
from seqkit.training.log import EndRecord
from seqkit.training.task import Reporter
from seqkit.wording import counted


@dataclass(frozen=True)
class ModelType:
    name: str  # the value of model.type
    title: str  # what `seqkit info` calls it: "encoder-decoder", "language model"
    # what the model does with text, which is also the command that does it
    task: Literal["translate", "generate", "predict"]
    attends: bool  # whether model.attention applies to it
    # a model directory's tokenizer (a classifier's: data.encoding.Codec) and an untrained model of its config
    build: Callable[[Config, Path], tuple[Any, nn.Module]]
    # train into a model directory (resume: continue its latest checkpoint; overwrite: replace the trained
    # run it holds) -> the closing record
    train: Callable[[Config, Path, Reporter | None, bool, bool], EndRecord]
    # perplexity of a reference file (given its source file, for a model that needs one) -> JSON-ready dict
    perplexity: Callable[[nn.Module, Tokenizer, Config, Path | None, Path], dict]
    inspect: Callable[[Any, Any, Config, str], Inspection]  # (model, tokenizer, ...) -> one sentence's states
    # for `seqkit info`: run the model once on a (2, length) batch of token ids (output shapes are read by
    # forward hooks), the name of that length in the shapes, and which layers run once per output step
    probe: Callable[[Any, int], None]
    time_name: str
    per_step: Callable[[str], bool]
    describe_data: Callable[[dict[str, int]], str]  # a start record's data counts -> one line
    unit: str = "target tokens"  # what training counts per second
    # what a training log line shows beside the loss, given the start record's data counts: ppl,
    # accuracy, or nothing
    train_score: Callable[[dict[str, int]], str | None] = lambda data: "ppl"


def tokenizer_and_model(
    model_class: Callable[[ModelConfig, Tokenizer], nn.Module],
) -> Callable[[Config, Path], tuple[Tokenizer, nn.Module]]:
    """`build` for a model type whose model is made of its config and tokenizer alone."""

    def build(cfg: Config, model_dir: Path) -> tuple[Tokenizer, nn.Module]:
        tokenizer = load_tokenizer(model_dir)
        return tokenizer, model_class(cfg.model, tokenizer)

    return build


# what reading text mended (data/text.py), as a training's start record counts it: one, and several
FIXES = (
    ("bom_lines", "byte order mark", "byte order marks"),
    ("cr_lines", "carriage return", "carriage returns"),
    ("control_lines", "line's control characters", "lines' control characters"),
    ("break_lines", "JSON line with a line break in a field", "JSON lines with a line break in a field"),
)
FIX_NOTES = {  # what the count means, said after it
    "control_lines": " (NUL, BOM, ... inside a line; a CR there reads as a space)",
    "break_lines": " (read as a space)",
}


def described_fixes(data: dict[str, int]) -> str:
    """ "1 byte order mark, 600 carriage returns" of a start record's data ("" when nothing was mended)."""
    return ", ".join(
        counted(data[key], one, several) + FIX_NOTES.get(key, "")
        for key, one, several in FIXES
        if data.get(key)
    )
