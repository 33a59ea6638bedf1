"""`seqkit serve` (a model over HTTP, seqkit/server/) and `seqkit export` (a model as ONNX graphs that run
without torch, seqkit/export/): a trained model for other programs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seqkit.cli import (
    DeviceOption,
    ModelDirArgument,
    ModelOrExportArgument,
    _Command,
    app,
    load_model,
    user_errors,
)
from seqkit.errors import ConfigError


@app.command(cls=_Command)
@user_errors
def serve(
    model_dir: ModelOrExportArgument,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to bind (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option(metavar="N", help="Lines decoded together at most.")] = 64,
    max_lines: Annotated[int, typer.Option(metavar="N", help="Lines per request at most (413).")] = 256,
    max_chars: Annotated[int, typer.Option(metavar="N", help="Characters per line at most (413).")] = 2000,
    max_queue: Annotated[int, typer.Option(metavar="N", help="Requests waiting at most (503).")] = 64,
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Longest wait for an answer (504).")
    ] = 60.0,
    device: DeviceOption = "auto",
) -> None:
    """Serve a model over HTTP with JSON: POST /translate, /generate or /predict (the model's type), GET
    /health, GET /info (docs at /docs). SIGTERM finishes the queued requests, then exits 0."""
    from seqkit import server

    for name, value in (("--max-batch", max_batch), ("--max-lines", max_lines), ("--max-chars", max_chars),
                        ("--max-queue", max_queue)):  # fmt: skip
        if value < 1:
            raise ConfigError(f"{name} {value}: must be at least 1")
    if not 0 < timeout < float("inf"):
        raise ConfigError(f"--timeout {timeout}: must be a positive number of seconds")
    if not 0 <= port < 65536:
        raise ConfigError(f"--port {port}: must be between 0 and 65535")
    model = load_model(model_dir, device)
    server.serve(model, host, port, server.Limits(max_batch, max_lines, max_chars, max_queue, timeout))


@app.command(cls=_Command)
@user_errors
def export(
    model_dir: ModelDirArgument,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="DIR", help="The export directory (new, empty or an export)."),
    ],
    format: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="onnx (the one format so far).")
    ] = "onnx",
    quantize: Annotated[
        bool, typer.Option(help="onnxruntime's dynamic int8 quantization of the graphs' products.")
    ] = False,
) -> None:
    """Export a trained model as ONNX graphs (encoder and decoder step, the language model, or the
    classifier) with its tokenizer and config. `seqkit translate DIR`, `generate`, `predict`, `evaluate
    --data`, `serve` and `seqkit.load` run the export with onnxruntime, without torch. Each graph is
    checked against the torch model before anything is written."""
    import sys

    from seqkit.export import runtime

    runtime.refuse(model_dir)  # (before torch is imported: without it, this is what a user needs to hear)
    from seqkit.export import onnx

    if format != "onnx":
        raise ConfigError(f"--format {format}: the formats are: onnx")
    description = onnx.export(model_dir, output, quantize)
    checks = ", ".join(f"{name} {difference:.1g}" for name, difference in description["check"].items())
    if "check_int8" in description:
        checks += "; int8 graphs: " + ", ".join(f"{n} {d:.2g}" for n, d in description["check_int8"].items())
    sys.stderr.write(f"exported {model_dir} to {output} (largest difference from torch: {checks})\n")
