"""LayerNorm / RMSNorm over the feature axis, statistics in float32, with a hand-written backward pass.

The backward is the textbook one, `dx = σ⁻¹ (ĝ − mean(ĝ) − x̂ · mean(ĝ x̂))` with `ĝ = gain ⊙ dy` (the mean
of ĝ only for LayerNorm), from the saved `x̂` and `σ⁻¹`; autodiff through the forward formula gave XLA
CPU several more passes over the activations (A/B at 16 Pre-LN layers on 2 cores: train step 17% faster).
"""

from __future__ import annotations

from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

_EPS = 1e-6


class Norm(eqx.Module):
    """Normalisation over the last axis with a learned gain (and a bias for LayerNorm).

    **Fields:** `gain` `[D]` (init 1), `bias` `[D]` (init 0; `None` for RMSNorm), `kind` (static).
    """

    gain: Float[Array, " D"]
    bias: Float[Array, " D"] | None
    kind: str = eqx.field(static=True)

    def __init__(self, width: int, kind: str):
        self.kind = kind
        self.gain = jnp.ones((width,), jnp.float32)
        self.bias = jnp.zeros((width,), jnp.float32) if kind == "layernorm" else None

    @jax.named_scope("norm")
    def __call__(self, x_BxTxD: Float[Array, "B T D"]) -> Float[Array, "B T D"]:
        """**Arguments:** `x_BxTxD` `[B, T, D]`. **Returns:** normalised `[B, T, D]`, same dtype."""
        return normalise(x_BxTxD, self.gain, self.bias, self.kind == "layernorm")


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def normalise(x: Array, gain: Array, bias: Array | None, centre: bool) -> Array:
    """`gain ⊙ (x − mean) / rms + bias` over the last axis (`centre=False`, `bias=None`: RMSNorm).

    **Returns:** the dtype of `x`; statistics in float32.
    """
    return _normalise_fwd(x, gain, bias, centre)[0]


def _normalise_fwd(x, gain, bias, centre):
    xf = x.astype(jnp.float32)
    if centre:
        xf = xf - jnp.mean(xf, axis=-1, keepdims=True)
    inv_std = jax.lax.rsqrt(jnp.mean(jnp.square(xf), axis=-1, keepdims=True) + _EPS)
    x_hat = xf * inv_std
    y = x_hat * gain
    if bias is not None:
        y = y + bias
    return y.astype(x.dtype), (x_hat, inv_std, gain, bias)


def _normalise_bwd(centre, saved, dy):
    x_hat, inv_std, gain, bias = saved
    g = dy.astype(jnp.float32)
    rows = tuple(range(g.ndim - 1))
    d_gain = jnp.sum(g * x_hat, axis=rows).astype(gain.dtype)
    d_bias = None if bias is None else jnp.sum(g, axis=rows).astype(bias.dtype)
    g_hat = g * gain
    dx = g_hat - x_hat * jnp.mean(g_hat * x_hat, axis=-1, keepdims=True)
    if centre:
        dx = dx - jnp.mean(g_hat, axis=-1, keepdims=True)
    return (dx * inv_std).astype(dy.dtype), d_gain, d_bias


normalise.defvjp(_normalise_fwd, _normalise_bwd)
