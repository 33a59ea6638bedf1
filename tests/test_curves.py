"""`seqkit plot`: training curves read from the log, drawn as PNG and as text."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

from seqkit import modeldir
from seqkit.errors import ModelDirError
from seqkit.viz import plots, textplots
from seqkit.viz.curves import read_curves
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


def test_a_resumed_run_draws_the_steps_as_they_now_stand(tmp_path):
    log = [
        {"kind": "start", "step": 0},
        {"kind": "train", "step": 50, "ppl": 9.0, "accuracy": 0.1, "grad_norm": 1.0, "elapsed_s": 6},
        {"kind": "valid", "step": 50, "dev_ppl": 9.5, "elapsed_s": 7},
        {"kind": "train", "step": 100, "ppl": 8.0, "accuracy": 0.2, "grad_norm": 1.0, "elapsed_s": 12},
        {"kind": "train", "step": 150, "ppl": 7.0, "accuracy": 0.3, "grad_norm": 1.0, "elapsed_s": 18},
        {"kind": "valid", "step": 150, "dev_ppl": 7.7, "elapsed_s": 19},
        # killed after step 150, resumed from the checkpoint at step 50, stopped by its time limit at 100:
        # step 100 was trained again and step 150 never was
        {"kind": "resume", "step": 50},
        {"kind": "train", "step": 100, "ppl": 7.5, "accuracy": 0.25, "grad_norm": 0.9, "elapsed_s": 13},
        {"kind": "grad", "step": 101, "norm": 0.8, "clipped": False},
        {"kind": "end", "step": 100, "reason": "max_minutes"},
    ]
    (tmp_path / modeldir.LOG).write_text("".join(json.dumps(r) + "\n" for r in log))
    kept = modeldir.current_history(modeldir.read_log(tmp_path))
    assert [(r["kind"], r["step"]) for r in kept] == [
        ("start", 0),
        ("train", 50),
        ("valid", 50),
        ("resume", 50),
        ("train", 100),
        ("grad", 101),
        ("end", 100),
    ]
    run = read_curves(tmp_path)
    train = _panel(run, "perplexity").curves[0]
    assert (train.steps, train.values) == ([50, 100], [9.0, 7.5])
    dev = _panel(run, "perplexity").curves[1]
    assert (dev.steps, dev.values) == ([50], [9.5])
    assert [p.title for p in run.panels] == [
        "perplexity",
        "token accuracy (%)",
        "gradient norm (before clipping)",
    ]


def test_a_log_without_records_is_a_clear_error(tmp_path):
    with pytest.raises(ModelDirError, match="no training or validation records"):
        read_curves(tmp_path)


def test_the_figure_draws_the_logged_numbers(reverse_model, tmp_path):
    """What matplotlib was given, line by line: the log's values at the log's steps (or minutes)."""
    other = tmp_path / "other"
    shutil.copytree(reverse_model, other)
    runs = [read_curves(reverse_model), read_curves(other)]
    records = modeldir.read_log(reverse_model)
    train = [r for r in records if r["kind"] == "train"]
    valid = [r for r in records if r["kind"] == "valid"]
    figure = plots.curves_figure(runs, x="time")
    axes = {ax.get_title(): ax for ax in figure.axes if ax.get_visible()}
    assert list(axes) == [p.title for p in runs[0].panels]
    lines = {line.get_label(): line for line in axes["perplexity"].lines}
    first, second = str(reverse_model), str(other)  # runs are named by their directories, as given
    assert sorted(lines) == sorted(f"{run}: {curve}" for run in (first, second) for curve in ("train", "dev"))
    dev = lines[f"{first}: dev"]
    assert list(dev.get_xdata()) == pytest.approx([r["elapsed_s"] / 60 for r in valid])
    assert list(dev.get_ydata()) == pytest.approx([r["dev_ppl"] for r in valid])
    assert axes["perplexity"].get_yscale() == "log"
    accuracy = {line.get_label(): line for line in axes["token accuracy (%)"].lines}[f"{first}: train"]
    assert list(accuracy.get_ydata()) == pytest.approx([100 * r["accuracy"] for r in train])
    chrf = {line.get_label(): line for line in axes["dev BLEU / chrF"].lines}[f"{second}: chrF"]
    assert list(chrf.get_ydata()) == pytest.approx([r["dev_chrf"] for r in valid])
    # one colour per run, shared by its curves
    assert lines[f"{first}: dev"].get_color() == lines[f"{first}: train"].get_color()
    assert lines[f"{first}: dev"].get_color() != lines[f"{second}: dev"].get_color()


def test_png_of_one_run_and_of_two_runs(reverse_model, char_lm_dir):
    one = read_curves(reverse_model)
    assert_picture(plots.png(plots.curves_figure([one])), plots.curves_size(4))
    lm = read_curves(char_lm_dir)  # perplexity, accuracy, bits per char, gradient norm
    both = plots.png(plots.curves_figure([one, lm], x="time"))
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
