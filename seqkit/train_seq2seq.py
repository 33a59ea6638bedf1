"""Training an encoder-decoder on a parallel corpus: data preparation, the update step, validation.

Validation scores dev perplexity (teacher forcing) and greedy BLEU / chrF; the weights with the best dev
BLEU are kept. The loop itself is `training.fit`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from seqkit import devices, modeldir
from seqkit.config import Config
from seqkit.data.batches import inference_batches, make_batch, training_batches
from seqkit.data.text import corpus_file, read_parallel
from seqkit.data.tokenizer import Tokenizer, build_tokenizer
from seqkit.errors import DataError, TrainingError
from seqkit.metrics import corpus_score, perplexity
from seqkit.search import decode_corpus
from seqkit.training import NullReporter, Reporter, TrainingTask, fit, seeded_rng, start_run


@dataclass
class ParallelIds:
    """A tokenized parallel corpus and the raw target text (references for BLEU)."""

    src: list[list[int]]
    tgt: list[list[int]]
    tgt_text: list[str]


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


def batch_loss(model, batch, label_smoothing: float = 0.0) -> tuple[torch.Tensor, int, int]:
    """Summed cross-entropy over non-padding target tokens, their count, and how many were argmax-correct.
    With label smoothing the returned loss is the smoothed objective (what training minimises)."""
    loss, correct = model(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out, label_smoothing)
    return loss, batch.num_tgt_tokens, int(correct)


@torch.no_grad()
def corpus_nll(model, data: ParallelIds, batch_size: int) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the targets given the sources, and the token count."""
    was_training = model.training
    model.eval()
    device = devices.model_device(model)
    total_nll, total_tokens = 0.0, 0
    for indices in inference_batches([len(s) for s in data.src], batch_size):
        loss, tokens, _ = batch_loss(model, make_batch(data.src, data.tgt, indices).to(device))
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
    return {
        "dev_loss": total_nll / max(1, total_tokens),
        "dev_ppl": perplexity(total_nll, total_tokens),
        "dev_bleu": bleu.score,
        "bleu_signature": bleu.signature,
        "dev_chrf": chrf.score,
        "chrf_signature": chrf.signature,
        "dev_sentences": limit,
    }


def prepare_data(cfg: Config, tokenizer: Tokenizer | None) -> tuple[Tokenizer, ParallelIds, ParallelIds, int]:
    """Read train and dev, build the tokenizer (unless given), tokenize: (tokenizer, train, dev, skipped pairs)."""
    train_src, train_tgt = _read(cfg, "train")
    dev_src, dev_tgt = _read(cfg, "dev")
    tokenizer = tokenizer or build_tokenizer(train_src, train_tgt, cfg.tokenizer, cfg.train.seed)
    train_data = tokenize_parallel(tokenizer, train_src, train_tgt, cfg.data.max_length)
    dev = tokenize_parallel(tokenizer, dev_src, dev_tgt, None)
    if not train_data.src or not dev.src:
        raise DataError(
            f"no usable sentence pairs in data.train or data.dev (after data.max_length = {cfg.data.max_length})"
        )
    return tokenizer, train_data, dev, len(train_src) - len(train_data.src)


def train(cfg: Config, output_dir: Path, reporter: Reporter | None = None, resume: bool = False) -> dict:
    """Train a translation model into `output_dir` (or continue its latest checkpoint, with `resume`);
    returns the closing summary record."""
    world = start_run(cfg)
    tokenizer, train_data, dev, skipped = prepare_data(
        cfg, modeldir.load_tokenizer(output_dir) if resume else None
    )
    if world.is_main:
        modeldir.start(output_dir, cfg, tokenizer, resume)
    model = modeldir.build_model(cfg, tokenizer).to(world.device)
    train_model = world.wrap(model)  # distributed: forward through DDP, which averages the gradients
    sizes = [max(len(s), len(t)) + 1 for s, t in zip(train_data.src, train_data.tgt, strict=True)]

    def step(indices: list[int]) -> tuple[torch.Tensor, float, int, int]:
        if len(indices) < world.size:  # the same decision on every process, before any collective
            raise TrainingError(
                f"a batch of {len(indices)} sentences cannot feed {world.size} processes; raise train.batch_tokens"
            )
        share = world.shard(indices)
        batch = make_batch(train_data.src, train_data.tgt, share).to(world.device)
        loss, tokens, correct = batch_loss(train_model, batch, cfg.train.label_smoothing)
        # The mean over the whole batch's target tokens, so the step size does not depend on the batch size
        # or on how many processes share it (DDP averages the processes' gradients: hence * world.size).
        batch_tokens = sum(len(train_data.tgt[i]) + 1 for i in indices)
        return loss * world.size / batch_tokens, float(loss.detach()), tokens, correct

    task = TrainingTask(
        batches=lambda epoch: training_batches(sizes, cfg.train.batch_tokens, seeded_rng(cfg, epoch)),
        step=step,
        validate=lambda: validate(model, tokenizer, dev, cfg),
        default_metric="bleu",
    )
    info = {
        "train_pairs": len(train_data.src),
        "skipped_pairs": skipped,
        "dev_pairs": len(dev.src),
        "src_vocab": tokenizer.src_vocab_size,
        "tgt_vocab": tokenizer.tgt_vocab_size,
    }
    return fit(cfg, output_dir, model, task, info, reporter or NullReporter(), resume, world)
