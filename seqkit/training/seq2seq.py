"""Training an encoder-decoder on a parallel corpus: data preparation, the update step, validation.

Validation scores dev perplexity (teacher forcing) and greedy BLEU / chrF; the weights with the best dev
BLEU are kept. The loop itself is `loop.fit`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from seqkit import modeldir
from seqkit.config import Config
from seqkit.data.batches import make_batch, training_batches
from seqkit.data.corpus import ParallelIds, read_pairs, tokenize_parallel
from seqkit.data.tokenizer import Tokenizer, build_tokenizer, load_tokenizer
from seqkit.decoding.search import decode_corpus
from seqkit.errors import DataError, TrainingError
from seqkit.models.seq2seq import Seq2Seq
from seqkit.scoring.likelihood import corpus_nll, pair_loss, perplexity
from seqkit.scoring.metrics import corpus_score
from seqkit.training.log import EndRecord
from seqkit.training.loop import (
    DevScores,
    NullReporter,
    Reporter,
    StepLoss,
    TrainingTask,
    fit,
    seeded_rng,
    start_run,
)


@torch.no_grad()
def validate(model, tokenizer: Tokenizer, dev: ParallelIds, cfg: Config) -> DevScores:
    """Dev perplexity (teacher forcing) and greedy BLEU / chrF on detokenized output."""
    total_nll, total_tokens = corpus_nll(model, dev, cfg.decode.batch_size)
    limit = cfg.train.valid_max_sentences or len(dev.src)
    greedy = dataclasses.replace(cfg.decode, beam_size=1)  # validation stays fast
    hypotheses = tokenizer.decode_tgt([h[0].tokens for h in decode_corpus(model, dev.src[:limit], greedy)])
    bleu = corpus_score("bleu", hypotheses, [dev.tgt_text[:limit]])
    chrf = corpus_score("chrf", hypotheses, [dev.tgt_text[:limit]])
    return DevScores(
        scores={
            "loss": total_nll / max(1, total_tokens),
            "ppl": perplexity(total_nll, total_tokens),
            "bleu": bleu.score,
            "chrf": chrf.score,
        },
        signatures={"bleu": bleu.signature, "chrf": chrf.signature},
        sentences=limit,
    )


def prepare_data(cfg: Config, tokenizer: Tokenizer | None) -> tuple[Tokenizer, ParallelIds, ParallelIds, int]:
    """Read train and dev, build the tokenizer (unless given), tokenize: (tokenizer, train, dev, skipped pairs)."""
    train_src, train_tgt = read_pairs(cfg, "train")
    dev_src, dev_tgt = read_pairs(cfg, "dev")
    tokenizer = tokenizer or build_tokenizer(train_src, train_tgt, cfg.tokenizer, cfg.train.seed)
    train_data = tokenize_parallel(tokenizer, train_src, train_tgt, cfg.data.max_length)
    dev = tokenize_parallel(tokenizer, dev_src, dev_tgt, None)
    if not train_data.src or not dev.src:
        raise DataError(
            f"no usable sentence pairs in data.train or data.dev (after data.max_length = {cfg.data.max_length})"
        )
    return tokenizer, train_data, dev, len(train_src) - len(train_data.src)


def train(cfg: Config, output_dir: Path, reporter: Reporter | None = None, resume: bool = False) -> EndRecord:
    """Train a translation model into `output_dir` (or continue its latest checkpoint, with `resume`);
    returns the closing record."""
    world = start_run(cfg)
    tokenizer, train_data, dev, skipped = prepare_data(cfg, load_tokenizer(output_dir) if resume else None)
    if world.is_main:
        modeldir.start(output_dir, cfg, tokenizer, resume)
    model = Seq2Seq.from_config(cfg.model, tokenizer).to(world.device)
    train_model = world.wrap(model)  # distributed: forward through DDP, which averages the gradients
    sizes = [max(len(s), len(t)) + 1 for s, t in zip(train_data.src, train_data.tgt, strict=True)]

    def step(indices: list[int]) -> StepLoss:
        if len(indices) < world.size:  # the same decision on every process, before any collective
            raise TrainingError(
                f"a batch of {len(indices)} sentences cannot feed {world.size} processes; raise train.batch_tokens"
            )
        share = world.shard(indices)
        batch = make_batch(train_data.src, train_data.tgt, share).to(world.device)
        loss, nll, tokens, correct = pair_loss(train_model, batch, cfg.train.label_smoothing)
        # The mean over the whole batch's target tokens, so the step size does not depend on the batch size
        # or on how many processes share it (DDP averages the processes' gradients: hence * world.size).
        batch_tokens = sum(len(train_data.tgt[i]) + 1 for i in indices)
        return StepLoss(loss * world.size / batch_tokens, float(loss.detach()), nll, tokens, correct)

    task = TrainingTask(
        batches=lambda epoch: training_batches(sizes, cfg.train.batch_tokens, seeded_rng(cfg, epoch)),
        step=step,
        validate=lambda: validate(model, tokenizer, dev, cfg),
        default_metric="bleu",
        data={
            "train_pairs": len(train_data.src),
            "skipped_pairs": skipped,
            "dev_pairs": len(dev.src),
            "src_vocab": tokenizer.src_vocab_size,
            "tgt_vocab": tokenizer.tgt_vocab_size,
        },
    )
    return fit(cfg, output_dir, model, task, reporter or NullReporter(), resume, world)
