"""Training an encoder-decoder on a parallel corpus: data preparation, the update step, validation.

Validation scores dev perplexity (teacher forcing) and greedy BLEU / chrF; the weights with the best dev
BLEU are kept. The loop itself is `loop.fit`.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import torch

from seqkit import modeldir, outputs
from seqkit.config import Config
from seqkit.data.arrays import TokenArrays, id_counts
from seqkit.data.batches import make_batch, training_batches
from seqkit.data.corpus import ParallelIds, PreparedPairs, prepare_pairs
from seqkit.data.tokenizer import Tokenizer, build_tokenizer, load_tokenizer
from seqkit.decoding import shortlist
from seqkit.decoding.search import decode_corpus
from seqkit.decoding.torch_steps import Seq2SeqSteps, evaluating
from seqkit.errors import ConfigError, DataError
from seqkit.models.seq2seq import Seq2Seq
from seqkit.models.softmax import exclude_unseen
from seqkit.runtime.distributed import World
from seqkit.scoring.likelihood import corpus_nll, pair_loss, perplexity
from seqkit.scoring.metrics import corpus_score
from seqkit.training.log import EndRecord
from seqkit.training.loop import fit
from seqkit.training.run import (
    built,
    receive_tokenizer,
    run_training,
    seeded_rng,
    send_tokenizer,
    telling_the_others,
)
from seqkit.training.task import DevScores, Reporter, StepLoss, TrainingTask


@torch.no_grad()
def validate(model, tokenizer: Tokenizer, dev: ParallelIds, cfg: Config) -> DevScores:
    """Dev perplexity (teacher forcing) and greedy BLEU / chrF on detokenized output."""
    total_nll, total_tokens = corpus_nll(model, dev, cfg.decode.batch_size)
    limit = min(cfg.train.valid_max_sentences or len(dev.src), len(dev.src))
    # greedy: validation stays fast; and a search, whatever sampling temperature translate is given
    greedy = dataclasses.replace(cfg.decode, beam_size=1, temperature=0.0)
    with evaluating(model):
        best = [h[0].tokens for h in decode_corpus(Seq2SeqSteps(model), dev.src[:limit], greedy)]
    hypotheses = tokenizer.decode_tgt(best)
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


def train(
    cfg: Config,
    output_dir: Path,
    reporter: Reporter | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> EndRecord:
    """Train a translation model into `output_dir` (or continue its latest checkpoint, with `resume`; with
    `overwrite`, replace the trained run it holds); returns the closing record."""
    return run_training(_train, cfg, output_dir, reporter, resume, overwrite)


def shortlist_of(
    src: TokenArrays, tgt: TokenArrays, vocab_sizes: tuple[int, int], cfg: Config
) -> shortlist.Shortlist:
    """The vocabulary shortlist of the training pairs (decoding/shortlist.py)."""
    return shortlist.build(src.ids, src.offsets, tgt.ids, tgt.offsets, *vocab_sizes, seed=cfg.train.seed)


# what a model may have that the one it starts from lacks: the parts copy and coverage add
NEW_PARTS = ("decoder.copy_gate.", "decoder.attention.coverage_weight")


# the settings that shape the weights, and the kind of tokenizer a model started from keeps: each must be
# as the model started from has it (copy, coverage, dropout and the rest may differ; the tokenizer's sizes
# are the model's whatever the config says, as it is that model's tokenizer that is used)
SHAPING = ("cell", "embedding_size", "encoder_hidden_size", "encoder_layers", "bidirectional",
           "decoder_hidden_size", "decoder_layers", "attention", "tie_embeddings")  # fmt: skip
KEPT_TOKENIZER = ("type", "joint")


def _init_tokenizer(cfg: Config, model_dir: Path | None) -> Tokenizer | None:
    """The tokenizer of the model `cfg` starts from; a ConfigError naming the first setting of `cfg` that
    is not as that model has it (a weight would not fit, or the stored config would not say which
    tokenizer the run used)."""
    if model_dir is None:
        return None
    if not (model_dir / modeldir.WEIGHTS).is_file():
        raise ConfigError(
            f"train.init_from = {str(model_dir)!r}: no trained model there ({modeldir.WEIGHTS} missing); give a "
            "model directory that seqkit train wrote"
        )
    theirs = modeldir.load_config(model_dir)
    if theirs.model.type != "seq2seq":
        raise ConfigError(
            f"train.init_from = {str(model_dir)!r}: a model of model.type = {theirs.model.type}; start from an "
            "encoder-decoder (model.type = seq2seq)"
        )
    for section, keys in (("model", SHAPING), ("tokenizer", KEPT_TOKENIZER)):
        for key in keys:
            if (section, key) == ("tokenizer", "joint") and cfg.tokenizer.type == "char":
                continue  # characters are one vocabulary whatever tokenizer.joint says
            there, here = getattr(getattr(theirs, section), key), getattr(getattr(cfg, section), key)
            if there != here:
                raise ConfigError(
                    f"train.init_from = {str(model_dir)!r}: {section}.{key} is {there!r} there and {here!r} "
                    f"here; set {section}.{key} = {there!r}, as the model you start from has it"
                )
    return load_tokenizer(model_dir)


def init_weights(model: Seq2Seq, model_dir: Path) -> None:
    """`model` starts from the weights of the model in `model_dir`: every weight they share, shape for
    shape; what only `model` has (NEW_PARTS: a copy gate, a coverage weight) keeps its new value, which
    for the coverage weight is zero, so the model starts out computing what the old one did."""
    from safetensors.torch import load_file

    given = load_file(model_dir / modeldir.WEIGHTS)
    own = model.state_dict()
    for name, tensor in given.items():
        if name not in own:
            raise ConfigError(
                f"train.init_from = {str(model_dir)!r}: its weight {name} has no place in this model; start "
                "from a model of the same type and sizes (only model.copy and model.coverage may be added)"
            )
        if own[name].shape != tensor.shape:
            raise ConfigError(
                f"train.init_from = {str(model_dir)!r}: {name} is {tuple(tensor.shape)} there and "
                f"{tuple(own[name].shape)} here; give the same model sizes as the model you start from"
            )
    missing = [name for name in own if name not in given and not name.startswith(NEW_PARTS)]
    if missing:
        raise ConfigError(
            f"train.init_from = {str(model_dir)!r}: it lacks {missing[0]}; start from a model of the same "
            "type and sizes"
        )
    model.load_state_dict(given, strict=False)


def _train(cfg: Config, output_dir: Path, world: World, reporter: Reporter, resume: bool) -> EndRecord:
    starting_from = Path(cfg.train.init_from) if cfg.train.init_from and not resume else None

    def prepare(given: Tokenizer | None) -> tuple[Tokenizer, PreparedPairs]:
        """The tokenizer (`given`, or trained) and the corpus tokenized with it into the run's arrays."""
        return prepare_pairs(
            cfg,
            output_dir,
            given,
            lambda src, tgt: build_tokenizer(src, tgt, cfg.tokenizer, cfg.train.seed),
            threads=torch.get_num_threads(),
            on_progress=reporter.tokenizing if world.is_main else None,
        )

    if world.is_main:
        with telling_the_others(world):
            given = load_tokenizer(output_dir) if resume else _init_tokenizer(cfg, starting_from)
            tokenizer, prepared = prepare(given)
        send_tokenizer(world, tokenizer)
    else:
        # once the first process has trained the tokenizer and tokenized the corpus: its tokenizer, and its
        # arrays where the run's directory is on a shared disk (on another machine, the first of that
        # machine's processes to take the cache's lock makes them, and the others open them)
        tokenizer, prepared = prepare(receive_tokenizer(world, output_dir))
    train_data, dev = prepared.train, prepared.dev
    if not len(train_data.src) or not dev.src:
        raise DataError(
            f"no usable sentence pairs in data.train or data.dev ({prepared.cleaning.skipped:,} skipped as "
            f"empty, longer than data.max_length = {cfg.data.max_length} or otherwise cleaned); check the files"
        )
    assert isinstance(train_data.src, TokenArrays) and isinstance(train_data.tgt, TokenArrays)
    model = built(lambda: Seq2Seq.from_config(cfg.model, tokenizer), world.device)
    if starting_from is not None:  # before the run writes its files: a model that does not fit leaves none
        init_weights(model, starting_from)
    if world.is_main:
        modeldir.start(output_dir, cfg, tokenizer, resume)
        vocab_sizes = (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)
        modeldir.write_vocab_counts(output_dir, train_data.src.ids, train_data.tgt.ids, vocab_sizes)
        if prepared.held_out:  # the split, to reproduce it and to score the model on it later
            modeldir.write_held_out(output_dir, prepared.dev_src_text, dev.tgt_text)
        if not (resume and (output_dir / shortlist.FILE).is_file()):
            # from the data alone, so written before training: a stopped run has it too
            shortlist.write(output_dir, shortlist_of(train_data.src, train_data.tgt, vocab_sizes, cfg))
    # the output layer gives only the pieces that are targets somewhere in the training data (softmax.py)
    seen = id_counts(train_data.tgt.ids, tokenizer.tgt_vocab_size) > 0
    exclude_unseen(
        model.decoder.output,
        torch.from_numpy(seen),
        keep_given=starting_from is not None,
        zero_rows=not cfg.model.tie_embeddings,
    )
    model = model.to(world.device)
    train_model = world.wrap(model)  # distributed: forward through DDP, which averages the gradients
    tgt_lengths = train_data.tgt.lengths
    sizes = (np.maximum(train_data.src.lengths, tgt_lengths) + 1).tolist()

    def step(indices: list[int]) -> StepLoss:
        share, weight = world.shard(indices)
        batch = make_batch(train_data.src, train_data.tgt, share).to(world.device)
        loss, nll, tokens, correct = pair_loss(
            train_model, batch, cfg.train.label_smoothing, cfg.train.coverage_loss
        )
        # The mean over the whole batch's target tokens, so the step size does not depend on the batch size
        # or on how many processes share it (DDP averages the processes' gradients: hence * world.size).
        batch_tokens = int(tgt_lengths[indices].sum()) + len(indices)
        share_loss = StepLoss(loss * world.size / batch_tokens, float(loss.detach()), nll, tokens, correct)
        return share_loss.weighted(weight)

    def check_corpus(saved: dict) -> None:
        # the checkpoint's pairs (its key; a checkpoint of an earlier version has none): a corpus whose files
        # changed under their names, or a cache the user deleted, was otherwise taken up without a word
        if world.is_main and saved.get("corpus", prepared.key) != prepared.key:
            reporter.warning(
                "the training pairs are not the checkpoint's (data.train's files, the data.* keys that choose "
                "pairs, or seqkit's cache format changed since the run started): the epoch goes on in the "
                "checkpoint's order over other pairs; start a new run for a new corpus"
            )

    task = TrainingTask(
        batches=lambda epoch: training_batches(sizes, cfg.train.batch_tokens, seeded_rng(cfg, epoch)),
        step=step,
        validate=lambda: validate(model, tokenizer, dev, cfg),
        state_dict=lambda: {"corpus": prepared.key},
        load_state_dict=check_corpus,
        data={
            "train_pairs": len(train_data.src),
            **prepared.cleaning.counts(),
            "dev_pairs": len(dev.src),
            "dev_held_out": int(prepared.held_out),
            "cached": int(prepared.from_cache),
            "src_vocab": tokenizer.src_vocab_size,
            "tgt_vocab": tokenizer.tgt_vocab_size,
        },
    )
    return fit(cfg, output_dir, model, task, reporter, resume, world)


def build_shortlist(
    model_dir: Path,
    train: str | None = None,
    translations: int = shortlist.TRANSLATIONS,
    frequent: int = shortlist.FREQUENT,
) -> shortlist.Shortlist:
    """Build the vocabulary shortlist of a trained translation model from its training data (its
    data.train, or `train`, a path prefix as data.train takes) and write it into the directory."""
    from seqkit import config as config_lib

    modeldir.require_directory(model_dir)
    cfg = modeldir.load_config(model_dir)
    if cfg.model.type != "seq2seq":
        raise ConfigError(
            f"{model_dir} holds a model of type {cfg.model.type}, not a translation model (seq2seq): "
            "only translation models have a shortlist"
        )
    if translations < 1 or frequent < 0:
        raise ConfigError(
            f"--translations {translations} / --frequent {frequent}: need at least 1 translation per "
            "source piece and 0 or more frequent pieces"
        )
    if train is not None:
        cfg = config_lib.with_overrides(cfg, {"data": {"train": train}}, "--train")
    tokenizer = load_tokenizer(model_dir)

    def never(_src, _tgt) -> Tokenizer:  # the model's tokenizer is given
        raise AssertionError("the model's tokenizer is loaded")

    # under the run's lock: a training of the directory (which reads and rebuilds the same cache) is not
    # raced; the arrays of other data than the run's go to a scratch folder, not the run's cache, whose
    # arrays a resume would otherwise have to tokenize again
    with outputs.locked(model_dir, "trained", "build the shortlist of a copy of it"), outputs.terminable():
        # (terminable: SIGTERM unwinds, and the scratch folder goes; its default action left it there)
        with tempfile.TemporaryDirectory(prefix=".shortlist-", dir=model_dir) as scratch:
            arrays_dir = model_dir if train is None else Path(scratch)
            _, prepared = prepare_pairs(cfg, arrays_dir, tokenizer, never, threads=torch.get_num_threads())
            src, tgt = prepared.train.src, prepared.train.tgt
            assert isinstance(src, TokenArrays) and isinstance(tgt, TokenArrays)
            sizes = (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)
            built = shortlist.build(
                src.ids, src.offsets, tgt.ids, tgt.offsets, *sizes, translations, frequent, cfg.train.seed
            )
        shortlist.write(model_dir, built)
    return built
