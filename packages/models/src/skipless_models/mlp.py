"""The MLP sub-block `φ(x W_in + b_in) W_out + b_out`, written as two 2-D matmuls."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from skipless_models.activations import activation
from skipless_models.dense import dense
from skipless_models.initialisers import normal, scaled_orthogonal
from skipless_models.ops import PLAIN_OPS, Ops


class MLP(eqx.Module):
    """Two-layer MLP.

    **Fields:** `w_in` `[D, F]`, `b_in` `[F]`, `w_out` `[F, D]`, `b_out` `[D]`; static `activation`
    name and `alpha` (TAT leaky-ReLU slope, else `None`).
    """

    w_in: Float[Array, "D F"]
    b_in: Float[Array, " F"]
    w_out: Float[Array, "F D"]
    b_out: Float[Array, " D"]
    activation: str = eqx.field(static=True)
    alpha: float | None = eqx.field(static=True)

    def __init__(
        self, width: int, mlp_width: int, *, activation: str, alpha: float | None, init: str,
        depth: int, key: PRNGKeyArray,
    ):
        """**Arguments:** `width` D, `mlp_width` F, `activation`, `alpha`, `init` scheme
        ("gpt2" | "fan_in" | "sigprop"), `depth` (for GPT-2's residual scaling), `key`."""
        k_in, k_out = jax.random.split(key)
        if init == "gpt2":
            self.w_in = normal(k_in, (width, mlp_width), 0.02)
            self.w_out = normal(k_out, (mlp_width, width), 0.02 / (2 * depth) ** 0.5)
        elif init == "fan_in":
            self.w_in = normal(k_in, (width, mlp_width), width**-0.5)
            self.w_out = normal(k_out, (mlp_width, width), mlp_width**-0.5)
        else:
            self.w_in = scaled_orthogonal(k_in, width, mlp_width)
            self.w_out = scaled_orthogonal(k_out, mlp_width, width)
        self.b_in = jnp.zeros((mlp_width,), jnp.float32)
        self.b_out = jnp.zeros((width,), jnp.float32)
        self.activation = activation
        self.alpha = alpha

    @jax.named_scope("mlp")
    def __call__(self, x_BxTxD: Float[Array, "B T D"], *, ops: Ops = PLAIN_OPS) -> Float[Array, "B T D"]:
        """**Arguments:** `x_BxTxD` `[B, T, D]`; `ops` (the model's operations). **Returns:** `[B, T, D]`, same dtype."""
        h_BxTxF = activation(self.activation, dense(x_BxTxD, self.w_in, self.b_in, ops.matmul), self.alpha)
        return dense(h_BxTxF, self.w_out, self.b_out, ops.matmul)
