"""What a model type is: how it is built, trained, scored, inspected and described. One `ModelType` per
module of this package; the registry in `__init__.py` maps `model.type` to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from torch import nn

from seqkit.config import Config, ModelConfig
from seqkit.data.tokenizer import Tokenizer
from seqkit.model_types.inspection import Inspection
from seqkit.training.log import EndRecord
from seqkit.training.task import Reporter


@dataclass(frozen=True)
class ModelType:
    name: str  # the value of model.type
    title: str  # what `seqkit info` calls it: "encoder-decoder", "language model"
    # what the model does with text, which is also the command that does it
    task: Literal["translate", "generate"]
    attends: bool  # whether model.attention applies to it
    build: Callable[[ModelConfig, Tokenizer], nn.Module]  # an untrained model of a config
    # train into a model directory (resume: continue its latest checkpoint; overwrite: replace the trained
    # run it holds) -> the closing record
    train: Callable[[Config, Path, Reporter | None, bool, bool], EndRecord]
    # perplexity of a reference file (given its source file, for a model that needs one) -> JSON-ready dict
    perplexity: Callable[[nn.Module, Tokenizer, Config, Path | None, Path], dict]
    inspect: Callable[[nn.Module, Tokenizer, Config, str], Inspection]  # one sentence's states
    # for `seqkit info`: run the model once on a (2, length) batch of token ids (output shapes are read by
    # forward hooks), the name of that length in the shapes, and which layers run once per output step
    probe: Callable[[nn.Module, int], None]
    time_name: str
    per_step: Callable[[str], bool]
    describe_data: Callable[[dict[str, int]], str]  # a start record's data counts -> one line
