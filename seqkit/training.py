"""The training loop: teacher forcing, Adam, gradient clipping, periodic validation, best-BLEU keeping.

The loop knows nothing about terminals: it reports through a `Reporter` (see console.py for the rich
one) and writes JSON records to the model directory's training log.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F

from seqkit import modeldir
from seqkit.config import Config
from seqkit.data.batches import inference_batches, make_batch, training_batches
from seqkit.data.text import corpus_file, read_parallel
from seqkit.data.tokenizer import PAD, Tokenizer, build_tokenizer
from seqkit.errors import DataError
from seqkit.metrics import corpus_score, perplexity
from seqkit.search import decode_corpus


class Reporter(Protocol):
    def start(self, info: dict) -> None: ...
    def step(self, stats: dict) -> None: ...
    def validation(self, record: dict) -> None: ...
    def finish(self, summary: dict) -> None: ...


class NullReporter:
    """Reports nothing: for library use and tests."""

    def start(self, info: dict) -> None:
        pass

    def step(self, stats: dict) -> None:
        pass

    def validation(self, record: dict) -> None:
        pass

    def finish(self, summary: dict) -> None:
        pass


@dataclass
class ParallelIds:
    """A tokenized parallel corpus and the raw target text (references for BLEU)."""

    src: list[list[int]]
    tgt: list[list[int]]
    tgt_text: list[str]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _read(cfg: Config, split: str) -> tuple[list[str], list[str]]:
    prefix = getattr(cfg.data, split)
    if not prefix:
        raise DataError(
            f"data.{split} is not set; give it in the config file or with --set data.{split}=PREFIX"
        )
    option = f"data.{split}"
    return read_parallel(
        corpus_file(prefix, cfg.data.src_lang, option), corpus_file(prefix, cfg.data.tgt_lang, option)
    )


def tokenize_parallel(
    tokenizer: Tokenizer, src: list[str], tgt: list[str], max_length: int | None
) -> ParallelIds:
    src_ids, tgt_ids = tokenizer.encode_src(src), tokenizer.encode_tgt(tgt)
    keep = [
        i
        for i in range(len(src))
        if src_ids[i]
        and tgt_ids[i]
        and (max_length is None or max(len(src_ids[i]), len(tgt_ids[i])) <= max_length)
    ]
    return ParallelIds([src_ids[i] for i in keep], [tgt_ids[i] for i in keep], [tgt[i] for i in keep])


def batch_loss(model, batch) -> tuple[torch.Tensor, int, int]:
    """Summed cross-entropy over non-padding target tokens, their count, and how many were argmax-correct."""
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)  # (batch, tgt_len, vocab)
    target = batch.tgt_out
    loss = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=PAD, reduction="sum"
    )
    real = target != PAD
    correct = int(((logits.argmax(-1) == target) & real).sum())
    return loss, int(real.sum()), correct


@torch.no_grad()
def corpus_nll(model, data: ParallelIds, batch_size: int) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the targets given the sources, and the token count."""
    was_training = model.training
    model.eval()
    total_nll, total_tokens = 0.0, 0
    for indices in inference_batches([len(s) for s in data.src], batch_size):
        loss, tokens, _ = batch_loss(model, make_batch(data.src, data.tgt, indices))
        total_nll, total_tokens = total_nll + float(loss), total_tokens + tokens
    model.train(was_training)
    return total_nll, total_tokens


@torch.no_grad()
def validate(model, tokenizer: Tokenizer, dev: ParallelIds, cfg: Config) -> dict:
    """Dev perplexity (teacher forcing) and greedy BLEU / chrF on detokenized output."""
    total_nll, total_tokens = corpus_nll(model, dev, cfg.decode.batch_size)
    limit = cfg.train.valid_max_sentences or len(dev.src)
    greedy = dataclasses.replace(cfg.decode, beam_size=1)  # validation stays fast
    hypotheses = tokenizer.decode_tgt([h[0].tokens for h in decode_corpus(model, dev.src[:limit], greedy)])
    bleu = corpus_score("bleu", hypotheses, [dev.tgt_text[:limit]])
    chrf = corpus_score("chrf", hypotheses, [dev.tgt_text[:limit]])
    model.train()  # validation runs between training steps
    return {
        "dev_loss": total_nll / max(1, total_tokens),
        "dev_ppl": perplexity(total_nll, total_tokens),
        "dev_bleu": bleu.score,
        "bleu_signature": bleu.signature,
        "dev_chrf": chrf.score,
        "chrf_signature": chrf.signature,
        "dev_sentences": limit,
    }


class Limits:
    """Stop conditions (0 = none) and how far along the run is, as the largest fraction of any limit."""

    def __init__(self, cfg: Config, steps_per_epoch: int):
        self.max_steps, self.max_epochs = cfg.train.max_steps, cfg.train.max_epochs
        self.max_seconds = cfg.train.max_minutes * 60
        self.steps_per_epoch = steps_per_epoch
        if not (self.max_steps or self.max_epochs or self.max_seconds):
            raise DataError("no stopping limit: set train.max_steps, train.max_epochs or train.max_minutes")

    def fraction(self, step: int, elapsed: float) -> float:
        done = [0.0]
        if self.max_steps:
            done.append(step / self.max_steps)
        if self.max_epochs:
            done.append(step / (self.steps_per_epoch * self.max_epochs))
        if self.max_seconds:
            done.append(elapsed / self.max_seconds)
        return min(1.0, max(done))

    def reached(self, step: int, epoch: int, elapsed: float) -> str | None:
        if self.max_steps and step >= self.max_steps:
            return "max_steps"
        if self.max_epochs and epoch >= self.max_epochs:
            return "max_epochs"
        if self.max_seconds and elapsed >= self.max_seconds:
            return "max_minutes"
        return None


@dataclass
class Window:
    """Training statistics accumulated between two log records."""

    nll: float = 0.0
    tokens: int = 0
    correct: int = 0
    grad_norm: float = 0.0
    steps: int = 0
    seconds: float = 0.0  # time spent in training steps (validation excluded)

    def add(self, nll: float, tokens: int, correct: int, grad_norm: float, seconds: float) -> None:
        self.nll += nll
        self.tokens += tokens
        self.correct += correct
        self.grad_norm += grad_norm
        self.steps += 1
        self.seconds += seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)

    def record(self, step: int, epoch: int, lr: float, elapsed: float) -> dict:
        return {
            "kind": "train",
            "step": step,
            "epoch": epoch,
            "loss": self.nll / self.tokens,
            "ppl": perplexity(self.nll, self.tokens),
            "accuracy": self.correct / self.tokens,
            "grad_norm": self.grad_norm / self.steps,
            "lr": lr,
            "target_tokens_per_s": self.tokens_per_s,
            "elapsed_s": elapsed,
        }


def train_step(model, optimizer, batch, clip_norm: float) -> tuple[float, int, int, float]:
    """One update on `batch`: (summed nll, target tokens, correct tokens, gradient norm before clipping)."""
    loss, tokens, correct = batch_loss(model, batch)
    optimizer.zero_grad(set_to_none=True)
    (loss / tokens).backward()  # mean over tokens: the step size does not depend on the batch size
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm or math.inf))
    optimizer.step()
    return float(loss.detach()), tokens, correct, grad_norm


def epoch_batches(sizes: list[int], cfg: Config, epoch: int) -> list[list[int]]:
    """The batches of epoch `epoch` (0-based): a function of the seed and the epoch only."""
    return training_batches(sizes, cfg.train.batch_tokens, random.Random(f"{cfg.train.seed}-{epoch}"))


def prepare_data(cfg: Config) -> tuple[Tokenizer, ParallelIds, ParallelIds, int]:
    """Read train and dev, build the tokenizer, tokenize: (tokenizer, train, dev, skipped train pairs)."""
    train_src, train_tgt = _read(cfg, "train")
    dev_src, dev_tgt = _read(cfg, "dev")
    tokenizer = build_tokenizer(train_src, train_tgt, cfg.tokenizer, cfg.train.seed)
    train_data = tokenize_parallel(tokenizer, train_src, train_tgt, cfg.data.max_length)
    dev = tokenize_parallel(tokenizer, dev_src, dev_tgt, None)
    if not train_data.src or not dev.src:
        raise DataError(
            f"no usable sentence pairs in data.train or data.dev (after data.max_length = {cfg.data.max_length})"
        )
    return tokenizer, train_data, dev, len(train_src) - len(train_data.src)


def train(cfg: Config, output_dir: Path, reporter: Reporter | None = None) -> dict:
    """Train a translation model into `output_dir`; returns the closing summary record."""
    reporter = reporter or NullReporter()
    seed_everything(cfg.train.seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    tokenizer, train_data, dev, skipped = prepare_data(cfg)
    modeldir.create(output_dir, cfg, tokenizer)
    model = modeldir.build_model(cfg, tokenizer)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.learning_rate)
    sizes = [max(len(s), len(t)) + 1 for s, t in zip(train_data.src, train_data.tgt, strict=True)]
    batches = epoch_batches(sizes, cfg, 0)
    limits = Limits(cfg, len(batches))
    info = {
        "kind": "start",
        "train_pairs": len(train_data.src),
        "skipped_pairs": skipped,
        "dev_pairs": len(dev.src),
        "src_vocab": tokenizer.src_vocab_size,
        "tgt_vocab": tokenizer.tgt_vocab_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps_per_epoch": len(batches),
        "threads": torch.get_num_threads(),
    }
    modeldir.append_log(output_dir, info)
    reporter.start(info)

    step, epoch, best_bleu, stop = 0, 0, -math.inf, None
    start = time.monotonic()
    window = Window()

    def run_validation() -> None:
        nonlocal best_bleu
        record = {"kind": "valid", "step": step, "epoch": epoch + 1, **validate(model, tokenizer, dev, cfg)}
        record["best"] = record["dev_bleu"] > best_bleu
        if record["best"]:
            best_bleu = record["dev_bleu"]
            modeldir.save_weights(output_dir, model)
        record["elapsed_s"] = time.monotonic() - start
        modeldir.append_log(output_dir, record)
        reporter.validation(record)

    while stop is None:
        for indices in batches:
            step_start = time.monotonic()
            nll, tokens, correct, grad_norm = train_step(
                model, optimizer, make_batch(train_data.src, train_data.tgt, indices), cfg.train.clip_norm
            )
            step += 1
            window.add(nll, tokens, correct, grad_norm, time.monotonic() - step_start)
            elapsed = time.monotonic() - start
            reporter.step(
                {
                    "step": step,
                    "epoch": epoch + 1,
                    "loss": nll / tokens,
                    "target_tokens_per_s": window.tokens_per_s,
                    "elapsed_s": elapsed,
                    "fraction": limits.fraction(step, elapsed),
                }
            )
            if step % cfg.train.log_every == 0:
                modeldir.append_log(
                    output_dir, window.record(step, epoch + 1, optimizer.param_groups[0]["lr"], elapsed)
                )
                window = Window()
            if step % cfg.train.valid_every == 0:
                run_validation()
            stop = limits.reached(step, epoch, time.monotonic() - start)
            if stop:
                break
        else:
            epoch += 1
            stop = limits.reached(step, epoch, time.monotonic() - start)
            batches = epoch_batches(sizes, cfg, epoch)
    if step % cfg.train.valid_every != 0:
        run_validation()  # the last steps count too
    summary = {
        "kind": "end",
        "reason": stop,
        "steps": step,
        "epochs": epoch,
        "best_dev_bleu": best_bleu,
        "elapsed_s": time.monotonic() - start,
    }
    modeldir.append_log(output_dir, summary)
    reporter.finish(summary)
    return summary
