"""Learning-rate schedules: constant, reduce-on-plateau, warmup + inverse square root, and linear decay
to the end of the budget.

lr(step) = learning_rate x warmup x decay x plateau, where warmup rises linearly to 1 over
`warmup_steps` (any schedule), decay is sqrt(warmup_steps / step) after warmup for `inverse_sqrt` and
the share of the budget still to come for `linear`, and plateau is multiplied by `lr_decay_factor`
whenever `lr_patience` validations in a row bring no improvement (`plateau`).

`linear` is the schedule for a fixed budget (Li, Yumer and Ramanan 2020, "Budgeted training"): the rate
falls in a straight line from learning_rate at the start to 0 when the first limit of max_steps, max_epochs
and max_minutes is reached; a warmup multiplies it, so after warmup the rate is already on that line
(below learning_rate by the warmup's share of the budget), not at learning_rate: under max_minutes the
share of the budget that warmup takes is not known in advance. Under max_minutes the share of the budget is the share of its time, so the
rate depends on how fast the machine runs, and a run that is resumed goes on along the same line.

The schedule does not track scores: the loop's `Progress` owns the best score and the count of
validations without improvement, and passes that count in.
"""

from __future__ import annotations

import math

from seqkit.config import TrainConfig


class LearningRateSchedule:
    def __init__(self, cfg: TrainConfig, plateau_scale: float = 1.0):
        self.cfg = cfg
        self.plateau_scale = plateau_scale  # the product of every plateau decay so far

    @property
    def needs_budget(self) -> bool:
        """Whether `at` needs the share of the budget done (the loop computes it only then)."""
        return self.cfg.lr_schedule == "linear"

    def at(self, step: int, budget_done: float = 0.0) -> float:
        """The learning rate for update number `step` (1-based); `budget_done`: the share of the run's
        budget (its first limit to be reached) done before this update, in [0, 1], for `linear`."""
        warmup = self.cfg.warmup_steps
        factor = min(1.0, step / warmup) if warmup else 1.0
        if self.cfg.lr_schedule == "inverse_sqrt":
            factor *= math.sqrt(max(warmup, 1) / max(step, warmup, 1))
        elif self.cfg.lr_schedule == "linear":
            factor *= max(0.0, 1.0 - budget_done)
        # (the plateau decays of a run resumed with another schedule are kept for a return to plateau)
        plateau = self.plateau_scale if self.cfg.lr_schedule == "plateau" else 1.0
        return self.cfg.learning_rate * factor * plateau

    def after_validation(self, bad_validations: int) -> None:
        """`bad_validations`: validations in a row without improvement, this one included (0: it improved).
        The rate decays after every `lr_patience` of them."""
        patience = self.cfg.lr_patience
        if self.cfg.lr_schedule == "plateau" and bad_validations and bad_validations % patience == 0:
            self.plateau_scale *= self.cfg.lr_decay_factor
