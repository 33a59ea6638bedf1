"""Training a recurrent language model by truncated backpropagation through time (TBPTT).

The training text becomes one token stream (each line followed by EOS), cut into `streams` equal rows
that are read side by side in chunks of `bptt_length` tokens. The hidden state is carried from one
chunk to the next, detached, so gradients reach back `bptt_length` tokens while the state sees the whole
stream. The weights with the lowest dev perplexity are kept.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from seqkit import devices, modeldir
from seqkit.config import Config
from seqkit.data.text import corpus_file, read_lines
from seqkit.data.tokenizer import EOS, build_tokenizer
from seqkit.errors import DataError
from seqkit.metrics import perplexity
from seqkit.models.lm import detach_state
from seqkit.training import NullReporter, Reporter, TrainingTask, fit, start_run

EVAL_ROWS = 8  # rows the dev / test stream is cut into for scoring (a batch of 8 contiguous parts)


def read_text(prefix: str, lang: str, option: str) -> list[str]:
    """The non-empty lines of `{prefix}.{lang}` (or .gz)."""
    return [line for line in read_lines(corpus_file(prefix, lang, option)) if line.strip()]


def token_stream(tokenizer, lines: list[str]) -> torch.Tensor:
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


def chunk_loss(model, inputs, targets, state, label_smoothing: float = 0.0):
    """Summed cross-entropy (smoothed, if asked), correct argmax count and the state after the chunk."""
    logits, state = model(inputs, state)
    loss = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        targets.reshape(-1),
        reduction="sum",
        label_smoothing=label_smoothing,
    )
    correct = int((logits.max(-1).indices == targets).sum())  # = argmax, faster on the CPU
    return loss, correct, state


@torch.no_grad()
def score_text(model, tokenizer, lines: list[str], bptt_length: int) -> dict:
    """Perplexity per token and bits per character (newlines counted) of `lines`, state carried through."""
    was_training = model.training
    model.eval()
    stream = token_stream(tokenizer, lines)
    data = stream_rows(stream, EVAL_ROWS).to(devices.model_device(model))
    total_nll, tokens, state = 0.0, 0, None
    for start in chunk_starts(data, bptt_length):
        inputs, targets = chunk(data, start, bptt_length)
        loss, _, state = chunk_loss(model, inputs, targets, state)
        total_nll, tokens = total_nll + float(loss), tokens + targets.numel()
    model.train(was_training)
    # Bits per character: the text's characters (with newlines) in proportion to the tokens scored
    # (the first token of each row is context, not scored). Exact for a character tokenizer.
    covered_chars = sum(len(line) + 1 for line in lines) * tokens / (len(stream) - 1)
    return {
        "ppl": perplexity(total_nll, tokens),
        "nll_per_token": total_nll / max(1, tokens),
        "bpc": total_nll / math.log(2) / max(1.0, covered_chars),
        "tokens": tokens,
    }


def train(cfg: Config, output_dir: Path, reporter: Reporter | None = None, resume: bool = False) -> dict:
    """Train a language model on the `data.tgt_lang` side of `data.train` into `output_dir` (or continue
    its latest checkpoint, with `resume`)."""
    world = start_run(cfg)
    train_lines = read_text(cfg.data.train, cfg.data.tgt_lang, "data.train")
    dev_lines = read_text(cfg.data.dev, cfg.data.tgt_lang, "data.dev")
    if not train_lines or not dev_lines:
        raise DataError("data.train and data.dev must each have at least one non-empty line")
    if resume:
        tokenizer = modeldir.load_tokenizer(output_dir)
    else:
        tokenizer = build_tokenizer([], train_lines, cfg.tokenizer, cfg.train.seed)
    streams = max(1, cfg.train.batch_tokens // cfg.train.bptt_length)
    data = stream_rows(token_stream(tokenizer, train_lines), streams)
    if data.size(0) < world.size:
        raise DataError(
            f"{data.size(0)} streams cannot feed {world.size} processes; raise train.batch_tokens"
        )
    rows = data[world.rank :: world.size].to(world.device)  # this process's streams
    if world.is_main:
        modeldir.start(output_dir, cfg, tokenizer, resume)
    model = modeldir.build_model(cfg, tokenizer).to(world.device)
    train_model = world.wrap(model)  # distributed: forward through DDP, which averages the gradients
    state = None

    def step(start: int) -> tuple[torch.Tensor, float, int, int]:
        nonlocal state
        if start == 0:
            state = None  # each epoch reads the streams afresh
        inputs, targets = chunk(rows, start, cfg.train.bptt_length)
        loss, correct, state = chunk_loss(train_model, inputs, targets, state, cfg.train.label_smoothing)
        state = detach_state(state)
        all_tokens = targets.size(1) * data.size(0)  # of every process (DDP averages: hence * world.size)
        return loss * world.size / all_tokens, float(loss.detach()), targets.numel(), correct

    def validate() -> dict:
        scores = score_text(model, tokenizer, dev_lines, cfg.train.bptt_length)
        return {"dev_loss": scores["nll_per_token"], "dev_ppl": scores["ppl"], "dev_bpc": scores["bpc"]}

    def load_state(saved: dict) -> None:
        nonlocal state
        state = saved["hidden"]

    task = TrainingTask(
        batches=lambda epoch: chunk_starts(data, cfg.train.bptt_length),
        step=step,
        validate=validate,
        default_metric="ppl",
        # the hidden state carried into the next chunk (a distributed run restarts it on resume: each
        # process holds only its own streams' state)
        state_dict=lambda: {"hidden": state if world.size == 1 else None},
        load_state_dict=load_state,
    )
    info = {
        "train_lines": len(train_lines),
        "train_tokens": data.numel(),
        "streams": data.size(0),
        "dev_lines": len(dev_lines),
        "vocab": tokenizer.tgt_vocab_size,
    }
    return fit(cfg, output_dir, model, task, info, reporter or NullReporter(), resume, world)
