"""XLA reference for causal attention with additive bias and per-row rescaling.

This is the oracle every Pallas kernel is tested against, and the implementation used on CPU.

    out[b, i, h] = row_scale[h, i] * sum_j softmax_j(q_i . k_j * sm_scale + bias[h, i, j] + mask[i, j]) v_j

Layout is [batch, time, heads, head_dim] (as `jax.nn.dot_product_attention`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

# The one masked-logit value of every attention path (reference, XLA, Pallas tiles, SPA bias, the models' explicit
# matrices). Large and finite: adding it to a logit must still give a finite number after softmax's max-subtraction.
MASK_VALUE = -1e30


def causal_mask(t: int, s: int) -> Array:
    """`[t, s]` bool, True where key j may be seen by query i (j <= i, queries aligned to the first keys)."""
    return jnp.arange(t)[:, None] >= jnp.arange(s)[None, :]


def attention_reference(
    q: Float[Array, "B T H D"],
    k: Float[Array, "B S H D"],
    v: Float[Array, "B S H D"],
    *,
    bias: Float[Array, "..."] | None = None,
    row_scale: Float[Array, "..."] | None = None,
    sm_scale: float | None = None,
    causal: bool = True,
) -> Float[Array, "B T H D"]:
    """Materialised-softmax attention.

    **Arguments:**
    - `q`, `k`, `v`: `[B, T, H, D]`.
    - `bias`: additive logit bias broadcastable to `[B, H, T, T]` (`[T, T]`, `[H, T, T]` or `[B, H, T, T]`).
      Entries above the diagonal are ignored when `causal`.
    - `row_scale`: per-query rescaling broadcastable to `[B, H, T]` (`[T]` or `[H, T]`).
    - `sm_scale`: logit scale, default `1/sqrt(D)`.

    **Returns:** `[B, T, H, D]` in the dtype of `q`; softmax statistics are computed in float32.
    """
    d = q.shape[-1]
    if sm_scale is None:
        sm_scale = 1.0 / (d**0.5)
    logits = jnp.einsum("bthd,bshd->bhts", q, k, preferred_element_type=jnp.float32) * sm_scale
    if bias is not None:
        logits = logits + bias.astype(jnp.float32)
    t, s = logits.shape[-2:]
    if causal:
        logits = jnp.where(causal_mask(t, s), logits, MASK_VALUE)
    logits = logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    weights = jnp.exp(logits)
    weights = weights / jnp.sum(weights, axis=-1, keepdims=True)
    if row_scale is not None:
        rs = jnp.asarray(row_scale, jnp.float32)
        weights = weights * rs[..., None]
    out = jnp.einsum("bhts,bshd->bthd", weights.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return out.astype(q.dtype)
