"""`seqkit predict`: a classifier's label (or a forecaster's values) for each input line, one line out
per line in, in order."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seqkit.cli import (
    DeviceOption,
    QuantizeOption,
    _Command,
    app,
    line_io,
    load_model,
    model_default,
    output_file,
    user_errors,
)
from seqkit.errors import ConfigError


def prediction_line(prediction, probabilities: bool, top_k: int | None) -> str:
    """One input line's answer: the label; with `top_k`, the k likeliest labels tab-separated; with
    `probabilities`, a JSON object of label -> probability, likeliest first (all labels, or the top k);
    a forecaster's values space-separated. An empty input line gets an empty line."""
    import json

    if prediction is None:
        return ""
    if prediction.values is not None:
        return " ".join(f"{value:.6g}" for value in prediction.values)
    ranked = prediction.top(top_k or len(prediction.probabilities))
    if probabilities:
        return json.dumps({label: round(p, 6) for label, p in ranked}, ensure_ascii=False)
    return "\t".join(label for label, _ in ranked) if top_k else prediction.label


@app.command(cls=_Command)
@user_errors
def predict(
    model_dir: Annotated[
        Path, typer.Argument(metavar="MODEL_DIR", help='Classifier directory (model.type = "classifier").')
    ],
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[FILE]...",
            help="Input files (.gz too): text, or numbers x1,x2,... per line; stdin when none.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write here instead of stdout.", parser=output_file
        ),
    ] = None,
    probs: Annotated[
        bool, typer.Option("--probs", help="A JSON object of label probabilities per line, likeliest first.")
    ] = False,
    top_k: Annotated[
        int | None,
        typer.Option(metavar="K", help="The K likeliest labels per line (tab-separated, or in --probs)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(metavar="N", help="Examples per batch. " + model_default("decode", "batch_size")),
    ] = None,
    device: DeviceOption = "auto",
    quantize: QuantizeOption = False,
    column: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Predict column N (from 1) of tab-separated input lines (a labelled file's text).",
        ),
    ] = None,
) -> None:
    """The label (or a forecaster's values) of each input line, one line out per line in, in order; an
    empty line in gives an empty line out."""
    line_io.check_output(output, inputs, model_dir)
    model = load_model(model_dir, device, quantize=quantize)
    model.require_task("predict")
    from seqkit.decoding.classify import check_top_k

    encoding = model.tokenizer.encoding  # type: ignore[attr-defined]  # a classifier's is a Codec
    if encoding.head == "regression" and probs:
        raise ConfigError(f"--probs: {model_dir} forecasts numbers, which have no labels to rank; drop it")
    check_top_k(encoding, top_k, "--top-k", f"--top-k {top_k}", model_dir)
    chunk_lines = 1 if line_io.typed(inputs) else 256
    # file by file, so that an error names the file and its own line number
    stream = (
        prediction
        for path in inputs or [Path("-")]
        for prediction in model.predict_stream(
            line_io.input_lines([path], column), batch_size, chunk_lines, line_io.source_name(path)
        )
    )
    line_io.write_lines((prediction_line(p, probs, top_k) for p in stream), output)
