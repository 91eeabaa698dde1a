"""Masked next-token cross-entropy on float32 logits, with top-1 accuracy and the logits' RMS."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int


def loss_aux(loss, accuracy, n_tokens, sumsq, n_logits) -> dict[str, Array]:
    """The metrics every loss returns beside the mean loss."""
    return {"loss": loss, "accuracy": accuracy, "n_tokens": n_tokens, "logit_rms": jnp.sqrt(sumsq / n_logits)}


def softmax_terms(logits, targets):
    """Per row: `(nll, correct, e, z)` with `e = exp(logits − max)`, `z = Σ e` (float32 logits).

    The max is a constant to autodiff (as in `jax.nn.logsumexp`), so differentiating `nll` is exact.
    `correct` is 1 where the target's logit is the row's maximum: top-1 accuracy, with a tie for the top
    counted as a hit (float32 logits of a trained or randomly initialised head do not tie in practice).
    It reuses the max and the target logit the loss needs, where an argmax costs one more pass over
    `[rows, V]` (XLA CPU's own argmax, a two-operand reduce, took 38 ms on 2,048 × 4,096 logits here; a
    compare-and-min fused with the max, the previous form, 1-2 ms of the cpu-tiny train step).
    """
    top = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    e = jnp.exp(logits - top)
    z = jnp.sum(e, axis=-1, keepdims=True)
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    nll = (top[..., 0] + jnp.log(z[..., 0])) - target_logit
    correct = (target_logit >= top[..., 0]).astype(jnp.float32)
    return nll, correct, e, z


def cross_entropy(
    logits_BxTxV: Float[Array, "B T V"], targets_BxT: Int[Array, "B T"], mask_BxT: Array | None = None
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """Masked mean cross-entropy.

    **Arguments:** `logits_BxTxV` `[B, T, V]`, `targets_BxT` int `[B, T]`, `mask_BxT` `[B, T]`
    (1 = counted; default all ones).

    **Returns:** `(mean_loss, aux)` with aux keys `loss`, `accuracy`, `n_tokens`, `logit_rms` (scalars).
    """
    logits = logits_BxTxV.astype(jnp.float32)
    nll_BxT, correct, _, _ = softmax_terms(logits, targets_BxT)
    mask = jnp.ones_like(nll_BxT) if mask_BxT is None else mask_BxT.astype(jnp.float32)
    n_tokens = jnp.sum(mask)
    denom = jnp.maximum(n_tokens, 1.0)
    loss = jnp.sum(nll_BxT * mask) / denom
    sumsq = jnp.sum(jnp.square(jax.lax.stop_gradient(logits)))
    return loss, loss_aux(loss, jnp.sum(correct * mask) / denom, n_tokens, sumsq, logits.size)
