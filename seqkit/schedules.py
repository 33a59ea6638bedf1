"""Learning-rate schedules: constant, reduce-on-plateau, and warmup + inverse square root.

lr(step) = learning_rate x warmup x decay x plateau, where warmup rises linearly to 1 over
`warmup_steps` (any schedule), decay is sqrt(warmup_steps / step) after warmup for `inverse_sqrt`, and
plateau is multiplied by `lr_decay_factor` whenever `lr_patience` validations in a row bring no
improvement (`plateau`).
"""

from __future__ import annotations

import math

from seqkit.config import TrainConfig


class LearningRateSchedule:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.plateau_scale = 1.0
        self.best = -math.inf  # higher is better (the loop passes sign-adjusted scores)
        self.bad_validations = 0

    def at(self, step: int) -> float:
        """The learning rate for update number `step` (1-based)."""
        warmup = self.cfg.warmup_steps
        factor = min(1.0, step / warmup) if warmup else 1.0
        if self.cfg.lr_schedule == "inverse_sqrt":
            factor *= math.sqrt(max(warmup, 1) / max(step, warmup, 1))
        return self.cfg.learning_rate * factor * self.plateau_scale

    def after_validation(self, score: float) -> None:
        """`score`: the validation score, higher is better."""
        if score > self.best:
            self.best, self.bad_validations = score, 0
            return
        self.bad_validations += 1
        if self.cfg.lr_schedule == "plateau" and self.bad_validations >= self.cfg.lr_patience:
            self.plateau_scale *= self.cfg.lr_decay_factor
            self.bad_validations = 0

    def state_dict(self) -> dict:
        return {
            "plateau_scale": self.plateau_scale,
            "best": self.best,
            "bad_validations": self.bad_validations,
        }

    def load_state_dict(self, state: dict) -> None:
        self.plateau_scale, self.best, self.bad_validations = (
            state["plateau_scale"],
            state["best"],
            state["bad_validations"],
        )
