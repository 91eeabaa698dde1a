"""Training defaults per preset (its run shape, `skipless_models.PRESETS`) and per method (learning rate, gain
multiplier).

Learning rates: Pre-LN 1e-3 and Value-SkipInit 3e-4 at 18 layers / 1e-4 at 72 are the follow-up
paper's values (docs/paper.md); the rest are [our choice]. At a shared small learning rate the
Value-SkipInit β gains barely move (|β| < 0.005 after 450 steps), so attention never switches
on: the "gain" group gets its own multiplier [our choice: 30].
"""

from __future__ import annotations

import math
from typing import Any

from skipless_models import ModelConfig, get_preset

GAIN_LR_MULTIPLIER = 30.0


def default_learning_rate(model: ModelConfig) -> float:
    """Peak learning rate for a model's method and depth.

    **Arguments:** `model`: the model configuration.

    **Returns:** 1e-3 for blocks with skips and for SPA attention up to 36 layers (halved at 72 [our
    choice]); Value-SkipInit 3e-4 at ≤ 18 layers falling log-linearly to 1e-4 at 72; naive vanilla
    standard attention 3e-4 [our choice].
    """
    if model.has_skips:
        return 1e-3
    if model.attention == "value_skipinit":
        fraction = min(max(math.log(model.depth / 18) / math.log(4), 0.0), 1.0)
        return float(3e-4 * (1e-4 / 3e-4) ** fraction)
    if model.is_spa:
        return 1e-3 if model.depth <= 36 else 5e-4
    return 3e-4


def method_defaults(model: ModelConfig) -> dict[str, Any]:
    """**Returns:** the `TrainConfig` fields a model's method sets: `lr` and `lr_multipliers`."""
    multipliers = {"gain": GAIN_LR_MULTIPLIER} if model.attention == "value_skipinit" else {}
    return dict(lr=default_learning_rate(model), lr_multipliers=multipliers)


def training_defaults(preset: str, model: ModelConfig) -> dict[str, Any]:
    """**Returns:** `TrainConfig` field defaults for a preset's run shape and `model`'s method; an unknown preset
    raises a one-line `ValueError` naming the valid ones."""
    return {**get_preset(preset).run.to_dict(), **method_defaults(model)}
