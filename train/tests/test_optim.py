"""Optimiser rules against float64 numpy: schedule, per-group LR, decay on matrices only, clipping by the
global norm of every gradient (every array leaf of a model is a parameter)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skipless_models import ModelConfig
from train.config import TrainConfig
from train.optim import learning_rate_schedule, make_optimizer

LABELS = {"w": "matrix", "b": "vector", "e": "embedding", "h": "head", "g": "gain"}


def _config(**kw) -> TrainConfig:
    base = dict(model=ModelConfig(), steps=100, warmup=10, lr=0.1, min_lr_ratio=0.1)
    base.update(kw)
    return TrainConfig(**base)


def _tree(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    shapes = {"w": (3, 4), "b": (4,), "e": (5, 3), "h": (3, 5), "g": (2,)}
    return {k: rng.normal(size=s) for k, s in shapes.items()}


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant"])
def test_schedule_matches_closed_form(schedule):
    config = _config(schedule=schedule)
    lr_of = learning_rate_schedule(config)
    for step in [0, 1, 5, 10, 11, 40, 77, 100]:
        if step < 10:
            expected = 0.1 * step / 10
        else:
            progress = (step - 10) / 90
            if schedule == "cosine":
                expected = 0.1 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress)))
            elif schedule == "linear":
                expected = 0.1 + (0.01 - 0.1) * progress
            else:
                expected = 0.1
        assert float(lr_of(step)) == pytest.approx(expected, rel=1e-5, abs=1e-8), step


def _one_update(config: TrainConfig, params: dict, grads: dict) -> dict:
    optimizer = make_optimizer(config, LABELS)
    as32 = lambda t: jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), t)
    updates, _ = optimizer.update(as32(grads), optimizer.init(as32(params)), as32(params))
    return jax.tree.map(np.asarray, updates)


def test_sgd_per_group_rates_and_decay_on_matrices():
    mult = {"matrix": 1.0, "vector": 2.0, "embedding": 0.5, "head": 3.0, "gain": 30.0}
    config = _config(optimizer="sgd", momentum=0.0, grad_clip=0.0, warmup=0, schedule="constant",
                     weight_decay=0.25, lr_multipliers=mult)
    params, grads = _tree(0), _tree(1)
    updates = _one_update(config, params, grads)
    for name, group in LABELS.items():
        decay = 0.25 * params[name] if group == "matrix" else 0.0
        expected = -0.1 * mult[group] * (grads[name] + decay)
        np.testing.assert_allclose(updates[name], expected, rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("optimizer, decays", [("adamw", True), ("adam", False)])
def test_adam_family_decay_only_where_expected(optimizer, decays):
    config = _config(optimizer=optimizer, grad_clip=0.0, warmup=0, schedule="constant", weight_decay=0.5)
    params = _tree(2)
    updates = _one_update(config, params, jax.tree.map(np.zeros_like, params))  # zero grads: decay alone
    for name, group in LABELS.items():
        expected = -0.1 * 0.5 * params[name] if (decays and group == "matrix") else np.zeros_like(params[name])
        np.testing.assert_allclose(updates[name], expected, rtol=1e-5, atol=1e-7, err_msg=name)


def test_clipping_scales_by_the_global_norm_of_all_gradients():
    config = _config(optimizer="sgd", momentum=0.0, grad_clip=1.0, warmup=0, schedule="constant", weight_decay=0.0)
    params, grads = _tree(3), _tree(4)
    total = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
    assert total > 1.0  # clipping is active
    updates = _one_update(config, params, grads)
    for name in LABELS:
        np.testing.assert_allclose(updates[name], -0.1 * grads[name] / total, rtol=1e-5, atol=1e-7, err_msg=name)


def test_unknown_label_is_rejected():
    with pytest.raises(ValueError, match="unknown labels"):
        make_optimizer(_config(), {"w": "weights"})
