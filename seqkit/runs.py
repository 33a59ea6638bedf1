"""A training run started, continued or started again: what `seqkit train` and `seqkit.train` call.

The directory decides. One that holds a run with a checkpoint is continued (its stored config, then the
changes given); anything else starts a run; `overwrite` starts again over an earlier run, deleting only
the files seqkit wrote. A directory of somebody else's files is refused before anything is read."""

from __future__ import annotations

import contextlib
import numbers
import os
import signal
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqkit import configfile, errors, outputs
from seqkit.config import Config
from seqkit.config import resume as config_resume
from seqkit.errors import ConfigError, ModelDirError, TrainingInterrupted

if TYPE_CHECKING:
    from seqkit.api import Model
    from seqkit.training.task import Reporter


@dataclass(frozen=True)
class Plan:
    """What a training will do, decided before anything is written."""

    run_dir: Path
    config: Config
    resuming: bool  # a run with a checkpoint is continued
    overwrite: bool
    changes: list[str]  # `section.key: old -> new` of a resumed run's stored config


def plan(
    run_dir: Path,
    config_path: Path | None,
    overrides: Iterable[str] = (),
    *,
    resume: bool = False,
    overwrite: bool = False,
    option: str = "--output",
) -> Plan:
    """The run in `run_dir`: its config (the file at `config_path`, then `overrides`, each
    `section.key=value`, over a resumed run's stored config) and whether it continues. `resume`: the
    directory must hold a checkpoint; `option` names the directory in errors."""
    from seqkit import modeldir
    from seqkit.training import checkpoint

    if overwrite and resume:
        new, old = (
            ("--overwrite", "--resume") if option.startswith("--") else ("overwrite=True", "resume=True")
        )
        raise ConfigError(f"{new} starts a new run and {old} continues one; give one of them")
    # before anything is read or written: never a directory of somebody else's (a 0.1 run: --resume)
    outputs.check_claimable(run_dir, option, adopt=resume)
    resuming = not overwrite and checkpoint.latest(run_dir) is not None
    if resume and not resuming:
        if run_dir.is_dir() and outputs.owns(run_dir):
            # a run still in its first steps has no checkpoint yet: that it is training is what to say
            with outputs.locked(run_dir):
                pass
        raise ModelDirError(
            f"{run_dir}: no checkpoint to resume; {checkpoint.without_checkpoint(run_dir, 'resume')}"
        )
    stored = modeldir.load_config(run_dir) if resuming else None
    config = configfile.load(config_path, overrides, base=stored)
    changes = config_resume.changes(stored, config, run_dir) if stored is not None else []
    return Plan(run_dir, config, resuming, overwrite, changes)


def run(plan: Plan, reporter: Reporter) -> None:
    """Train as `plan` says, reporting to `reporter`. Ctrl-C, SIGTERM or SIGHUP (in the main thread)
    finishes the current step and saves a checkpoint, then raises errors.TrainingInterrupted."""
    from seqkit import model_types

    model_types.of(plan.config).train(plan.config, plan.run_dir, reporter, plan.resuming, plan.overwrite)


def train(
    model_dir: str | os.PathLike,
    config: str | os.PathLike | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
) -> Model:
    """Train a model into `model_dir`, as `seqkit train --output model_dir -c config --set key=value ...`
    does, and return it loaded (`seqkit.load(model_dir)`).

    settings: `{"section.key": value}` over the config file (the defaults where none is given), as
    `--set` gives them. A directory holding a run with a checkpoint is continued (`resume=True`: it must
    be); `overwrite=True` starts again. Progress and validation lines go to stderr as the command prints
    them (`quiet`: errors and the closing line only). torch's thread count and the random states of
    torch and `random` are as they were once it returns. Ctrl-C, SIGTERM or SIGHUP finishes the current
    step and saves a checkpoint, then the signal is raised again: a KeyboardInterrupt, or the signal's
    own action (the process ends), unless your program handles it."""
    import random

    caller_random = random.getstate()  # first: a first import of rich draws from it
    from seqkit import console
    from seqkit.loading import load
    from seqkit.runtime import distributed

    if not isinstance(model_dir, str | os.PathLike):
        raise ConfigError(f"model_dir = {model_dir!r:.40}: give the run's directory (a str or a Path)")
    if config is not None and not isinstance(config, str | os.PathLike):
        raise ConfigError(f"config = {config!r:.40}: give a config file's path (a str or a Path), or None")
    for name, flag in (("resume", resume), ("overwrite", overwrite), ("quiet", quiet)):
        if not isinstance(flag, bool):  # ("no" is true)
            raise ConfigError(f"{name} = {flag!r:.40}: give True or False")
    chosen = plan(
        Path(model_dir),
        None if config is None else Path(config),
        _overrides(settings),
        resume=resume,
        overwrite=overwrite,
        option="model_dir",
    )
    if chosen.resuming and not quiet:
        console.stderr.print(resuming_line(chosen), highlight=False)
    together = False  # whether every process ends the same way (see distributed.leave)
    try:
        with _process_state_kept(caller_random):
            run(chosen, console.TrainingProgress(quiet))
        together = True
    except (MemoryError, RuntimeError) as e:  # (the command's one line, as every other error of ours)
        if not errors.out_of_memory(e):
            raise
        raise ConfigError(errors.memory_message(e, errors.TRAINING_MEMORY_FIX)) from None
    except TrainingInterrupted as stopped:
        together = True
        console.stderr.print(interrupted_line(chosen.run_dir, stopped.step), highlight=False)
        # the checkpoint is saved: the signal is now the caller's, as if seqkit had never caught it
        signal.raise_signal(stopped.signal_number)
        raise  # (a handler of the caller's that returned)
    finally:
        distributed.leave(together)
    return load(Path(model_dir), device=chosen.config.train.device)


def interrupted_line(run_dir: Path, step: int) -> str:
    # (the line before it, the reporter's, says what stopped the run when)
    return f"checkpoint saved at step {step:,}; continue with: seqkit train --resume {run_dir}"


def resuming_line(plan: Plan) -> str:
    return f"resuming {plan.run_dir}; config changes: {'; '.join(plan.changes) if plan.changes else 'none'}"


def _overrides(settings: Mapping[str, Any] | None) -> list[str]:
    """`{"train.max_steps": 100}` as the `--set` texts the config file's loader reads (a value as TOML
    writes it: a string quoted, so that "2020" stays text)."""
    import tomli_w

    if settings is None:
        return []
    if not isinstance(settings, Mapping):
        raise ConfigError(f"settings = {settings!r:.40}: give a dict of 'section.key': value")
    texts = []
    for key, value in settings.items():
        if not isinstance(key, str) or "." not in key or "=" in key:
            raise ConfigError(f"settings: {key!r:.40} is no 'section.key' (e.g. 'train.max_steps')")
        if isinstance(value, os.PathLike):  # (data.train = Path("corpus/train"))
            value = os.fspath(value)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool | int | float):  # numpy's
            value = int(value) if isinstance(value, numbers.Integral) else float(value)
        try:
            if isinstance(value, Mapping):  # (no key holds a table)
                raise TypeError
            written = tomli_w.dumps({"v": value}).strip()[len("v = ") :]
        except TypeError:  # (a value TOML has no type for: None, an object)
            raise ConfigError(
                f"settings[{key!r}] = {value!r:.40}: give a number, a string, a boolean or a list"
            ) from None
        texts.append(f"{key}={written}")
    return texts


@contextlib.contextmanager
def _process_state_kept(state: Any) -> Iterator[None]:
    """A training from Python sets torch's thread count and seeds torch and `random` (as the command
    does); the caller's are back afterwards (`state`: `random`'s, as the caller left it)."""
    import random

    import torch

    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng():
            yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(state)
