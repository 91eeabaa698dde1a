"""LayerNorm / RMSNorm over the feature axis, statistics in float32.

    y = gain ⊙ (x − mean(x)) / sqrt(mean((x − mean(x))²) + ε) + bias      (RMSNorm: no centring, no bias)

The formula is `Ops.normalise` (`skipless_models.ops.plain.normalise`; on CPU the same with a hand-written backward).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from skipless_models.ops import PLAIN_OPS, Ops


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
    def __call__(self, x_BxTxD: Float[Array, "B T D"], *, ops: Ops = PLAIN_OPS) -> Float[Array, "B T D"]:
        """**Arguments:** `x_BxTxD` `[B, T, D]`; `ops` (the model's operations). **Returns:** normalised `[B, T, D]`,
        same dtype."""
        return ops.normalise(x_BxTxD, self.gain, self.bias, self.kind == "layernorm")
