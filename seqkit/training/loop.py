"""The training loop shared by every model type: updates, periodic validation, keeping the best weights,
stopping limits, the training log.

A model type supplies a `TrainingTask` (training/task.py: its batches, its update step, its validation)
and the loop knows nothing else about it, nor about terminals: it reports through a `Reporter` and writes
typed records (training/log.py) to the model directory's training log. What comes before and around a
run (checks, seeds, the locked run directory) is training/run.py.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from pathlib import Path

import torch

from seqkit import modeldir
from seqkit.config import Config, checks
from seqkit.errors import ModelDirError, TrainingError, TrainingInterrupted
from seqkit.runtime import devices
from seqkit.runtime.distributed import SINGLE, World
from seqkit.training import checkpoint
from seqkit.training import log as training_log
from seqkit.training.gradients import GradientMonitor
from seqkit.training.log import (
    EndRecord,
    GradRecord,
    Record,
    Restored,
    StartRecord,
    ValidRecord,
    WarningRecord,
    finite_or_none,
)
from seqkit.training.progress import Limits, StopSignals, TrainingState, Window
from seqkit.training.schedules import LearningRateSchedule
from seqkit.training.task import NullReporter, Reporter, StepReport, TrainingTask

HIGHER_IS_BETTER = {
    "bleu": True,
    "chrf": True,
    "ppl": False,
    "accuracy": True,
    "macro_f1": True,
    "rmse": False,
}  # train.best_metric -> its direction
MAX_NONFINITE_STEPS = 5  # consecutive skipped updates before training gives up


class _Trainer:
    """One training session of a run: set up (or restored from a checkpoint), then `run` until a limit."""

    def __init__(
        self,
        cfg: Config,
        output_dir: Path,
        model,
        task: TrainingTask,
        reporter: Reporter,
        resume: bool,
        world: World,
    ):
        self.cfg, self.output_dir, self.model, self.task, self.world = cfg, output_dir, model, task, world
        self.reporter = reporter if world.is_main else NullReporter()  # one process speaks for all
        self.metric = checks.best_metric(cfg)
        self.sign = 1 if HIGHER_IS_BETTER[self.metric] else -1  # scores compared sign-adjusted: higher wins
        model.train()
        # fused: the whole update in one pass over each tensor, where the default (foreach) makes several;
        # 2% of a float32 step of the bench workload (bench/README.md)
        fused = world.device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.learning_rate, fused=fused or None)
        self.gradients = GradientMonitor(model, cfg.train.clip_norm)
        self.precision = devices.Precision(cfg.train.precision, world.device, "train.precision =")
        state = TrainingState()
        if resume:
            latest = checkpoint.latest(output_dir)
            if latest is None:
                raise ModelDirError(f"{output_dir}: no checkpoint to resume; train without resume first")
            state = TrainingState.from_dict(checkpoint.restore(latest, model, self.optimizer))
            devices.set_rng_state(state.torch_rng)
            self.precision.load_state_dict(state.loss_scaler)
            task.load_state_dict(state.task)
            self.gradients.load_state_dict(state.gradients)
            if state.progress.best_step == state.progress.step and world.is_main:
                # killed between this checkpoint and the best weights written after it: write them now
                modeldir.save_weights(output_dir, model)
        self.progress = state.progress
        self.schedule = LearningRateSchedule(cfg.train, state.plateau_scale)
        self.batches = task.batches(self.progress.epoch)
        if not self.progress.steps_per_epoch:  # a new run (or a checkpoint of a seqkit that did not keep it)
            self.progress.steps_per_epoch = len(self.batches)
        self.limits = Limits(cfg.train, self.progress.steps_per_epoch)
        self.nonfinite_steps = 0
        self.session_start = time.monotonic()
        self.window = Window(**state.window)

    def elapsed(self) -> float:
        return self.progress.elapsed_s + time.monotonic() - self.session_start

    def budget_done(self) -> float:
        """The share of the run's budget done, for a schedule that decays along it (else 0)."""
        if not self.schedule.needs_budget:
            return 0.0
        # rank 0's clock for every process, so that their rates, and so their weights, stay equal
        return self.world.from_main(self.limits.fraction(self.progress.step, self.elapsed()))

    def save_checkpoint(self) -> None:
        progress = dataclasses.replace(self.progress, elapsed_s=self.elapsed())
        state = TrainingState(
            progress=progress,
            plateau_scale=self.schedule.plateau_scale,
            torch_rng=devices.rng_state(),
            loss_scaler=self.precision.state_dict(),
            task=self.task.state_dict(),
            window=dataclasses.asdict(self.window),
            gradients=self.gradients.state_dict(),
        )
        if self.world.is_main:
            checkpoint.save(
                self.output_dir, self.model, self.optimizer, state.to_dict(), self.cfg.train.keep_checkpoints
            )

    def log(self, record: Record) -> None:
        if self.world.is_main:
            training_log.append(self.output_dir, record)

    def warn(self, message: str) -> None:
        self.log(WarningRecord(self.progress.step, message))
        self.reporter.warning(message)

    def train_step(self, batch) -> None:
        """One update: learning rate, forward and backward, clipping, and the skip of a non-finite step."""
        progress = self.progress
        lr = self.schedule.at(progress.step + 1, self.budget_done())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        step_start = time.monotonic()
        scaler = self.precision.scaler  # fp16 only; otherwise each of its calls passes values through
        with self.precision.autocast():
            result = self.task.step(batch)
        scaler.scale(result.objective).backward()
        scaler.unscale_(self.optimizer)  # clipping and the logged norms see the true gradients
        loss, nll, tokens, correct = result.loss, result.nll, result.tokens, result.correct
        if self.world.size > 1:  # the figures of the whole batch, not of this process's share
            loss, nll, whole_tokens, whole_correct = self.world.sum([loss, nll, tokens, correct])
            tokens, correct = int(whole_tokens), int(whole_correct)
        grad_norm, clipped = self.gradients.clip()
        progress.step += 1
        progress.position += 1
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            if self.precision.scaling and math.isfinite(loss) and scaler.get_scale() >= 1.0:
                # fp16 gradients overflowed at this loss scale: a routine event, the scaler halves the scale
                scaler.update()
                self.log(GradRecord(progress.step, None, False, overflow=True, loss_scale=scaler.get_scale()))
                return
            scaler.update()
            self.nonfinite_steps += 1
            self.warn(f"non-finite loss or gradient at step {progress.step}: update skipped")
            if self.nonfinite_steps >= MAX_NONFINITE_STEPS:
                saved = checkpoint.latest(self.output_dir) if self.world.is_main else None
                then = (
                    f"then resume from the checkpoint of step {int(saved.name.split('-')[1]):,} with "
                    f"`seqkit train --resume {self.output_dir} --set train.learning_rate=...`"
                    if saved is not None
                    else "then start the run again (it has no checkpoint yet)"
                )
                raise TrainingError(
                    f"loss or gradients non-finite for {MAX_NONFINITE_STEPS} steps in a row (step {progress.step}); "
                    f"lower train.learning_rate or set train.clip_norm, {then}"
                )
            return
        self.nonfinite_steps = 0
        self.optimizer.step()
        scaler.update()  # fp16: the scale grows again after a run of finite steps
        self.optimizer.zero_grad(set_to_none=True)
        step_seconds = time.monotonic() - step_start
        self.window.add(loss, nll, tokens, correct, grad_norm, step_seconds)
        progress.target_tokens += tokens
        progress.step_s += step_seconds
        self.log(GradRecord(progress.step, grad_norm, clipped))
        self.reporter.step(
            StepReport(
                step=progress.step,
                epoch=progress.epoch + 1,
                loss=loss / max(1, tokens),
                target_tokens_per_s=self.window.tokens_per_s,
                elapsed_s=self.elapsed(),
                fraction=self.limits.fraction(progress.step, self.elapsed()),
            )
        )
        if progress.step % self.cfg.train.log_every == 0:
            record = self.window.record(progress.step, progress.epoch + 1, lr, self.elapsed())
            self.log(record)
            self.reporter.interval(record, self.limits.fraction(progress.step, record.elapsed_s))
            self.window = Window()

    def validate(self) -> None:
        progress = self.progress
        record = None
        if self.world.is_main:
            start = time.monotonic()
            dev = self.task.validate()
            record = ValidRecord(
                step=progress.step,
                # (1-based; the run's last validation may come after its last epoch was counted done)
                epoch=progress.epoch + (1 if progress.position else 0),
                scores=dev.scores,
                signatures=dev.signatures,
                sentences=dev.sentences,
                validation_s=time.monotonic() - start,
            )
            self.model.train()  # whatever validation did, training goes on in training mode
        record = self.world.from_main(record)  # every process keeps the same best score and schedule
        self._stop_if_diverged(record)
        # a tie of BLEU or chrF goes to the lower dev perplexity
        tiebreak = -record.scores["ppl"] if self.metric != "ppl" and "ppl" in record.scores else -math.inf
        improved = progress.record_validation(self.sign * record.score(self.metric), tiebreak)
        self.schedule.after_validation(progress.bad_validations)
        gradients, warnings = self.gradients.summary()
        if improved:
            progress.best_step = progress.step
            progress.best_signature = record.signatures.get(self.metric, "")
        self.save_checkpoint()  # first: best weights never exist without a checkpoint to resume from
        if improved and self.world.is_main:
            modeldir.save_weights(self.output_dir, self.model)
        record = dataclasses.replace(record, best=improved, gradients=gradients, elapsed_s=self.elapsed())
        self.log(record)
        self.reporter.validation(record)
        for message in warnings:
            self.warn(message)

    def _stop_if_diverged(self, record: ValidRecord) -> None:
        """A TrainingError for a validation with a non-finite dev score, logged first: it is never a new
        best, and a dev perplexity of inf beside a finite BLEU is a model that gives a reference piece no
        probability. Training on ended "successfully", with nothing saved or with a diverged model's
        weights saved as the best (no checkpoint of it is written)."""
        diverged = [(name, score) for name, score in record.scores.items() if not math.isfinite(score)]
        if not diverged:
            return
        self.log(dataclasses.replace(record, elapsed_s=self.elapsed()))
        self.reporter.validation(record)
        name, score = diverged[0]
        best = self.progress.best_step
        kept = f"the best weights (step {best:,}) are kept; " if best > 0 else ""
        raise TrainingError(
            f"dev {name} {score} at step {self.progress.step:,}: the training has diverged (train."
            f"learning_rate = {self.cfg.train.learning_rate:g}); {kept}start again with a lower "
            "train.learning_rate (--overwrite)"
        )

    def summary(self, kind: str, reason: str) -> EndRecord:
        return EndRecord(
            kind=kind,  # type: ignore[arg-type]
            reason=reason,
            steps=self.progress.step,
            epochs=self.progress.epoch,
            best_metric=self.metric,
            best_score=finite_or_none(self.sign * self.progress.best),
            best_signature=self.progress.best_signature,
            elapsed_s=self.elapsed(),
            target_tokens=self.progress.target_tokens,
            step_s=self.progress.step_s,
        )

    def reached(self) -> str | None:
        # rank 0 decides for every process: their clocks differ
        return self.world.from_main(self.limits.reached(self.progress, self.elapsed()))

    def start_record(self, resume: bool) -> StartRecord:
        progress = self.progress
        restored = Restored(
            step=progress.step,
            epoch=progress.epoch + 1,
            learning_rate=self.schedule.at(progress.step + 1, self.budget_done()),
            best_metric=self.metric,
            best_score=finite_or_none(self.sign * progress.best),
        )
        return StartRecord(
            kind="resume" if resume else "start",
            model_type=self.cfg.model.type,
            data=self.task.data,
            parameters=sum(p.numel() for p in self.model.parameters()),
            steps_per_epoch=len(self.batches),
            threads=torch.get_num_threads(),
            device=str(self.world.device),
            precision=self.cfg.train.precision,
            processes=self.world.size,
            restored=restored if resume else None,
        )

    def run(self, resume: bool) -> EndRecord:
        progress = self.progress
        start = self.start_record(resume)
        self.log(start)
        self.reporter.start(start)
        stop = self.reached()
        with StopSignals() as signals:
            while stop is None:
                while progress.position < len(self.batches) and stop is None:
                    self.train_step(self.batches[progress.position])
                    if progress.step % self.cfg.train.valid_every == 0:
                        self.validate()
                    received = self.world.from_main(signals.received)
                    if received is not None:
                        self.save_checkpoint()
                        summary = self.summary("interrupted", signal.Signals(received).name)
                        self.log(summary)
                        self.reporter.finish(summary)
                        raise TrainingInterrupted(received, progress.step)
                    stop = self.reached()
                if progress.position >= len(self.batches):
                    progress.epoch += 1
                    progress.position = 0
                    self.batches = self.task.batches(progress.epoch)
                    stop = stop or self.reached()
            if progress.validated_step != progress.step:
                self.validate()  # the last steps count too
        summary = self.summary("end", stop)
        self.log(summary)
        self.reporter.finish(summary)
        return summary


def fit(
    cfg: Config,
    output_dir: Path,
    model,
    task: TrainingTask,
    reporter: Reporter,
    resume: bool = False,
    world: World = SINGLE,
) -> EndRecord:
    """Train `model` until a limit is reached; returns the closing record. With `resume`, continue
    exactly from the model directory's latest checkpoint: weights, optimizer, schedule, RNG, counters and
    the position in the data order."""
    return _Trainer(cfg, output_dir, model, task, reporter, resume, world).run(resume)
