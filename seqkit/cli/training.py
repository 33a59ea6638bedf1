"""`seqkit train` and `seqkit config`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from seqkit import configfile
from seqkit.cli import (
    ConfigOption,
    OverridesOption,
    _Command,
    app,
    config_default,
    user_errors,
)
from seqkit.errors import ConfigError


@app.command(cls=_Command)
@user_errors
def train(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="DIR", help="Model directory; an existing run in it is continued."
        ),
    ] = None,
    config: ConfigOption = None,
    overrides: OverridesOption = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR", help="Continue this run's latest checkpoint (its config, then any changes)."
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Start a new run in a directory that holds an earlier seqkit run, replacing that run's "
            "files (seqkit deletes only files it wrote).",
        ),
    ] = False,
    max_steps: Annotated[
        int | None,
        typer.Option(
            metavar="N", help=f"Shorthand for --set train.max_steps=N. {config_default('train', 'max_steps')}"
        ),
    ] = None,
    max_epochs: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help=f"Shorthand for --set train.max_epochs=N. {config_default('train', 'max_epochs')}",
        ),
    ] = None,
    max_minutes: Annotated[
        float | None,
        typer.Option(
            metavar="M",
            help=f"Shorthand for --set train.max_minutes=M. {config_default('train', 'max_minutes')}",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            metavar="N", help=f"Shorthand for --set train.seed=N. {config_default('train', 'seed')}"
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            metavar="DEVICE",
            help="auto, cpu or cuda: --set train.device=D. " + config_default("train", "device"),
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only errors and the closing line.")
    ] = False,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            metavar="PRECISION",
            help="fp32, bf16 or fp16 autocast: --set train.precision=P. "
            + config_default("train", "precision"),
        ),
    ] = None,
) -> None:
    """Train a translator, language model, classifier or forecaster: an encoder-decoder with attention on a
    parallel corpus, a language model (model.type = "lm"), or a classifier or forecaster (model.type =
    "classifier").

    Ctrl-C, SIGTERM or SIGHUP finishes the current step, saves a checkpoint and exits (130 / 143 / 129); running the
    same command again, or `--resume DIR`, continues exactly where it stopped."""
    from seqkit import console, runs
    from seqkit.errors import TrainingInterrupted
    from seqkit.runtime import distributed

    console.outlive_stderr()  # from its first line: a reader gone before it must not stop the run either
    if output is not None and resume is not None and output != resume:
        raise ConfigError(f"--output {output} and --resume {resume} differ; give one directory")
    run_dir = resume or output
    if run_dir is None:
        raise ConfigError(
            "--output is required: the model directory to create (or --resume DIR to continue one)"
        )
    shorthands = {
        "max_steps": max_steps,
        "max_epochs": max_epochs,
        "max_minutes": max_minutes,
        "seed": seed,
        "device": device,
        "precision": precision,
    }
    extra = [f"train.{key}={value}" for key, value in shorthands.items() if value is not None]
    plan = runs.plan(
        run_dir,
        config,
        [*(overrides or []), *extra],
        resume=resume is not None,
        overwrite=overwrite,
        option="--resume" if resume is not None else "--output",
    )
    speaks = os.environ.get("RANK", "0") == "0"  # under torchrun, the first process reports for all
    if plan.resuming and speaks and not quiet:
        console.stderr.print(runs.resuming_line(plan), highlight=False)
    together = False  # whether every process ends the same way (see distributed.leave)
    try:
        runs.run(plan, console.TrainingProgress(quiet))
        together = True
    except TrainingInterrupted as e:
        together = True
        if speaks:
            console.stderr.print(runs.interrupted_line(run_dir, e.step), highlight=False)
        raise typer.Exit(128 + e.signal_number) from None
    finally:
        distributed.leave(together)


@app.command("config", cls=_Command)
@user_errors
def show_config(
    config: ConfigOption = None,
    overrides: OverridesOption = None,
) -> None:
    """Print the resolved configuration as TOML: every key, what it does and its default. With no file,
    seqkit's defaults: a starting point for your own config file."""
    sys.stdout.write(configfile.commented_toml(configfile.load(config, overrides or [])))
