"""Before and around a training run: the checks, seeds, threads and process group that come before
anything is written (`start_run`), and the run directory, made seqkit's and locked for as long as the run
trains (`run_directory`); `run_training` is both around a trainer's body. Under torchrun, the first
process makes the tokenizer and sends it, or its error, to the others (`telling_the_others`,
`send_tokenizer`, `receive_tokenizer`)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch

from seqkit import errors, modeldir, outputs
from seqkit.config import Config, checks
from seqkit.data.tokenizer import Tokenizer, build_text_tokenizer, load_tokenizer, tokenizer_from_files
from seqkit.errors import ConfigError, DataError, ModelDirError, SeqkitError, TrainingError
from seqkit.runtime import devices, distributed, threads
from seqkit.runtime.distributed import World
from seqkit.training import checkpoint
from seqkit.training.log import EndRecord
from seqkit.training.task import NullReporter, Reporter

# Under torchrun the first process checks the run directory (`run_directory`) and makes the run's tokenizer
# (trains it, or reads it) inside `telling_the_others`: an error there reaches the other processes, which
# wait for the go-ahead and the tokenizer, and raise it too. It then sends the tokenizer's files
# (`send_tokenizer`) to the others' `receive_tokenizer` (both in `tokenizer_of_the_first_process`, but for
# seq2seq's, made with the corpus's arrays). Trained once and sent: each process trained its
# own before (SentencePiece gives the same model each time, in the time of one more training), and the
# others' run directory may be on another machine's disk.


# the kinds of error the first process sends by name and message (an error class with arguments of its
# own, such as decoding's TooManyPieces, does not unpickle), nearest first
_SENT_ERRORS = {kind.__name__: kind for kind in (ConfigError, DataError, ModelDirError, TrainingError)}


@contextlib.contextmanager
def telling_the_others(world: World) -> Iterator[None]:
    """(The first process.) An error in the block, sent to the others before it is raised here: they
    raise it too, where they waited for what never came."""
    try:
        yield
    except BaseException as error:
        if isinstance(error, SeqkitError):
            kind = next(
                (k.__name__ for k in type(error).__mro__ if k.__name__ in _SENT_ERRORS), "TrainingError"
            )
            sent = (kind, str(error))
        else:  # a bug, or an interrupt
            sent = (
                "TrainingError",
                f"the first process stopped ({type(error).__name__}); its error is on its stderr",
            )
        with contextlib.suppress(Exception):  # (the others gone too: this process's error is the one to see)
            world.from_main(sent)
        raise


def tokenizer_of_the_first_process(
    world: World, output_dir: Path, make: Callable[[], Tokenizer]
) -> Tokenizer:
    """The run's tokenizer on every process: `make` on the first (an error reaches the others), its
    files sent to the others."""
    if not world.is_main:
        return receive_tokenizer(world, output_dir)
    with telling_the_others(world):
        tokenizer = make()
    send_tokenizer(world, tokenizer)
    return tokenizer


def text_tokenizer(
    world: World, output_dir: Path, resume: bool, lines: list[str], cfg: Config, what: str
) -> Tokenizer:
    """The tokenizer of a language model or a classifier (`what`) on every process: the run's own when it
    resumes, else trained on `lines`, by the first process."""
    return tokenizer_of_the_first_process(
        world,
        output_dir,
        lambda: (
            load_tokenizer(output_dir)
            if resume
            else build_text_tokenizer(lines, cfg.tokenizer, cfg.train.seed, what)
        ),
    )


def send_tokenizer(world: World, tokenizer: Tokenizer) -> None:
    """(The first process.) The run's tokenizer, to the others' `receive_tokenizer`."""
    world.from_main(tokenizer.files())


def receive_tokenizer(world: World, output_dir: Path) -> Tokenizer:
    """(The other processes.) The first process's tokenizer once it has sent it, or its error raised."""
    return tokenizer_from_files(_from_the_first_process(world), output_dir)


def _from_the_first_process(world: World) -> Any:
    """(The other processes.) What the first process sends next, or the error it sent
    (`telling_the_others`) raised here too."""
    received = world.from_main(None)
    if isinstance(received, tuple):
        kind, message = received
        raise _SENT_ERRORS[kind](message)
    return received


Built = TypeVar("Built", bound=torch.nn.Module)


def built(build: Callable[[], Built], device: torch.device) -> Built:
    """`build()`, once its size is known to fit: on the CPU, a model whose float32 weights, gradients and
    Adam's two moments (16 bytes a parameter) exceed the machine's memory is refused at once, counted on
    torch's meta device (no memory). A mistyped size (100,000,000 for 100) took tens of seconds and 13
    GB before the allocator gave up, and on a smaller machine the kernel's out-of-memory killer ended
    the process without a word."""
    if device.type == "cpu":
        try:
            with torch.device("meta"):
                parameters = sum(p.numel() for p in build().parameters())
        except Exception:  # (a part that cannot be built on meta: built for real, as before)
            parameters = 0
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if 16 * parameters > total:
            raise ConfigError(
                f"out of memory: {parameters:,} parameters take {16 * parameters / 2**30:,.0f} GiB to train "
                f"(weights, gradients and Adam's moments), more than this machine's {total / 2**30:,.0f} GiB; "
                f"this machine needs {errors.TRAINING_MEMORY_FIX}"
            )
    return build()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def start_run(cfg: Config) -> World:
    """Checks, seeds, threads, the device and the process group: before anything is written or anything
    random happens."""
    if not (cfg.train.max_steps or cfg.train.max_epochs or cfg.train.max_minutes):
        raise ConfigError("no stopping limit: set train.max_steps, train.max_epochs or train.max_minutes")
    device = devices.resolve(cfg.train.device, option="train.device =")
    # an unsupported precision fails here, not after set-up
    devices.Precision(cfg.train.precision, device, "train.precision =")
    seed_everything(cfg.train.seed)
    count, _ = threads.training_threads(cfg.train.threads, torch.get_num_threads())
    if count:
        torch.set_num_threads(count)
    return distributed.join(device)


def run_training(
    body: Callable[[Config, Path, World, Reporter, bool], EndRecord],
    cfg: Config,
    output_dir: Path | str,
    reporter: Reporter | None,
    resume: bool,
    overwrite: bool,
) -> EndRecord:
    """What every trainer's `train` does around its own `body`: the checks, seeds and process group of
    `start_run`, then the run's directory (`run_directory`) for as long as the body trains."""
    if cfg.train.init_from and cfg.model.type != "seq2seq" and not resume:
        # (a new run's check, not the config's: runs of the other types stored it while it was ignored)
        raise ConfigError(
            f"train.init_from starts an encoder-decoder (model.type = seq2seq) from a trained one; a model of "
            f"model.type = {cfg.model.type} trains from scratch: drop train.init_from"
        )
    world = start_run(cfg)
    reporter = reporter or NullReporter()
    with run_directory(Path(output_dir), world, resume, overwrite):
        if world.is_main and not resume:  # (a resume was told at its start)
            for warning in unread_warnings(cfg):
                reporter.warning(warning)
        return body(cfg, Path(output_dir), world, reporter, resume)


def unread_warnings(cfg: Config) -> list[str]:
    """A line for each key given a value that this run does not read (checks.unread_keys): said, not
    refused, since a config file made for another model (`-c demo.toml --set model.type=lm`) has them and
    --set cannot remove a key; the stored config.toml keeps them as given."""
    lines = []
    for key in checks.unread_keys(cfg):
        if key.startswith("model."):
            why = f"a model of model.type = {cfg.model.type} has no part it sets"
        elif key.removeprefix("data.") in checks.PAIR_FILTER_KEYS:
            why = f"it chooses a translation model's training pairs, and model.type = {cfg.model.type} reads none"
        elif key.startswith("data."):
            why = "it sets how a series is cut into windows, and data.series names none"
        elif cfg.tokenizer.type == "char":
            why = "it sets the SentencePiece model seqkit trains, and tokenizer.type = char trains none"
        else:
            why = "it sets the SentencePiece model seqkit trains, and the config names your own"
        lines.append(f"{key}: {why}; it is not read (drop it from the config)")
    return lines


@contextlib.contextmanager
def run_directory(output_dir: Path, world: World, resume: bool, overwrite: bool) -> Iterator[None]:
    """The run's directory for the block. On the first process (the one that writes the run): made seqkit's
    and locked against a second training (outputs.py), checked by `modeldir.open_run` under the lock.
    SIGTERM and SIGHUP end the block as an exception (the training loop's own handler takes over while
    it runs): a new run stopped while it prepares its data (minutes for a large corpus) is removed, as
    one stopped by Ctrl-C or by an error, where the default action left it behind."""
    with outputs.terminable():
        yield from _run_directory(output_dir, world, resume, overwrite)


def _run_directory(output_dir: Path, world: World, resume: bool, overwrite: bool) -> Iterator[None]:
    if not world.is_main:
        _from_the_first_process(world)  # its checks passed, or their error is raised here too
        yield
        return
    held = contextlib.ExitStack()  # the lock, from the end of the checks to the end of the run
    with telling_the_others(world):
        if resume and not outputs.owns(output_dir) and checkpoint.latest(output_dir) is None:
            # adopting a directory without the marker (a 0.1 run) needs a checkpoint to continue: a failed
            # resume must not leave a marker in somebody else's directory
            raise ModelDirError(
                f"{output_dir}: no checkpoint to resume; start a run with --output {output_dir}"
            )
        # the folders above it that this run creates too (-o new/a/run): removed with it when it fails
        made_parents = [parent for parent in output_dir.absolute().parents if not parent.exists()]
        try:
            output_dir.mkdir(parents=True)  # atomically: of two processes, only one creates the directory
            created = True
        except FileExistsError:
            created = False
        # an empty directory of the user's is adopted: whatever is in it afterwards, the run wrote
        adopted_empty = not created and output_dir.is_dir() and not any(output_dir.iterdir())
        if outputs.owns(output_dir) and outputs.marker_kind(output_dir) == "pictures":  # (inspect's -o)
            outputs.check_kind(output_dir, "run", "--output", "a training run")
        outputs.claim_directory(output_dir, "run", "--output", adopt=resume)
        held.enter_context(outputs.locked(output_dir))  # (the last check: an error leaves it unheld)
    with held:
        try:
            with telling_the_others(world):
                modeldir.open_run(output_dir, resume, overwrite)
            world.from_main(None)  # the others go ahead
            yield
        except BaseException:
            if (created or adopted_empty) and not (output_dir / modeldir.CONFIG).exists():
                # refused before the run wrote a file of its own (a bad corpus, say): no directory left
                # behind (only the process that created it, holding its lock, removes it), and an empty
                # directory given is left empty
                for entry in list(output_dir.iterdir()) if adopted_empty else [output_dir]:
                    with contextlib.suppress(OSError):  # the run's own error is the one to report
                        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
                for parent in made_parents if created else []:  # deepest first; rmdir: only if empty
                    with contextlib.suppress(OSError):
                        parent.rmdir()
            raise


def seeded_rng(cfg: Config, epoch: int) -> random.Random:
    """The data-order generator of one epoch: a function of the seed and the epoch only."""
    return random.Random(f"{cfg.train.seed}-{epoch}")
