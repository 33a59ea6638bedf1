"""`seqkit evaluate` and `seqkit average`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from seqkit.cli import (
    DeviceOption,
    _Command,
    app,
    line_io,
    load_model,
    output_file,
    user_errors,
)
from seqkit.errors import ConfigError, DataError
from seqkit.wording import counted


@app.command(cls=_Command)
@user_errors
def evaluate(
    hypotheses: Annotated[
        list[Path] | None, typer.Option("--hyp", "-i", metavar="FILE", help="System output (repeatable).")
    ] = None,
    references: Annotated[
        list[Path] | None, typer.Option("--ref", "-r", metavar="FILE", help="Reference file (repeatable).")
    ] = None,
    names: Annotated[
        list[str] | None, typer.Option("--name", metavar="NAME", help="A label for each --hyp, in order.")
    ] = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            "-m",
            metavar="METRIC...",
            help="bleu, chrf, ter: `-m bleu chrf` or `-m bleu,chrf`. [default: all three]",
        ),
    ] = None,
    more_metrics: Annotated[list[str] | None, typer.Argument(hidden=True, metavar="[METRIC]...")] = None,
    column: Annotated[
        int | None,
        typer.Option(metavar="N", help="The references are column N (from 1) of tab-separated files."),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model",
            metavar="DIR",
            help="Perplexity of --ref under this model (given --source for seq2seq); a classifier: its scores on --data.",
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            metavar="FILE",
            help="A classifier's labelled test data (as its data.train; a series: its test part is scored).",
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE",
            parser=output_file,
            help="With --data: the confusion matrix (or predicted against actual) as PNG.",
        ),
    ] = None,
    source: Annotated[
        Path | None, typer.Option("--source", "-s", metavar="FILE", help="Source file, for perplexity.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout instead of a table.")] = False,
    device: DeviceOption = "auto",
) -> None:
    """Score hypotheses against references (BLEU, chrF, TER), and/or a model's perplexity on --ref.
    Without -i or --model, the hypotheses are read from stdin: `seqkit translate M < src | seqkit evaluate
    -r ref`."""
    from seqkit import results
    from seqkit.scoring.evaluation import score_systems

    if data is not None or plot is not None:
        given = {"--hyp": hypotheses, "--ref": references, "--name": names, "--metrics": metrics or more_metrics,
                 "--column": column, "--source": source}  # fmt: skip
        unused = [option for option, value in given.items() if value is not None and value != []]
        if unused:  # an error, not ignored
            raise ConfigError(
                f"{', '.join(unused)} with {'--data' if data is not None else '--plot'}: --data (and --plot) "
                "score a classifier on labelled examples, "
                f"{'these options' if len(unused) > 1 else 'this option'} text against references "
                "(BLEU / chrF / TER, perplexity); give one or the other"
            )
        _evaluate_classifier(model_dir, data, plot, as_json, device)
        return
    if more_metrics and not metrics:  # a usage mistake, as Typer's own (exit 2)
        raise typer.BadParameter(
            f"unexpected argument {more_metrics[0]!r}: give system output with -i FILE (or on stdin)",
            param_hint="[METRIC]...",
        )
    read_stdin = [
        p for p in [*(hypotheses or []), *(references or []), source] if p is not None and str(p) == "-"
    ]
    if len(read_stdin) > 1:  # (the first read it all: "the standard input has 0 lines but - has 50")
        raise ConfigError(
            "- given twice: the standard input can be read once; give all but one of -i, -r and -s as files"
        )
    if model_dir is not None:
        from seqkit.export import runtime

        exported = runtime.read_description(model_dir) if runtime.is_export(model_dir) else None
        if exported is None or exported["type"] != "classifier":
            runtime.refuse(model_dir)  # (an export does not score: said before torch is imported)
            from seqkit import modeldir

            modeldir.require_directory(model_dir)  # (a missing one was "no config.toml (the run's config)")
            model_type = modeldir.load_config(model_dir).model.type
        if exported is not None or model_type == "classifier":
            raise DataError(
                f"--model {model_dir} is a classifier or forecaster: give its labelled test data with --data FILE"
            )
        # options the perplexity would not read: errors, not ignored (a TSV's whole lines were scored)
        if column is not None:
            raise ConfigError(
                "--column with --model: a model's perplexity reads -r (and -s) as plain line files; cut the "
                "column out first (cut -f N FILE), or score text alone without --model"
            )
        if references and len(references) > 1:
            raise ConfigError(
                f"--model scores one reference file, and {len(references)} -r were given; give one"
            )
        if model_type == "lm" and source is not None:
            raise ConfigError(
                f"--source: {model_dir} is a language model, whose perplexity reads -r alone; drop it"
            )
    elif source is not None:
        raise ConfigError("--source is the source side of a model's perplexity: give --model too, or drop it")
    if not references:
        raise DataError("--ref is required: give the reference file(s) with -r")
    if column is not None and column < 1:
        raise ConfigError(f"--column {column}: columns count from 1")
    if not hypotheses and model_dir is None:
        if sys.stdin.isatty():
            raise DataError(
                "nothing to evaluate: give system output with -i or on stdin, or a model with --model"
            )
        hypotheses = [Path("-")]
    chosen = [*(metrics or ["bleu,chrf,ter"]), *(more_metrics or [])]
    rows = score_systems(hypotheses, references, names or [], chosen, column) if hypotheses else []
    perplexity = None
    if model_dir is not None:
        from seqkit import model_types
        from seqkit.runtime import devices

        perplexity = model_types.perplexity(model_dir, source, references[0], devices.resolve(device))
    results.print_evaluation(rows, perplexity, as_json)


@app.command(cls=_Command)
@user_errors
def average(
    model_dir: Annotated[
        Path, typer.Argument(metavar="MODEL_DIR", help="Model directory whose checkpoints to average.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="DIR", help="New model directory to write.")
    ],
    last: Annotated[int, typer.Option(metavar="N", help="How many of the newest checkpoints.")] = 2,
) -> None:
    """Average the weights of a run's newest checkpoints into a new model directory."""
    from seqkit.export import runtime

    runtime.refuse(model_dir)  # (before torch is imported: without it, this is what a user needs to hear)
    from seqkit import console
    from seqkit.training import checkpoint

    if last < 1:
        raise ConfigError(f"--last {last}: must be at least 1")
    names = checkpoint.average(model_dir, output, last)
    console.stderr.print(f"averaged {', '.join(names)} into {output}", highlight=False)
    if len(names) < last:  # (said, not refused: the mean of what the run kept is still a model)
        console.stderr.print(
            f"warning: --last {last}, but {model_dir} holds {counted(len(names), 'complete checkpoint')}; "
            "train.keep_checkpoints sets how many a run keeps",
            highlight=False,
        )


def _evaluate_classifier(
    model_dir: Path | None, data: str | None, plot: Path | None, as_json: bool, device: str
) -> None:
    from seqkit import results
    from seqkit.viz import reports

    if model_dir is None or data is None:
        raise DataError("--data and --plot score a classifier: give both --model DIR and --data FILE")
    model = load_model(model_dir, device)  # (an ONNX export too: it predicts without torch)
    # the files read: --data (a TSV or CSV, or {prefix}.text and {prefix}.label) and the model's training
    # data (or series), which the baselines learn from
    trained_on = model.config.data
    read = [
        Path(spec + suffix)
        for spec in (data, trained_on.train, trained_on.series)
        if spec
        for suffix in ("", ".text", ".label")
    ]
    line_io.check_output(plot, read, model_dir, "--plot")
    line_io.check_png(plot, "--plot")
    result = model.evaluate(data)  # (a model that does not predict is refused first, naming evaluate --data)
    if plot is not None:
        reports.write_evaluation_plot(plot, result, str(model_dir))
    results.print_prediction_scores(result, as_json)
