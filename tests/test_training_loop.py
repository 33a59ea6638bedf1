"""The shared training loop: schedules, early stopping, best-metric choice, gradient diagnostics."""

from __future__ import annotations

import math

import pytest
import torch

from seqkit import config as config_lib
from seqkit import modeldir
from seqkit.config import TrainConfig
from seqkit.errors import TrainingError
from seqkit.training.gradients import GradientMonitor
from seqkit.training.loop import NullReporter, TrainingTask, fit
from seqkit.training.schedules import LearningRateSchedule


def test_constant_warmup_and_inverse_sqrt():
    constant = LearningRateSchedule(TrainConfig(learning_rate=0.1))
    assert [constant.at(s) for s in (1, 100, 10_000)] == [0.1, 0.1, 0.1]
    warm = LearningRateSchedule(TrainConfig(learning_rate=0.1, warmup_steps=10))
    assert [round(warm.at(s), 6) for s in (1, 5, 10, 1000)] == [0.01, 0.05, 0.1, 0.1]
    inverse = LearningRateSchedule(
        TrainConfig(learning_rate=0.1, warmup_steps=100, lr_schedule="inverse_sqrt")
    )
    assert math.isclose(inverse.at(50), 0.05)
    assert math.isclose(inverse.at(100), 0.1)
    assert math.isclose(inverse.at(400), 0.05)  # sqrt(100 / 400)


def test_plateau_decays_after_patience_and_round_trips():
    schedule = LearningRateSchedule(TrainConfig(learning_rate=1.0, lr_schedule="plateau", lr_patience=2))
    for score in (1.0, 2.0, 1.5, 1.9):  # two validations without beating 2.0
        schedule.after_validation(score)
    assert schedule.at(1) == 0.5
    copy = LearningRateSchedule(TrainConfig(learning_rate=1.0, lr_schedule="plateau", lr_patience=2))
    copy.load_state_dict(schedule.state_dict())
    copy.after_validation(1.0)
    copy.after_validation(1.0)
    assert copy.at(1) == 0.25


def test_gradient_monitor_clips_like_torch_and_warns():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1))
    reference = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1))
    reference.load_state_dict(model.state_dict())
    for net in (model, reference):
        (net(torch.ones(3, 4)).sum() * 100).backward()
    monitor = GradientMonitor(model, clip_norm=1.0)
    norm, clipped = monitor.clip()
    expected = float(torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0))
    assert clipped and math.isclose(norm, expected, rel_tol=1e-5)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    record, warnings = monitor.summary()
    assert record["clipped_fraction"] == 1.0 and set(record["layer_grad_norms"]) == {"0", "1"}
    assert len(warnings) == 1 and warnings[0].startswith("exploding gradients: 100%")
    model.zero_grad()
    (model(torch.ones(3, 4)).sum() * 1e-9).backward()
    monitor.clip()
    assert monitor.summary()[1][0].startswith("vanishing gradients")


class FakeTask:
    """A linear model fitted to noise, with scripted validation scores."""

    def __init__(self, model, scores: list[dict], nan_from: int | None = None):
        self.model, self.scores, self.nan_from, self.steps = model, scores, nan_from, 0

    def step(self, batch):
        self.steps += 1
        loss = (self.model(torch.randn(8, 3)) ** 2).sum()
        if self.nan_from is not None and self.steps >= self.nan_from:
            loss = loss * float("nan")
        return loss, float(loss.detach()), 8, 0

    def validate(self):
        return self.scores.pop(0)

    def as_task(self, metric: str) -> TrainingTask:
        return TrainingTask(batches=lambda epoch: list(range(10)), step=self.step, validate=self.validate,
                            default_metric=metric)  # fmt: skip


def _run_dir(path):
    path.mkdir()
    return path


def _cfg(**train) -> config_lib.Config:
    return config_lib.from_dict(
        {"train": {"max_steps": 100, "valid_every": 5, "log_every": 5, **train}}, "test"
    )


def test_early_stopping_and_best_metric(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    scores = [{"dev_bleu": b, "dev_chrf": c, "dev_ppl": p, "bleu_signature": "sig"} for b, c, p in
              [(1, 9, 5.0), (3, 8, 4.0), (2, 7, 3.0), (2, 6, 2.0), (1, 5, 1.0)] * 4]  # fmt: skip
    summary = fit(_cfg(patience=2), _run_dir(tmp_path / "a"), model, FakeTask(model, list(scores)).as_task("bleu"), {},
                  NullReporter())  # fmt: skip
    assert summary["reason"] == "early_stopping" and summary["steps"] == 20  # best at 10, no better at 15, 20
    assert summary["best_dev_bleu"] == 3 and summary["best_signature"] == "sig"
    by_ppl = fit(_cfg(best_metric="ppl", max_steps=25), _run_dir(tmp_path / "b"), model,
                 FakeTask(model, list(scores)).as_task("bleu"), {}, NullReporter())  # fmt: skip
    assert by_ppl["best_dev_ppl"] == 1.0 and "best_signature" not in by_ppl
    best_flags = [r["best"] for r in modeldir.read_log(tmp_path / "b") if r["kind"] == "valid"]
    assert best_flags == [True] * 5


def test_non_finite_steps_are_skipped_then_training_stops(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    scores = [{"dev_ppl": 2.0}] * 10
    with pytest.raises(TrainingError, match="non-finite for 5 steps in a row"):
        fit(
            _cfg(),
            _run_dir(tmp_path / "run"),
            model,
            FakeTask(model, scores, nan_from=8).as_task("ppl"),
            {},
            NullReporter(),
        )
    records = modeldir.read_log(tmp_path / "run")
    skipped = [r["step"] for r in records if r["kind"] == "warning" and r["message"].startswith("non-finite")]
    assert skipped == [8, 9, 10, 11, 12]
    assert all(torch.isfinite(p).all() for p in model.parameters())  # no NaN update was applied


def test_perplexity_of_a_diverged_model_is_infinite_not_an_error():
    from seqkit.scoring.metrics import perplexity

    assert perplexity(1e6, 10) == math.inf and math.isclose(perplexity(math.log(3) * 4, 4), 3)
