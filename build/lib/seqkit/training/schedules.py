"""Learning-rate schedules: constant, reduce-on-plateau, and warmup + inverse square root.

lr(step) = learning_rate x warmup x decay x plateau, where warmup rises linearly to 1 over
`warmup_steps` (any schedule), decay is sqrt(warmup_steps / step) after warmup for `inverse_sqrt`, and
plateau is multiplied by `lr_decay_factor` whenever `lr_patience` validations in a row bring no
improvement (`plateau`).

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

    def at(self, step: int) -> float:
        """The learning rate for update number `step` (1-based)."""
        warmup = self.cfg.warmup_steps
        factor = min(1.0, step / warmup) if warmup else 1.0
        if self.cfg.lr_schedule == "inverse_sqrt":
            factor *= math.sqrt(max(warmup, 1) / max(step, warmup, 1))
        return self.cfg.learning_rate * factor * self.plateau_scale

    def after_validation(self, bad_validations: int) -> None:
        """`bad_validations`: validations in a row without improvement, this one included (0: it improved).
        The rate decays after every `lr_patience` of them."""
        patience = self.cfg.lr_patience
        if self.cfg.lr_schedule == "plateau" and bad_validations and bad_validations % patience == 0:
            self.plateau_scale *= self.cfg.lr_decay_factor
