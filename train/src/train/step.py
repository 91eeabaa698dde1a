"""One jitted, donated train step and an eval step, with explicit in/out shardings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import skipless_models

from .state import ModelSetup, TrainState


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """**Returns:** the sharding of a token batch `[B, T+1]`: rows over "data", replicated over "model"."""
    return NamedSharding(mesh, P("data", None))


def per_layer_grad_norms(grads: Any) -> jax.Array:
    """L2 norm of the gradient of each block (leaves under `blocks`, which carry a leading depth axis).

    **Arguments:** `grads` (gradient pytree of the parameters).

    **Returns:** float32 `[L]`.
    """
    squares = [
        jnp.sum(jnp.square(g.astype(jnp.float32)).reshape(g.shape[0], -1), axis=1) for g in jax.tree.leaves(grads.blocks)
    ]
    return jnp.sqrt(sum(squares))


def make_train_step(
    setup: ModelSetup,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    shardings: TrainState,
    mesh: Mesh,
) -> Callable[[TrainState, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """Builds `step(state, tokens_BxTp1) -> (new_state, metrics)`, jitted with the state donated.

    **Arguments:**

    - `setup`: static half of the model, optimiser labels.
    - `optimizer`, `schedule`: from `train.optim` (the schedule only for the logged learning rate).
    - `shardings`: `TrainState` of `NamedSharding`s (input and output state shardings).
    - `mesh`: the mesh (batch rows over "data").

    **Returns:** the jitted step. Metrics (replicated scalars, except `layer_grad_norms` `[L]`):
    `loss`, `accuracy`, `grad_norm` (before clipping), `lr`, `layer_grad_norms`.
    """

    def loss_of(params, tokens):
        model = eqx.combine(params, setup.static)
        return skipless_models.loss_fn(model, tokens)

    def step(state: TrainState, tokens_BxTp1: jax.Array):
        (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params, tokens_BxTp1)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            "loss": loss,
            "accuracy": aux["accuracy"],
            "grad_norm": optax.tree.norm(grads).astype(jnp.float32),
            "lr": jnp.asarray(schedule(state.step), jnp.float32),
            "layer_grad_norms": per_layer_grad_norms(grads),
        }
        return TrainState(params, opt_state, state.step + 1), metrics

    replicated = NamedSharding(mesh, P())
    return jax.jit(
        step,
        in_shardings=(shardings, batch_sharding(mesh)),
        out_shardings=(shardings, replicated),
        donate_argnums=0,
    )


def make_eval_step(setup: ModelSetup, shardings: TrainState, mesh: Mesh) -> Callable:
    """Builds `eval_step(params, tokens_BxTp1, mask_BxT) -> (summed_loss, token_count)` (jitted).

    Summing (not averaging) lets the caller weight batches of different fill exactly.
    """

    def eval_step(params, tokens_BxTp1, mask_BxT):
        model = eqx.combine(params, setup.static)
        loss, aux = skipless_models.loss_fn(model, tokens_BxTp1, mask_BxT)
        return loss * aux["n_tokens"], aux["n_tokens"]

    replicated = NamedSharding(mesh, P())
    return jax.jit(
        eval_step,
        in_shardings=(shardings.params, batch_sharding(mesh), batch_sharding(mesh)),
        out_shardings=(replicated, replicated),
    )
