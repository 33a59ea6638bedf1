"""Training a recurrent language model by truncated backpropagation through time (TBPTT).

The training text becomes one token stream (each line followed by EOS), cut into `streams` equal rows
that are read side by side in chunks of `bptt_length` tokens. The hidden state is carried from one
chunk to the next, detached, so gradients reach back `bptt_length` tokens while the state sees the whole
stream. The weights with the lowest dev perplexity are kept.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from seqkit import modeldir
from seqkit.config import Config
from seqkit.data.corpus import chunk, chunk_starts, hold_out, read_text, stream_rows, token_stream
from seqkit.errors import ConfigError, DataError
from seqkit.models.lm import RNNLanguageModel, detach_state
from seqkit.runtime.distributed import World
from seqkit.scoring.likelihood import chunk_loss, score_text
from seqkit.training.log import EndRecord
from seqkit.training.loop import fit
from seqkit.training.run import built, run_training, text_tokenizer
from seqkit.training.task import DevScores, Reporter, StepLoss, TrainingTask


def train(
    cfg: Config,
    output_dir: Path,
    reporter: Reporter | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> EndRecord:
    """Train a language model on the `data.tgt_lang` side of `data.train` into `output_dir` (or continue
    its latest checkpoint, with `resume`; with `overwrite`, replace the trained run it holds)."""
    return run_training(_train, cfg, output_dir, reporter, resume, overwrite)


def _train(cfg: Config, output_dir: Path, world: World, reporter: Reporter, resume: bool) -> EndRecord:
    if cfg.train.bptt_length > cfg.train.batch_tokens and not resume:  # (a run of before: as it was)
        # a step reads batch_tokens // bptt_length streams, at least one: 100,000 tokens a step for 512
        raise ConfigError(
            f"train.bptt_length = {cfg.train.bptt_length:,} is more than train.batch_tokens = "
            f"{cfg.train.batch_tokens:,}: a step reads batch_tokens / bptt_length streams of bptt_length "
            "tokens; give a bptt_length of at most batch_tokens"
        )
    fixes: Counter = Counter()
    train_lines = read_text(cfg, "train", fixes)
    if cfg.data.dev:
        dev_lines = read_text(cfg, "dev")
    else:  # held out of data.train with the seed, as for a translation model
        chosen = set(hold_out(len(train_lines), cfg.data.dev_size, cfg.train.seed))
        dev_lines = [line for i, line in enumerate(train_lines) if i in chosen]
        train_lines = [line for i, line in enumerate(train_lines) if i not in chosen]
    if not train_lines:
        raise DataError(f"data.train = {cfg.data.train!r}: no non-empty line; give text to learn from")
    if not dev_lines and cfg.data.dev:
        raise DataError(f"data.dev = {cfg.data.dev!r}: no non-empty line; give text to validate on")
    if not dev_lines:
        raise DataError(
            f"data.train = {cfg.data.train!r}: {len(train_lines)} non-empty lines, too few to hold a dev set "
            "out of (at least 10); give more, or data.dev"
        )
    tokenizer = text_tokenizer(world, output_dir, resume, train_lines, cfg, "a language model")
    streams = max(1, cfg.train.batch_tokens // cfg.train.bptt_length)
    data = stream_rows(token_stream(tokenizer, train_lines), streams)
    if data.size(0) < world.size:
        raise DataError(
            f"{data.size(0)} streams cannot feed {world.size} processes; raise train.batch_tokens"
        )
    rows = data[world.rank :: world.size].to(world.device)  # this process's streams
    # built before the run writes its config: a model that cannot be (too large for memory) leaves no
    # directory behind, as the other model types'
    model = built(lambda: RNNLanguageModel.from_config(cfg.model, tokenizer), world.device).to(world.device)
    if world.is_main:
        modeldir.start(output_dir, cfg, tokenizer, resume)
        vocab_sizes = (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)
        modeldir.write_vocab_counts(output_dir, None, data.flatten().numpy(), vocab_sizes)
        if not cfg.data.dev:
            modeldir.write_held_out(output_dir, [], dev_lines)
    train_model = world.wrap(model)  # distributed: forward through DDP, which averages the gradients
    state = None

    def step(start: int) -> StepLoss:
        nonlocal state
        if start == 0:
            state = None  # each epoch reads the streams afresh
        inputs, targets = chunk(rows, start, cfg.train.bptt_length)
        loss, nll, correct, state = chunk_loss(train_model, inputs, targets, state, cfg.train.label_smoothing)
        state = detach_state(state)
        all_tokens = targets.size(1) * data.size(0)  # of every process (DDP averages: hence * world.size)
        return StepLoss(loss * world.size / all_tokens, float(loss.detach()), nll, targets.numel(), correct)

    def validate() -> DevScores:
        scores = score_text(model, tokenizer, dev_lines, cfg.train.bptt_length)
        return DevScores({"loss": scores["nll_per_token"], "ppl": scores["ppl"], "bpc": scores["bpc"]})

    # the training text as the checkpoint read it (its token streams): a file changed under its name was
    # otherwise taken up without a word, the epoch going on at the checkpoint's position in other text
    # (hashed in place: tobytes() copied a large corpus's streams once more)
    corpus = hashlib.blake2b(np.ascontiguousarray(data.numpy()).data, digest_size=16).hexdigest()

    def load_state(saved: dict) -> None:
        """The hidden state saved with the checkpoint, on this process's device; restarted (None) where it
        was not kept (a distributed run) or is not of this process's streams (a one-process run resumed
        under torchrun, whose processes each hold a share of them)."""
        nonlocal state
        if world.is_main and saved.get("corpus", corpus) != corpus:  # (an earlier version's has none)
            reporter.warning(
                "the training text is not the checkpoint's (data.train's file or the tokens per step changed "
                "since the run started): the epoch goes on at the checkpoint's position in other text; start "
                "a new run for a new corpus"
            )
        hidden = saved.get("hidden")
        tensors = hidden if isinstance(hidden, tuple | list) else (hidden,)
        if hidden is None or any(t.size(1) != rows.size(0) for t in tensors):  # (layers, streams, hidden)
            state = None
            return
        moved = tuple(t.to(world.device) for t in tensors)
        state = moved if isinstance(hidden, tuple | list) else moved[0]

    task = TrainingTask(
        batches=lambda epoch: chunk_starts(data, cfg.train.bptt_length),
        step=step,
        validate=validate,
        data={
            "train_lines": len(train_lines),
            "train_tokens": data.numel(),
            "streams": data.size(0),
            "dev_lines": len(dev_lines),
            "vocab": tokenizer.tgt_vocab_size,
            "control_lines": fixes["controls"],  # the tokenizer drops their control characters
            "break_lines": fixes["breaks"],  # a JSON field's line breaks, read as spaces
        },
        # the hidden state carried into the next chunk (a distributed run restarts it on resume: each
        # process holds only its own streams' state)
        state_dict=lambda: {"hidden": state if world.size == 1 else None, "corpus": corpus},
        load_state_dict=load_state,
    )
    return fit(cfg, output_dir, model, task, reporter, resume, world)
