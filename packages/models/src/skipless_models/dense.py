"""Dense layers written over whole arrays as one 2-D matmul `[B·T, D] @ [D, F]` (fastest on XLA CPU)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from jaxtyping import Array, Float


def dense(
    x_BxTxD: Float[Array, "B T D"], w_DxF: Float[Array, "D F"], b_F: Float[Array, " F"] | None = None,
    matmul: Callable[[Array, Array], Array] = jnp.dot,
) -> Float[Array, "B T F"]:
    """`x @ W + b` computed as a single 2-D matmul in the dtype of `x`.

    **Arguments:**
    - `x_BxTxD`: activations `[B, T, D]` (their dtype is the compute dtype).
    - `w_DxF`: weight `[D, F]` (cast to the compute dtype at use; parameters stay float32).
    - `b_F`: optional bias `[F]`.
    - `matmul`: the 2-D product (the model's `Ops.matmul`; `jnp.dot` by default).

    **Returns:** `[B, T, F]` in the dtype of `x`.
    """
    b, t, d = x_BxTxD.shape
    y_NxF = matmul(x_BxTxD.reshape(b * t, d), w_DxF.astype(x_BxTxD.dtype))
    if b_F is not None:
        y_NxF = y_NxF + b_F.astype(y_NxF.dtype)
    return y_NxF.reshape(b, t, -1)


def head_logits(x_BxTxD: Float[Array, "B T D"], head_DxV: Float[Array, "D V"]) -> Float[Array, "B T V"]:
    """The vocabulary head `x @ head` as one 2-D matmul in the dtype of `x`, accumulated into float32 logits."""
    b, t, d = x_BxTxD.shape
    logits = jnp.dot(x_BxTxD.reshape(b * t, d), head_DxV.astype(x_BxTxD.dtype), preferred_element_type=jnp.float32)
    return logits.reshape(b, t, -1)
