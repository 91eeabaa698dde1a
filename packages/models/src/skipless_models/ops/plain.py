"""The plain operations: the maths written once in JAX, differentiable in forward and reverse mode.

They are the default off CPU and the oracle every faster operation (`skipless_models.ops.cpu`) is tested against.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int
from pallas_kernels import SpaSpec, SpaTables, attention_reference
from pallas_kernels.spa import as_prepared, prepared_log_bias

from skipless_models.cross_entropy import cross_entropy
from skipless_models.dense import head_logits

NORM_EPS = 1e-6


def matmul(x_NxD: Float[Array, "N D"], w_DxF: Float[Array, "D F"]) -> Float[Array, "N F"]:
    """`x @ W` (same dtype rules as `jnp.dot`)."""
    return jnp.dot(x_NxD, w_DxF)


def split_qkv(qkv_BxTxHx3xK: Float[Array, "B T H 3 K"]) -> tuple[Array, Array, Array]:
    """`(q, k, v)`: the three `[B, T, H, K]` slices of the fused projection `[B, T, H, 3, K]` (index 0, 1, 2)."""
    return qkv_BxTxHx3xK[:, :, :, 0], qkv_BxTxHx3xK[:, :, :, 1], qkv_BxTxHx3xK[:, :, :, 2]


def normalise(x: Array, gain: Array, bias: Array | None, centre: bool) -> Array:
    """`gain ⊙ (x − mean) / rms + bias` over the last axis (`centre=False`, `bias=None`: RMSNorm).

    **Returns:** the dtype of `x`; statistics in float32 (ε = `NORM_EPS` inside the square root).
    """
    xf = x.astype(jnp.float32)
    if centre:
        xf = xf - jnp.mean(xf, axis=-1, keepdims=True)
    y = xf * jax.lax.rsqrt(jnp.mean(jnp.square(xf), axis=-1, keepdims=True) + NORM_EPS) * gain
    if bias is not None:
        y = y + bias
    return y.astype(x.dtype)


def attention(
    q: Float[Array, "B T H K"], k: Float[Array, "B T H K"], v: Float[Array, "B T H K"], *,
    spa: SpaSpec | SpaTables | None, causal: bool,
) -> Float[Array, "B T H K"]:
    """`diag(d) softmax(q kᵀ/√K + B + mask) v` by `pallas_kernels.attention_reference`; SPA's bias B and row scale d
    are generated from the layer's `SpaSpec` / `SpaTables` here (a `[T, T]` bias per call)."""
    if spa is None:
        return attention_reference(q, k, v, causal=causal)
    prepared = as_prepared(spa, q.shape[1], causal)
    return attention_reference(q, k, v, bias=prepared_log_bias(prepared), row_scale=prepared.scale, causal=causal)


def head_loss(
    x_BxTxD: Float[Array, "B T D"], head_DxV: Float[Array, "D V"], targets_BxT: Int[Array, "B T"],
    mask_BxT: Array | None = None,
) -> tuple[Float[Array, ""], dict[str, Array]]:
    """`cross_entropy(x @ head, targets, mask)` over the full `[B, T, V]` logits."""
    return cross_entropy(head_logits(x_BxTxD, head_DxV), targets_BxT, mask_BxT)
