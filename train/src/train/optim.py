"""Optax optimiser: warmup + decay schedule, global-norm clipping, per-group rules.

Per parameter group (labels from `skipless_models.param_groups`; every array leaf of a model is trainable):
- "matrix": the only group with (decoupled) weight decay;
- every trainable group: its own learning-rate multiplier (`TrainConfig.lr_multipliers`).
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from .config import PARAM_GROUPS, TrainConfig


def learning_rate_schedule(config: TrainConfig) -> optax.Schedule:
    """Linear warmup from 0 to `lr` over `warmup` steps, then cosine/linear/constant decay.

    **Arguments:**

    - `config`: uses `lr`, `warmup`, `steps`, `schedule`, `min_lr_ratio`.

    **Returns:**

    `schedule(step) -> learning rate`, reaching `lr * min_lr_ratio` at `steps` (for decays).
    """
    peak, warmup, final = config.lr, config.warmup, config.lr * config.min_lr_ratio
    decay_steps = max(config.steps - warmup, 1)
    if config.schedule == "cosine":
        decay = optax.cosine_decay_schedule(peak, decay_steps, alpha=config.min_lr_ratio)
    elif config.schedule == "linear":
        decay = optax.linear_schedule(peak, final, decay_steps)
    else:
        decay = optax.constant_schedule(peak)
    if warmup == 0:
        return decay
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), decay], [warmup])


def _group_transform(config: TrainConfig, group: str, schedule: optax.Schedule) -> optax.GradientTransformation:
    factor = config.multiplier(group)
    parts = []
    if config.optimizer in ("adamw", "adam"):
        parts.append(optax.scale_by_adam(b1=config.beta1, b2=config.beta2, eps=config.eps))
    elif config.momentum > 0:
        parts.append(optax.trace(decay=config.momentum))
    if group == "matrix" and config.optimizer != "adam" and config.weight_decay > 0:
        parts.append(optax.add_decayed_weights(config.weight_decay))
    parts.append(optax.scale_by_learning_rate(lambda step: factor * schedule(step)))
    return optax.chain(*parts)


def make_optimizer(config: TrainConfig, param_labels: Any) -> optax.GradientTransformation:
    """Builds the optimiser for parameters labelled by `param_labels`.

    **Arguments:**

    - `config`: optimiser fields of the run.
    - `param_labels`: pytree of group names (same structure as the parameters, `None` where the
        parameters have `None`), e.g. `skipless_models.param_groups(model)`.

    **Returns:**

    An `optax.GradientTransformation`: clip by global norm → per-group update.
    """
    labels = jax.tree.leaves(param_labels)
    unknown = sorted(set(labels) - set(PARAM_GROUPS))
    if unknown:
        raise ValueError(f"param_groups produced unknown labels {unknown}; expected labels in {list(PARAM_GROUPS)}.")
    schedule = learning_rate_schedule(config)
    chain = []
    if config.grad_clip > 0:
        chain.append(optax.clip_by_global_norm(config.grad_clip))
    groups = {group: _group_transform(config, group, schedule) for group in sorted(set(labels))}
    # The label tree is an Equinox module, hence callable: Optax would call it, so wrap it.
    chain.append(optax.multi_transform(groups, lambda _: param_labels))
    return optax.chain(*chain)
