"""The model directory: one self-describing folder that every command can load.

    config.toml          the full resolved config of the run (model shape, tokenizer, decoding)
    spm.model            the SentencePiece model (spm.src.model + spm.tgt.model when not joint;
                         chars.json for a character tokenizer)
    model.safetensors    the weights of the best checkpoint (no pickle)
    train_log.jsonl      one JSON record per log interval and validation

Every file is written to a temporary name and renamed into place, so a killed process leaves either
the old file or the new one, never half of one. The weights are written last: a directory without
them is an unfinished run, and `load` says so.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from seqkit import config as config_lib
from seqkit.config import Config
from seqkit.data.tokenizer import TOKENIZER_FILES, CharTokenizer, Tokenizer, load_tokenizer
from seqkit.errors import ConfigError, ModelDirError
from seqkit.models.lm import RNNLanguageModel
from seqkit.models.seq2seq import Seq2Seq

CONFIG = "config.toml"
WEIGHTS = "model.safetensors"
LOG = "train_log.jsonl"
CHECKPOINTS = "checkpoints"  # written by checkpoint.py


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a torn one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # os.open with 0o666 lets the umask decide the mode, as for any file the user creates
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def start(model_dir: Path, cfg: Config, tokenizer: Tokenizer | CharTokenizer, resume: bool) -> None:
    """Prepare the directory of a run: a new one gets its tokenizer, config and an empty log; a resumed one
    gets the config of this session (the command may have changed limits or rates)."""
    if not resume:
        model_dir.mkdir(parents=True, exist_ok=True)
        # a run killed before its first checkpoint may have left files of another tokenizer or model
        for stale in (*TOKENIZER_FILES, WEIGHTS):
            (model_dir / stale).unlink(missing_ok=True)
        for name, data in tokenizer.files().items():
            atomic_write(model_dir / name, data)
        (model_dir / LOG).unlink(missing_ok=True)
        # a run killed before naming its first checkpoint may have left an unnamed one
        shutil.rmtree(model_dir / CHECKPOINTS, ignore_errors=True)
    atomic_write(model_dir / CONFIG, config_lib.to_toml(cfg))


def build_model(cfg: Config, tokenizer: Tokenizer | CharTokenizer) -> Seq2Seq | RNNLanguageModel:
    if cfg.model.type == "lm":
        return RNNLanguageModel(cfg.model, tokenizer.tgt_vocab_size)
    return Seq2Seq(cfg.model, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)


def weights_bytes(model: torch.nn.Module) -> bytes:
    return save_safetensors(_unshared_state(model))


def save_weights(model_dir: Path, model: torch.nn.Module) -> None:
    atomic_write(model_dir / WEIGHTS, weights_bytes(model))


def load_weights_into(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a state saved by `weights_bytes` (tied tensors stored once); a mismatch is a ValueError."""
    if set(state) != set(_unshared_state(model)):
        raise ValueError("tensor names differ from the model this config describes")
    model.load_state_dict(state, strict=False)


def _unshared_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with each tied tensor once (safetensors refuses shared memory)."""
    tensors, seen = {}, set()
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            tensors[name] = tensor.detach().cpu().contiguous()
    return tensors


def append_log(model_dir: Path, record: dict) -> None:
    path = model_dir / LOG
    with open(path, "a+b") as f:  # appends always go to the end
        torn = False
        if f.seek(0, os.SEEK_END) > 0:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"  # a line torn by a killed process stays alone on its line
        f.write((b"\n" if torn else b"") + json.dumps(record).encode("utf-8") + b"\n")


def read_log(model_dir: Path) -> list[dict]:
    """The training log; a line torn by a killed process (only ever the last) is skipped."""
    path = Path(model_dir) / LOG
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


STEPPED_KINDS = ("train", "valid", "grad", "warning")  # records that describe one training step


def current_history(records: list[dict]) -> list[dict]:
    """The log as the run now stands: a resume from the checkpoint at step S discards the records of
    steps after S that the interrupted attempt wrote (those steps are trained again, or never were)."""
    kept: list[dict] = []
    for record in records:
        if record.get("kind") == "resume":
            step = record.get("step", 0)
            kept = [r for r in kept if not (r.get("kind") in STEPPED_KINDS and r.get("step", 0) > step)]
        kept.append(record)
    return kept


def _require(path: Path, what: str, fix: str) -> Path:
    if not path.is_file():
        raise ModelDirError(f"{path.parent}: no {path.name} ({what}); {fix}")
    return path


def load_config(model_dir: Path) -> Config:
    path = _require(model_dir / CONFIG, "the run's config", "is this a seqkit model directory?")
    try:
        return config_lib.from_dict(config_lib.read_toml(path), str(path))
    except ConfigError as e:
        raise ModelDirError(f"{e} (the model directory is damaged; retrain it)") from None


def load(
    model_dir: Path | str, device: torch.device | str = "cpu"
) -> tuple[Config, Tokenizer | CharTokenizer, Seq2Seq | RNNLanguageModel]:
    """Config, tokenizer and model (in eval mode, on `device`) of a model directory, or a ModelDirError."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirError(f"{model_dir}: no such model directory; train one with `seqkit train --output`")
    cfg = load_config(model_dir)
    tokenizer = load_tokenizer(model_dir)
    weights = _require(
        model_dir / WEIGHTS, "the weights", "training has not reached its first validation; train longer"
    )
    model = build_model(cfg, tokenizer)
    try:
        load_weights_into(model, load_safetensors(weights.read_bytes()))
    except (SafetensorError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelDirError(
            f"{weights}: damaged or from another model ({first}); retrain or restore it"
        ) from None
    model.eval()
    return cfg, tokenizer, model.to(device)
