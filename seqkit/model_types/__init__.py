"""The registry of model types, a plain dict as sacrebleu keeps its METRICS: `model.type` -> how that
type is built, trained, scored, inspected and described. Commands ask the registry instead of testing
the type themselves; adding a model type means one module here and one entry below."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from seqkit import modeldir
from seqkit.config import Config
from seqkit.data.tokenizer import TOKENIZER_FILES
from seqkit.errors import ConfigError, ModelDirError
from seqkit.model_types import classifier, lm, seq2seq
from seqkit.model_types.base import ModelType

MODEL_TYPES: dict[str, ModelType] = {
    "seq2seq": seq2seq.MODEL_TYPE,
    "lm": lm.MODEL_TYPE,
    "classifier": classifier.MODEL_TYPE,
}


def of(cfg: Config) -> ModelType:
    return MODEL_TYPES[cfg.model.type]


def load(model_dir: Path | str, device: torch.device | str = "cpu") -> tuple[Config, Any, nn.Module]:
    """Config, tokenizer (a classifier's: data.encoding.Codec) and model (in eval mode, on `device`) of a
    model directory, or a ModelDirError."""
    model_dir = Path(model_dir)
    modeldir.require_directory(model_dir)
    cfg = modeldir.load_config(model_dir)
    # (the random initial weights, replaced below, would draw from the caller's torch.manual_seed stream)
    with torch.random.fork_rng(devices=[]):
        tokenizer, model = of(cfg).build(cfg, model_dir)
    weights = modeldir.read_weights(model_dir)
    try:
        modeldir.load_weights_into(model, weights)
    except (SafetensorError, RuntimeError, ValueError) as e:
        raise _tokenizer_mismatch(model_dir, tokenizer, model, weights) or modeldir.damaged_weights(
            model_dir / modeldir.WEIGHTS, e
        ) from None
    model.eval()
    return cfg, tokenizer, model.to(device)


def _tokenizer_mismatch(
    model_dir: Path, tokenizer: Any, model: nn.Module, weights: dict
) -> ModelDirError | None:
    """The error for weights that do not fit the model because the tokenizer gives another vocabulary
    size than the weights have (a damaged or replaced spm.model loads all the same; or the weights are
    another model's: either may be the wrong file), or None: then the weights alone are to blame."""
    sizes = {getattr(tokenizer, side, None) for side in ("src_vocab_size", "tgt_vocab_size")} - {None}
    expected = model.state_dict()
    for name, tensor in weights.items():
        built = expected.get(name)
        if built is None or built.shape == tensor.shape or built.dim() != tensor.dim():
            continue
        for pieces, trained in zip(built.shape, tensor.shape, strict=True):
            if pieces != trained and pieces in sizes:
                files = [f for f in TOKENIZER_FILES if (model_dir / f).is_file()]
                return ModelDirError(
                    f"{model_dir}: the tokenizer ({', '.join(files)}) gives {pieces:,} pieces where "
                    f"{modeldir.WEIGHTS} has {trained:,} ({name}): one of them is damaged or from another "
                    "model; restore it"
                )
    return None


def require_task(cfg: Config, task: str, model_dir: Path, command: str | None = None) -> None:
    """A ConfigError naming the command that fits when the model at `model_dir` cannot do `task`;
    `command`: the one the user ran, where it is not `task` (`evaluate --data` predicts)."""
    model_type = of(cfg)
    if model_type.task != task:
        wanted = [t.name for t in MODEL_TYPES.values() if t.task == task]
        article = "an" if model_type.title[0] in "aeiou" else "a"  # an encoder-decoder, a language model
        raise ConfigError(
            f"{model_dir} holds {article} {model_type.title} (model.type = {model_type.name}), "
            f"which `seqkit {command or task}` cannot use; use `seqkit {model_type.task}`, "
            f"or a model with model.type = {' or '.join(wanted)}"
        )


def perplexity(
    model_dir: Path, source: Path | None, reference: Path, device: torch.device | str = "cpu"
) -> dict:
    """Perplexity of `reference` under the model (given `source` where the model type needs one)."""
    cfg, tokenizer, model = load(model_dir, device)
    return {"model": str(model_dir), **of(cfg).perplexity(model, tokenizer, cfg, source, reference)}
