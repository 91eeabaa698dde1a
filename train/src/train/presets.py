"""Training defaults per model preset and per method (learning rate, gain multiplier).

Learning rates: Pre-LN 1e-3 and Value-SkipInit 3e-4 at 18 layers / 1e-4 at 72 are the follow-up
paper's values (docs/paper.md); the rest are [our choice]. At a shared small learning rate the
Value-SkipInit β gains barely move (|β| < 0.005 after 450 steps), so attention never switches
on: the "gain" group gets its own multiplier [our choice: 30].
"""

from __future__ import annotations

import math
from typing import Any

from skipless_models import ModelConfig

# Run length and batch per preset [our choice]; cpu-tiny finishes in a few minutes on 2 CPU cores.
_RUN_SHAPE = {
    "cpu-tiny": dict(batch_size=16, steps=200, warmup=20, eval_every=100, checkpoint_every=100),
    "wt103-36l": dict(batch_size=64, steps=50_000, warmup=1_000, eval_every=1_000, checkpoint_every=1_000),
    "c4-72l": dict(batch_size=64, steps=100_000, warmup=2_000, eval_every=2_000, checkpoint_every=2_000),
}
GAIN_LR_MULTIPLIER = 30.0


def default_learning_rate(model: ModelConfig) -> float:
    """Peak learning rate for a model's method and depth.

    **Arguments:** `model`: the model configuration.

    **Returns:** 1e-3 for blocks with skips and for SPA attention up to 36 layers (halved at 72 [our
    choice]); Value-SkipInit 3e-4 at ≤ 18 layers falling log-linearly to 1e-4 at 72; naive vanilla
    standard attention 3e-4 [our choice].
    """
    if model.block in ("preln", "postln"):
        return 1e-3
    if model.attention == "value_skipinit":
        fraction = min(max(math.log(model.depth / 18) / math.log(4), 0.0), 1.0)
        return float(3e-4 * (1e-4 / 3e-4) ** fraction)
    if model.attention in ("espa", "uspa"):
        return 1e-3 if model.depth <= 36 else 5e-4
    return 3e-4


def training_defaults(preset: str, model: ModelConfig) -> dict[str, Any]:
    """**Returns:** TrainConfig field defaults for a preset (unknown presets use cpu-tiny's run shape)."""
    defaults = dict(_RUN_SHAPE.get(preset, _RUN_SHAPE["cpu-tiny"]))
    defaults["lr"] = default_learning_rate(model)
    if model.attention == "value_skipinit":
        defaults["lr_multipliers"] = {"gain": GAIN_LR_MULTIPLIER}
    return defaults
