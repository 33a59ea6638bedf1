"""`seqkit plot`: training curves read from the log, drawn as PNG and as text."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

from seqkit import modeldir, plots, textplots
from seqkit.curves import read_curves
from seqkit.errors import ModelDirError
from tests.cli_helpers import assert_one_line_error, seqkit


def png_pixels(data: bytes) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(data), format="png")


def assert_picture(data: bytes, size_inches: tuple[float, float]) -> None:
    """A PNG of the expected pixel size that is not one flat colour."""
    pixels = png_pixels(data)
    assert pixels.shape[:2] == (round(size_inches[1] * plots.DPI), round(size_inches[0] * plots.DPI))
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 10


def _panel(run, title):
    return next(panel for panel in run.panels if panel.title == title)


def test_curves_are_the_logged_numbers(reverse_model):
    records = modeldir.read_log(reverse_model)
    train = [r for r in records if r["kind"] == "train"]
    valid = [r for r in records if r["kind"] == "valid"]
    run = read_curves(reverse_model)
    ppl = _panel(run, "perplexity")
    assert [c.label for c in ppl.curves] == ["train", "dev"]
    assert ppl.curves[0].steps == [r["step"] for r in train]
    assert ppl.curves[0].values == [r["ppl"] for r in train]
    assert ppl.curves[1].steps == [r["step"] for r in valid]
    assert ppl.curves[1].values == [r["dev_ppl"] for r in valid]
    assert ppl.curves[1].minutes == [r["elapsed_s"] / 60 for r in valid]
    accuracy = _panel(run, "token accuracy (%)").curves[0]
    assert accuracy.values == pytest.approx([100 * r["accuracy"] for r in train])
    scores = _panel(run, "dev BLEU / chrF")
    assert [c.label for c in scores.curves] == ["BLEU", "chrF"]
    assert scores.curves[0].values == [r["dev_bleu"] for r in valid]
    assert [p.title for p in run.panels] == [
        "perplexity",
        "token accuracy (%)",
        "dev BLEU / chrF",
        "gradient norm (before clipping)",
    ]


def test_a_resumed_run_keeps_the_last_record_of_each_step(tmp_path):
    log = [
        {"kind": "train", "step": 50, "ppl": 9.0, "accuracy": 0.1, "grad_norm": 1.0, "elapsed_s": 6},
        {"kind": "train", "step": 100, "ppl": 8.0, "accuracy": 0.2, "grad_norm": 1.0, "elapsed_s": 12},
        # killed after step 100, resumed from the checkpoint at step 50: step 100 trained again
        {"kind": "resume", "step": 50},
        {"kind": "train", "step": 100, "ppl": 7.5, "accuracy": 0.25, "grad_norm": 0.9, "elapsed_s": 13},
        {"kind": "grad", "step": 101, "norm": 0.8, "clipped": False},
    ]
    (tmp_path / modeldir.LOG).write_text("".join(json.dumps(r) + "\n" for r in log))
    run = read_curves(tmp_path)
    curve = _panel(run, "perplexity").curves[0]
    assert (curve.steps, curve.values) == ([50, 100], [9.0, 7.5])
    assert [p.title for p in run.panels] == [
        "perplexity",
        "token accuracy (%)",
        "gradient norm (before clipping)",
    ]


def test_a_log_without_records_is_a_clear_error(tmp_path):
    with pytest.raises(ModelDirError, match="no training or validation records"):
        read_curves(tmp_path)


def test_png_of_one_run_and_of_two_runs(reverse_model, char_lm_dir):
    one = read_curves(reverse_model)
    assert_picture(plots.curves_png([one]), plots.curves_size(4))
    lm = read_curves(char_lm_dir)  # perplexity, accuracy, bits per char, gradient norm
    both = plots.curves_png([one, lm], x="time")
    assert_picture(both, plots.curves_size(5))


def test_text_charts_have_every_panel(reverse_model):
    text = textplots.curves_text([read_curves(reverse_model)], colour=False)
    for title in ("perplexity", "token accuracy (%)", "dev BLEU / chrF", "gradient norm"):
        assert title in text
    assert "\x1b[" not in text
    assert len(text.splitlines()) >= 4 * 10


def test_plot_command(reverse_model, tmp_path):
    other = tmp_path / "copy"
    shutil.copytree(reverse_model, other)
    out = tmp_path / "curves.png"
    result = seqkit("plot", reverse_model, other, "--output", out, "--x", "time")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    assert_picture(out.read_bytes(), plots.curves_size(4))
    text = seqkit("plot", reverse_model, "--terminal")
    assert text.returncode == 0 and b"perplexity" in text.stdout
    # a pipe, no --output: nothing to draw on
    assert_one_line_error(seqkit("plot", reverse_model), "--output")
    assert_one_line_error(seqkit("plot", reverse_model, "--terminal", "--x", "epochs"), "--x epochs")
    assert_one_line_error(
        seqkit("plot", tmp_path / "nothing", "--terminal"), "nothing", "no such model directory"
    )
