"""Gradient diagnostics: the norm before clipping, which steps were clipped, per-layer norms, and warnings
that catch exploding or vanishing gradients (the classic trouble of recurrent networks) early."""

from __future__ import annotations

import math

import torch

EXPLODING_FRACTION = 0.5  # warn when more than this share of an interval's steps were clipped
# ... and their mean norm was at least this many times the clip norm: a clip set just below the usual
# norm clips most steps of a healthy run (norms of 1.0-1.3 at 1.0 in the genre classifier with class
# weights), which is no explosion
EXPLODING_RATIO = 2.0
VANISHING_NORM = 1e-4  # warn when the mean gradient norm of an interval is below this


def layer_of(parameter_name: str) -> str:
    """`decoder.rnn.weight_hh_l0` -> `decoder.rnn`; `embedding.weight` -> `embedding`."""
    parts = parameter_name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


class GradientMonitor:
    """Measures and clips gradients step by step; summarises them per validation interval."""

    def __init__(self, model: torch.nn.Module, clip_norm: float):
        # a model may keep parameters out (`unclipped`: name prefixes): a part that learns on its own loss
        # and is no recurrent network (a classifier's bag of tokens), whose gradient is not the network's
        # to clip, to scale the network's with, or to warn about
        apart = tuple(getattr(model, "unclipped", ()))
        self.parameters = [
            (layer_of(name), p)
            for name, p in model.named_parameters()
            if p.requires_grad and not name.startswith(apart)
        ]
        self.clip_norm = clip_norm
        self.reset()

    def reset(self) -> None:
        self.steps, self.clipped, self.norm_sum = 0, 0, 0.0
        self.layer_squares: dict[str, float] = {}

    def state_dict(self) -> dict:
        """The interval's statistics so far (for a checkpoint)."""
        return {
            "steps": self.steps,
            "clipped": self.clipped,
            "norm_sum": self.norm_sum,
            "layer_squares": dict(self.layer_squares),
        }

    def load_state_dict(self, state: dict) -> None:
        """Statistics of `state_dict` taken up ({}: a checkpoint that kept none starts the interval afresh)."""
        self.reset()
        if state:
            self.steps, self.clipped, self.norm_sum = state["steps"], state["clipped"], state["norm_sum"]
            self.layer_squares = dict(state["layer_squares"])

    def clip(self) -> tuple[float, bool]:
        """Clip the gradients in place to `clip_norm`; returns (norm before clipping, whether clipped)."""
        grads = [(layer, p.grad) for layer, p in self.parameters if p.grad is not None]
        squares = torch.stack([g.detach().float().pow(2).sum() for _, g in grads]).tolist()
        norm = math.sqrt(sum(squares))
        if not math.isfinite(norm):
            return norm, False
        clipped = bool(self.clip_norm) and norm > self.clip_norm
        if clipped:
            torch._foreach_mul_([g for _, g in grads], self.clip_norm / (norm + 1e-6))
        self.steps += 1
        self.clipped += clipped
        self.norm_sum += norm
        for (layer, _), square in zip(grads, squares, strict=True):
            self.layer_squares[layer] = self.layer_squares.get(layer, 0.0) + square
        return norm, clipped

    def summary(self) -> tuple[dict, list[str]]:
        """Per-layer RMS gradient norms, clipped fraction and mean norm of the interval, and any warnings."""
        if not self.steps:
            return {}, []
        mean = self.norm_sum / self.steps
        clipped_fraction = self.clipped / self.steps
        record = {
            "clipped_fraction": clipped_fraction,
            "mean_grad_norm": mean,
            "layer_grad_norms": {k: math.sqrt(v / self.steps) for k, v in self.layer_squares.items()},
        }
        warnings = []
        if clipped_fraction > EXPLODING_FRACTION and mean >= EXPLODING_RATIO * self.clip_norm:
            warnings.append(
                f"exploding gradients: {clipped_fraction:.0%} of the last {self.steps} steps were clipped "
                f"at {self.clip_norm} (mean norm {mean:.3g}); consider a lower train.learning_rate"
            )
        if mean < VANISHING_NORM:
            warnings.append(
                f"vanishing gradients: mean norm {mean:.2e} over the last {self.steps} steps; consider a gated "
                "cell (model.cell = gru or lstm), a higher train.learning_rate or fewer layers"
            )
        self.reset()
        return record, warnings
