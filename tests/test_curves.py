"""`seqkit plot`: training curves read from the log, drawn as PNG and as text."""

from __future__ import annotations

import dataclasses
import math
import shutil

import pytest

from seqkit.errors import ModelDirError
from seqkit.training import log as training_log
from seqkit.training.log import EndRecord, GradRecord, Restored, StartRecord, TrainRecord, ValidRecord
from seqkit.viz import plots, textplots
from seqkit.viz.curves import read_curves
from tests.helpers import assert_one_line_error, assert_picture, seqkit_here


def _train_and_valid(model_dir) -> tuple[list[TrainRecord], list[ValidRecord]]:
    records = training_log.read(model_dir)
    return training_log.of_kind(records, TrainRecord), training_log.of_kind(records, ValidRecord)


def _panel(run, title):
    return next(panel for panel in run.panels if panel.title == title)


def test_curves_are_the_logged_numbers(reverse_model):
    train, valid = _train_and_valid(reverse_model)
    run = read_curves(reverse_model)
    ppl = _panel(run, "perplexity")
    assert [c.label for c in ppl.curves] == ["train", "dev"]
    assert ppl.curves[0].steps == [r.step for r in train]
    assert ppl.curves[0].values == [r.ppl for r in train]
    assert ppl.curves[1].steps == [r.step for r in valid]
    assert ppl.curves[1].values == [r.scores["ppl"] for r in valid]
    assert ppl.curves[1].minutes == [r.elapsed_s / 60 for r in valid]
    accuracy = _panel(run, "accuracy (%)").curves[0]
    assert accuracy.values == pytest.approx([100 * r.accuracy for r in train])
    scores = _panel(run, "dev BLEU / chrF")
    assert [c.label for c in scores.curves] == ["BLEU", "chrF"]
    assert scores.curves[0].values == [r.scores["bleu"] for r in valid]
    assert [p.title for p in run.panels] == [
        "perplexity",
        "accuracy (%)",
        "dev BLEU / chrF",
        "gradient norm (before clipping)",
    ]


def _train_record(step: int, ppl: float, accuracy: float, grad_norm: float, elapsed_s: float) -> TrainRecord:
    return TrainRecord(step, 1, math.log(ppl), ppl, accuracy, grad_norm, 1e-3, 1000.0, 500, elapsed_s)


def test_a_resumed_run_draws_the_steps_as_they_now_stand(tmp_path):
    start = StartRecord("start", "seq2seq", {"train_pairs": 10}, 1000, 200, 1, "cpu", "fp32")
    log = [
        start,
        _train_record(50, 9.0, 0.1, 1.0, 6),
        ValidRecord(50, 1, {"ppl": 9.5}, elapsed_s=7),
        _train_record(100, 8.0, 0.2, 1.0, 12),
        _train_record(150, 7.0, 0.3, 1.0, 18),
        ValidRecord(150, 1, {"ppl": 7.7}, elapsed_s=19),
        # killed after step 150, resumed from the checkpoint at step 50, stopped by its time limit at 100:
        # step 100 was trained again and step 150 never was
        dataclasses.replace(start, kind="resume", restored=Restored(50, 1, 1e-3, "ppl", -9.5)),
        _train_record(100, 7.5, 0.25, 0.9, 13),
        GradRecord(101, 0.8, False),
        EndRecord("end", "max_minutes", 100, 0, "ppl", 9.5),
    ]
    for record in log:
        training_log.append(tmp_path, record)
    assert training_log.read_all(tmp_path) == log
    assert training_log.read(tmp_path) == [log[i] for i in (0, 1, 2, 6, 7, 8, 9)]
    run = read_curves(tmp_path)
    train = _panel(run, "perplexity").curves[0]
    assert (train.steps, train.values) == ([50, 100], [9.0, 7.5])
    dev = _panel(run, "perplexity").curves[1]
    assert (dev.steps, dev.values) == ([50], [9.5])
    assert [p.title for p in run.panels] == [
        "perplexity",
        "accuracy (%)",
        "gradient norm (before clipping)",
    ]


def test_a_log_without_records_is_a_clear_error(tmp_path):
    (tmp_path / "train_log.jsonl").write_text('{"kind": "start"}\n')  # a run killed at its start
    with pytest.raises(ModelDirError, match="no training or validation records"):
        read_curves(tmp_path)


def test_the_figure_draws_the_logged_numbers(reverse_model, tmp_path):
    """What matplotlib was given, line by line: the log's values at the log's steps (or minutes)."""
    other = tmp_path / "other"
    shutil.copytree(reverse_model, other)
    runs = [read_curves(reverse_model), read_curves(other)]
    train, valid = _train_and_valid(reverse_model)
    figure = plots.curves_figure(runs, x="time")
    axes = {ax.get_title(): ax for ax in figure.axes if ax.get_visible()}
    assert list(axes) == [p.title for p in runs[0].panels]
    lines = {line.get_label(): line for line in axes["perplexity"].lines}
    first, second = str(reverse_model), str(other)  # runs are named by their directories, as given
    assert sorted(lines) == sorted(f"{run}: {curve}" for run in (first, second) for curve in ("train", "dev"))
    dev = lines[f"{first}: dev"]
    assert list(dev.get_xdata()) == pytest.approx([r.elapsed_s / 60 for r in valid])
    assert list(dev.get_ydata()) == pytest.approx([r.scores["ppl"] for r in valid])
    assert axes["perplexity"].get_yscale() == "log"
    accuracy = {line.get_label(): line for line in axes["accuracy (%)"].lines}[f"{first}: train"]
    assert list(accuracy.get_ydata()) == pytest.approx([100 * r.accuracy for r in train])
    chrf = {line.get_label(): line for line in axes["dev BLEU / chrF"].lines}[f"{second}: chrF"]
    assert list(chrf.get_ydata()) == pytest.approx([r.scores["chrf"] for r in valid])
    # one colour per run, shared by its curves
    assert lines[f"{first}: dev"].get_color() == lines[f"{first}: train"].get_color()
    assert lines[f"{first}: dev"].get_color() != lines[f"{second}: dev"].get_color()


def test_png_of_one_run_and_of_two_runs(reverse_model, char_lm):
    one = read_curves(reverse_model)
    assert_picture(plots.png(plots.curves_figure([one])), plots.curves_size(4))
    lm = read_curves(char_lm)  # perplexity, accuracy, bits per char, gradient norm
    both = plots.png(plots.curves_figure([one, lm], x="time"))
    assert_picture(both, plots.curves_size(5))


def test_text_charts_have_every_panel(reverse_model):
    text = textplots.curves_text([read_curves(reverse_model)], colour=False)
    for title in ("perplexity", "accuracy (%)", "dev BLEU / chrF", "gradient norm"):
        assert title in text
    assert "\x1b[" not in text
    assert len(text.splitlines()) >= 4 * 10


def test_plot_command(reverse_model, tmp_path):
    other = tmp_path / "copy"
    shutil.copytree(reverse_model, other)
    out = tmp_path / "curves.png"
    result = seqkit_here("plot", reverse_model, other, "--output", out, "--x", "time")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    assert_picture(out.read_bytes(), plots.curves_size(4))
    # a picture onto a run's own file (its weights, the log it draws) replaced it and exited 0
    log = (other / "train_log.jsonl").read_bytes()
    for name in ("model.safetensors", "train_log.jsonl"):
        onto = seqkit_here("plot", reverse_model, other, "-o", other / name)
        assert_one_line_error(onto, f"--output {other / name} is a file of the model directory {other}")
    assert (other / "train_log.jsonl").read_bytes() == log
    text = seqkit_here("plot", reverse_model, "--terminal")
    assert text.returncode == 0 and b"perplexity" in text.stdout
    # a pipe, no --output: nothing to draw on
    assert_one_line_error(seqkit_here("plot", reverse_model), "--output")
    assert_one_line_error(seqkit_here("plot", reverse_model, "--terminal", "--x", "epochs"), "--x epochs")
    assert_one_line_error(
        seqkit_here("plot", tmp_path / "nothing", "--terminal"), "nothing", "no such model directory"
    )
    (tmp_path / "not-a-run").mkdir()  # it said "not-a-run/train_log.jsonl: no ... records yet; train longer"
    assert_one_line_error(
        seqkit_here("plot", tmp_path / "not-a-run", "--terminal"), "not-a-run: no train_log.jsonl"
    )
    (tmp_path / "not-a-run" / ".seqkit").write_text('{"kind": "run"}')  # a run still reading its data
    reading = seqkit_here("plot", tmp_path / "not-a-run", "--terminal")  # (it named a log not there)
    assert_one_line_error(reading, f"{tmp_path / 'not-a-run'}: no training or validation records yet")


def test_a_curve_of_one_point_is_drawn(reverse_model, tmp_path):
    # a run whose log holds its first logged step alone: the train curves were lines of one point, drawn
    # as nothing (the panels empty but for their legends)
    run = tmp_path / "run"
    shutil.copytree(reverse_model, run)
    lines = (run / "train_log.jsonl").read_text().splitlines()
    first_train = next(i for i, line in enumerate(lines) if '"kind": "train"' in line)
    (run / "train_log.jsonl").write_text("\n".join(lines[: first_train + 1]) + "\n")
    drawn = [line for ax in plots.curves_figure([read_curves(run)]).axes for line in ax.get_lines()]
    assert drawn and all(len(line.get_xdata()) == 1 and line.get_marker() == "o" for line in drawn)


def test_a_log_without_records_is_named_in_the_error(tmp_path):
    # (mutation review: with the log there, the error must name the log, not only the directory)
    (tmp_path / "train_log.jsonl").write_text('{"kind": "start"}\n')
    with pytest.raises(ModelDirError) as raised:
        read_curves(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / 'train_log.jsonl'}: no training or validation records")
