"""Seeing what a model does: `seqkit plot`, `seqkit inspect`, `seqkit info`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from seqkit import config as config_lib
from seqkit.cli import (
    ModelDirArgument,
    ModelOrExportArgument,
    _Command,
    app,
    line_io,
    model_default,
    output_file,
    user_errors,
)
from seqkit.errors import ConfigError


@app.command(cls=_Command)
@user_errors
def plot(
    model_dirs: Annotated[
        list[Path],
        typer.Argument(metavar="MODEL_DIR...", help="Model directories; several are drawn together."),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write a PNG here.", parser=output_file),
    ] = None,
    terminal: Annotated[
        bool | None,
        typer.Option(help="Draw in text on stdout. [default: when stdout is a terminal and no --output]"),
    ] = None,
    x: Annotated[
        str, typer.Option(metavar="AXIS", help="The x axis: step, or time (minutes of training).")
    ] = "step",
) -> None:
    """Training curves from the training log: perplexity, token accuracy, dev BLEU/chrF, gradient norm."""
    from seqkit import console
    from seqkit.viz import curves

    if x not in ("step", "time"):
        raise ConfigError(f"--x {x}: must be step or time")
    if terminal is None:
        terminal = output is None and sys.stdout.isatty()
    if output is None and not terminal:
        reason = "--no-terminal" if sys.stdout.isatty() else "stdout is not a terminal"
        raise ConfigError(
            f"{reason}: nothing to draw on; give --output FILE.png, or --terminal for text charts"
        )
    for model_dir in model_dirs:  # before any work: the picture must not replace a run's own file
        line_io.check_output(output, [], model_dir)
    line_io.check_png(output, "--output")
    runs = [curves.read_curves(model_dir) for model_dir in model_dirs]
    if output is not None:
        from seqkit.viz import reports

        reports.write_curves(output, runs, x)
        console.stderr.print(f"wrote {output}", highlight=False)
    if terminal:
        from seqkit.viz import textplots

        sys.stdout.write(textplots.curves_text(runs, x, colour=sys.stdout.isatty()) + "\n")


@app.command(cls=_Command)
@user_errors
def inspect(
    model_dir: ModelDirArgument,
    text: Annotated[
        str, typer.Option("--text", metavar="TEXT", help="The sentence to translate, or an LM's prompt.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="DIR", help="Directory for the pictures and trace.json.")
    ] = Path("inspect"),
    beam_size: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Beam size for the translation; 1 = greedy. " + model_default("decode", "beam_size"),
        ),
    ] = None,
) -> None:
    """Hidden states, gates and attention of one sentence: PNGs in --output, the attention as text on stdout."""
    from seqkit.export import runtime

    runtime.refuse(model_dir)  # (before torch is imported: without it, this is what a user needs to hear)
    from seqkit import console, model_types
    from seqkit.viz import reports, textplots

    if not text.strip() and text != "":
        raise ConfigError("--text: only whitespace; give a sentence")
    if "\n" in text:  # (it was read as an unknown piece) as generate and translate refuse it
        raise ConfigError("--text holds a line break; give one line")
    cfg, tokenizer, model = model_types.load(model_dir)
    model_type = model_types.of(cfg)
    if beam_size is not None and model_type.task != "translate":
        raise ConfigError(f"--beam-size: a {model_type.title} reads the prompt, nothing is searched; drop it")
    cfg = config_lib.with_overrides(cfg, {"decode": {"beam_size": beam_size}}, "command-line options")
    inspection = model_type.inspect(model, tokenizer, cfg, text)
    reports.prepare_directory(output, "--output")
    written = reports.write_inspection(output, inspection)
    if inspection.attention is not None:
        sys.stdout.write(f"output: {inspection.output}\n{textplots.attention_text(inspection.attention)}\n")
    elif inspection.output is not None:  # a classifier's label, or a forecaster's values
        sys.stdout.write(textplots.classification_text(inspection) + "\n")
    console.stderr.print(f"wrote {', '.join(str(path) for path in written)}", highlight=False)


@app.command(cls=_Command)
@user_errors
def info(
    model_dir: ModelOrExportArgument,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout instead of tables.")] = False,
    vocab: Annotated[
        bool,
        typer.Option(
            "--vocab", help="The whole vocabulary instead: id, piece, and its count in the training data."
        ),
    ] = False,
) -> None:
    """Layers with output shapes and parameter counts, vocabulary, training summary and file sizes."""
    from seqkit import results
    from seqkit.export import runtime

    if runtime.is_export(model_dir):  # without torch
        if vocab:
            raise ConfigError(
                f"--vocab: {model_dir} is an ONNX export, which keeps no vocabulary counts; ask the model "
                "directory it was exported from (export.json names it: source)"
            )
        results.print_export(runtime.read_description(model_dir), as_json)
        return
    from seqkit.viz import summary

    if vocab:
        results.print_vocabulary(summary.vocabulary(model_dir), as_json)
        return
    results.print_info(summary.summarize(model_dir), as_json)
