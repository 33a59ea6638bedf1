"""`seqkit translate` and `seqkit generate`: text in, one result per line out, in order."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from seqkit.cli import (
    DeviceOption,
    ModelOrExportArgument,
    QuantizeOption,
    _Command,
    app,
    line_io,
    load_model,
    model_default,
    output_file,
    user_errors,
)
from seqkit.decoding.sampling import SAMPLING_NBEST
from seqkit.errors import ConfigError, DataError


@app.command(cls=_Command)
@user_errors
def translate(
    model_dir: ModelOrExportArgument,
    inputs: Annotated[
        list[Path] | None, typer.Argument(metavar="[FILE]...", help="Input files (.gz too); stdin when none.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write here instead of stdout.", parser=output_file
        ),
    ] = None,
    beam_size: Annotated[
        int | None,
        typer.Option(metavar="N", help="Beam size; 1 = greedy. " + model_default("decode", "beam_size")),
    ] = None,
    length_penalty: Annotated[
        float | None,
        typer.Option(
            metavar="ALPHA",
            help="GNMT length penalty; 0 = none. " + model_default("decode", "length_penalty"),
        ),
    ] = None,
    nbest: Annotated[
        int,
        typer.Option(
            metavar="N", help="Write the N best hypotheses with scores, one JSON object per input line."
        ),
    ] = 0,
    batch_size: Annotated[
        int | None,
        typer.Option(metavar="N", help="Sentences per batch. " + model_default("decode", "batch_size")),
    ] = None,
    max_length_ratio: Annotated[
        float | None,
        typer.Option(
            metavar="RATIO",
            help="Output limit: ratio x source length + offset. "
            + model_default("decode", "max_length_ratio"),
        ),
    ] = None,
    max_input_pieces: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="A longer input line is an error naming it (split such lines first). "
            + model_default("decode", "max_input_pieces"),
        ),
    ] = None,
    shortlist: Annotated[
        bool | None,
        typer.Option(
            "--shortlist/--no-shortlist",
            help="Compute only the batch's likely output pieces (MODEL_DIR/shortlist.npz; seqkit shortlist "
            "builds it): faster, BLEU cost in bench/README.md. " + model_default("decode", "shortlist"),
        ),
    ] = None,
    coverage_penalty: Annotated[
        float | None,
        typer.Option(
            metavar="BETA",
            help="GNMT's coverage penalty on finished beam hypotheses (favours outputs that attend to every "
            "source piece); 0 = none. " + model_default("decode", "coverage_penalty"),
        ),
    ] = None,
    no_repeat_ngram: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="No n-gram of N pieces twice in one output; 0 = none. "
            + model_default("decode", "no_repeat_ngram"),
        ),
    ] = None,
    repetition_penalty: Annotated[
        float | None,
        typer.Option(
            metavar="THETA",
            help="Multiply the log-probability of a piece already in the output by THETA; 1 = none. "
            + model_default("decode", "repetition_penalty"),
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            metavar="T",
            help="Sample each output at temperature T instead of searching (varied outputs, as for "
            "back-translation); 0 = search. " + model_default("decode", "temperature"),
        ),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            metavar="K",
            help="Sampling: from the k likeliest pieces; 0 = all. " + model_default("decode", "top_k"),
        ),
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option(
            metavar="P",
            help="Sampling: from the smallest set reaching p. " + model_default("decode", "top_p"),
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Sampling: same seed and line, same output. " + model_default("decode", "seed"),
        ),
    ] = None,
    device: DeviceOption = "auto",
    precision: Annotated[
        str,
        typer.Option(
            "--precision", metavar="PRECISION", help="fp32, or bf16 / fp16 autocast of the larger products."
        ),
    ] = "fp32",
    quantize: QuantizeOption = False,
    column: Annotated[
        int | None,
        typer.Option(metavar="N", help="Translate column N (from 1) of tab-separated input lines."),
    ] = None,
    attention: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Also write, for input line N, DIR/line-N.png (attention heatmap of the best output) and "
            "DIR/line-N.json (its pieces and weights), N in six digits (line-000012.png); N counts lines over "
            "all inputs, from 1.",
        ),
    ] = None,
) -> None:
    """Translate text, one output line per input line, in order. Under torchrun, the processes share the
    lines of the input files and write one --output in input order."""
    from seqkit import api
    from seqkit.decoding.inference import LineNumbers
    from seqkit.export import runtime as exported

    sharing = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if sharing and (output is None or not inputs or attention is not None):
        raise ConfigError(
            "under torchrun, translate shares out the lines of input files into one --output FILE: give "
            "both (and no --attention)"
        )
    if sharing:
        from seqkit.decoding import sharded

        sharded.check_shareable(inputs or [])
    line_io.check_output(output, inputs, model_dir)
    if exported.is_export(model_dir):  # onnxruntime, without torch
        if sharing:
            raise ConfigError(
                f"{model_dir} is an ONNX export, which translates in one process: run it without torchrun"
            )
        target = None
    else:
        from seqkit.runtime import devices, distributed

        target = devices.resolve(device)
        if quantize and target.type != "cpu":
            raise ConfigError(
                "--quantize: int8 decoding runs on the CPU; add --device cpu or leave out --quantize"
            )
    model = load_model(model_dir, device, precision, quantize)
    model.require_task("translate")
    decode = model.decode_settings(
        "command-line options",
        beam_size=beam_size,
        length_penalty=length_penalty,
        batch_size=batch_size,
        max_length_ratio=max_length_ratio,
        max_input_pieces=max_input_pieces,
        shortlist=shortlist,
        coverage_penalty=coverage_penalty,
        no_repeat_ngram=no_repeat_ngram,
        repetition_penalty=repetition_penalty,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
    )
    if nbest > 1 and decode.temperature > 0:
        raise ConfigError(SAMPLING_NBEST.format(f"--nbest {nbest} with --temperature {decode.temperature:g}"))
    if nbest < 0 or nbest > decode.beam_size:
        raise ConfigError(
            f"--nbest {nbest}: must be between 1 and the beam size ({decode.beam_size}); raise --beam-size"
        )
    asked = (decode, max(1, nbest), attention is not None, 1 if line_io.typed(inputs) else None)
    translated: Iterator[api.TranslationResult]
    if sharing:
        assert target is not None and inputs  # (an export, and stdin, refused sharing above)
        world = distributed.join(target)
        torch_threads(distributed.threads_per_process())
        lines = sharded.shard(line_io.input_lines(inputs, column), world)
        # this process's k-th line is line rank + 1 + k x size of the input files read as one
        numbers = LineNumbers(str(inputs[0]) if len(inputs) == 1 else None, world.rank + 1, world.size)
        translated = model.translate_stream(lines, *asked, numbers)
    else:  # file by file, so that an error names the file and its own line number
        translated = (
            result
            for path in inputs or [Path("-")]
            for result in model.translate_stream(
                line_io.input_lines([path], column),
                *asked,
                LineNumbers(line_io.source_name(path)),
            )
        )
    results: Iterator[str]
    if attention:
        from seqkit.viz import reports

        with_files = reports.with_attention_files(attention, (list(r.nbest) for r in translated))
        results = (nbest_json(o[:nbest]) if nbest else o[0].text if o else "" for o in with_files)
    else:
        results = (nbest_json(r.nbest) if nbest else r.text for r in translated)
    if not sharing:
        line_io.write_lines(results, output)
        return
    assert output is not None
    together = False
    try:
        try:
            sharded.write_part(output, world, results)  # (removes the part if it fails)
            failure = None
        except Exception as e:  # told to the others, which would wait for this process at a barrier
            failure = e
        failed = round(world.sum([float(failure is not None)])[0])  # every part complete, or not
        together = True
        if failed:  # no part is left behind
            sharded.part_path(output, world.rank).unlink(missing_ok=True)
            if failure is not None:
                raise failure
            raise DataError(
                f"--output {output}: not written, as {failed} of the {world.size} processes failed "
                "(its error is on stderr too)"
            )
        if world.is_main:
            sharded.merge(output, world)
    finally:
        distributed.leave(together)


def torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


def nbest_json(options) -> str:
    """One input line's n-best list: {"hypotheses": [{"text", "score", "log_prob"}, ...]} best first."""
    import json

    return json.dumps(
        {"hypotheses": [{"text": o.text, "score": o.score, "log_prob": o.log_prob} for o in options]},
        ensure_ascii=False,
    )


@app.command(cls=_Command)
@user_errors
def generate(
    model_dir: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL_DIR", help='Language model directory (model.type = "lm"; or its export).'
        ),
    ],
    prompts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PROMPT]...", help="Prompts; one per stdin line when none (an empty one starts afresh)."
        ),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="New tokens per sample at most. " + model_default("generate", "max_tokens")
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(metavar="T", help="0 = greedy. " + model_default("generate", "temperature")),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            metavar="K",
            help="Sample from the k likeliest tokens; 0 = all. " + model_default("generate", "top_k"),
        ),
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option(
            metavar="P", help="Nucleus: the smallest set reaching p. " + model_default("generate", "top_p")
        ),
    ] = None,
    num_samples: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="Output lines per prompt. " + model_default("generate", "num_samples")
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(metavar="N", help="Same seed, same output. " + model_default("generate", "seed")),
    ] = None,
    device: DeviceOption = "auto",
) -> None:
    """Sample text from a language model: each prompt and its continuation on one line."""
    model = load_model(model_dir, device)
    model.require_task("generate")
    settings = model.generate_settings(
        "command-line options",
        max_tokens=max_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        num_samples=num_samples,
        seed=seed,
    )
    if prompts:
        lines = iter(prompts)
    elif sys.stdin.isatty():
        lines = iter([""])  # nothing piped in: one text from nothing
    else:
        lines = line_io.input_lines(None)
    if sys.stdout.isatty():  # a person is watching: show the text as it comes

        def show(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()

        for _ in model.generate_stream(lines, settings, on_text=show):
            sys.stdout.write("\n")
    else:
        line_io.write_lines(model.generate_stream(lines, settings), None)
