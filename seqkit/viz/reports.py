"""Pictures written to files: each drawn in memory (plots.py), then written atomically."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from seqkit import outputs
from seqkit.decoding.inference import AttentionMap, Translation
from seqkit.errors import DataError
from seqkit.viz import plots

if TYPE_CHECKING:  # these import torch; `translate EXPORT --attention` runs without it
    from seqkit.model_types.inspection import Inspection
    from seqkit.viz.curves import RunCurves


def _write(path: Path, data: bytes, option: str) -> None:
    try:
        outputs.write_bytes(path, data)  # a device or FIFO is written through
    except BrokenPipeError:  # a reader gone (`-o /dev/stdout | head -c1`): a quiet end, as on stdout
        raise
    except OSError as e:
        raise DataError(f"{option} {outputs.describe(OSError(e.errno, e.strerror, str(path)))}") from None


def prepare_directory(directory: Path, option: str) -> None:
    """Create `directory`, or accept it when empty or seqkit's pictures (a directory of somebody else's
    files is refused: seqkit would replace its line-N files; so is seqkit's export or run)."""
    outputs.check_kind(directory, "pictures", option, "pictures")
    try:
        outputs.claim_directory(directory, "pictures", option)
    except OSError as e:
        raise DataError(
            f"{option} {outputs.describe(OSError(e.errno, e.strerror, str(directory)))}"
        ) from None


def write_curves(path: Path, runs: list[RunCurves], x: str) -> None:
    _write(path, plots.png(plots.curves_figure(runs, x)), "--output")


def write_attention(directory: Path, line_number: int, attention: AttentionMap) -> None:
    """line-{n:06d}.png (the heatmap) and line-{n:06d}.json (pieces and weights) for input line n."""
    stem = directory / f"line-{line_number:06d}"
    data = json.dumps({"line": line_number, **attention.to_dict()}, ensure_ascii=False)
    _write(stem.with_suffix(".json"), data.encode("utf-8"), "--attention")
    picture = plots.png(plots.attention_figure(attention, f"line {line_number}"))
    _write(stem.with_suffix(".png"), picture, "--attention")


def with_attention_files(
    directory: Path, translations: Iterable[list[Translation]]
) -> Iterator[list[Translation]]:
    """Creates `directory` now, then passes each input line's translations through, writing the best
    one's attention files as line N goes by (an empty line has no translation and no files)."""
    prepare_directory(directory, "--attention")

    def passing() -> Iterator[list[Translation]]:
        for line_number, options in enumerate(translations, start=1):
            if options:
                assert options[0].attention is not None  # searched with_attention
                write_attention(directory, line_number, options[0].attention)
            yield options

    return passing()


INSPECTION_PICTURES = ("hidden_states.png", "trajectory.png", "gates.png", "attention.png", "pooling.png")


def write_inspection(directory: Path, inspection: Inspection) -> list[Path]:
    """The pictures of one inspected sentence, and its numbers as JSON; returns the paths written."""
    pictures = {"hidden_states.png": plots.hidden_states_figure, "trajectory.png": plots.trajectory_figure}
    if inspection.layers[0].gates:
        pictures["gates.png"] = plots.gates_figure
    written = []
    for name, draw in pictures.items():
        _write(directory / name, plots.png(draw(inspection)), "--output")
        written.append(directory / name)
    if inspection.attention is not None:
        _write(
            directory / "attention.png", plots.png(plots.attention_figure(inspection.attention)), "--output"
        )
        written.append(directory / "attention.png")
    if inspection.pooling is not None:
        _write(directory / "pooling.png", plots.png(plots.pooling_figure(inspection)), "--output")
        written.append(directory / "pooling.png")
    numbers = {
        "text": inspection.text,
        "output": inspection.output,
        "cell": inspection.cell,
        "layers": [
            {
                "name": layer.name,
                "tokens": layer.tokens,
                "hidden": layer.hidden.tolist(),
                "gates": {name: value.tolist() for name, value in layer.gates.items()},
            }
            for layer in inspection.layers
        ],
        "attention": inspection.attention.to_dict() if inspection.attention else None,
        "pooling": inspection.pooling,
        "probabilities": inspection.probabilities,
    }
    _write(directory / "trace.json", json.dumps(numbers, ensure_ascii=False).encode("utf-8"), "--output")
    written.append(directory / "trace.json")
    # a picture an earlier inspection left here (a translation model's attention.png beside a
    # classifier's trace) would be taken for this sentence's: the folder is seqkit's, its names too
    for name in INSPECTION_PICTURES:
        stale = directory / name
        if stale not in written and stale.is_file() and not stale.is_symlink():
            stale.unlink()
    return written


def write_evaluation_plot(path: Path, result: dict, title: str) -> None:
    """A classifier's evaluation (scoring/prediction.py) as a PNG: its confusion matrix, or a
    forecaster's predicted against actual values."""
    import numpy as np

    if result["kind"] == "classifier":
        scores = result["scores"]
        figure = plots.confusion_figure(np.asarray(scores["confusion"]), scores["labels"], title)
    else:
        figure = plots.forecast_figure(np.asarray(result["gold"]), np.asarray(result["predicted"]), title)
    _write(path, plots.png(figure), "--plot")
