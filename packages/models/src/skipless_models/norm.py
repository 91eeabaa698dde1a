"""LayerNorm / RMSNorm over the feature axis, statistics in float32."""

from __future__ import annotations

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
        x = x_BxTxD.astype(jnp.float32)
        if self.kind == "layernorm":
            x = x - jnp.mean(x, axis=-1, keepdims=True)
        x = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + _EPS)
        x = x * self.gain
        if self.bias is not None:
            x = x + self.bias
        return x.astype(x_BxTxD.dtype)
