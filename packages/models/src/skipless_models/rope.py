"""Rotary position embedding on queries and keys (acts on Q, K only, so it is neutral when W_Q = 0)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

_BASE = 10_000.0


def apply_rope(x_BxTxHxK: Float[Array, "B T H K"]) -> Float[Array, "B T H K"]:
    """Rotate feature pairs `(x[..., i], x[..., i + K/2])` by angle `t · base^(−2i/K)`.

    **Arguments:** `x_BxTxHxK` queries or keys `[B, T, H, K]`, K even.

    **Returns:** `[B, T, H, K]`, same dtype.
    """
    _, t, _, k = x_BxTxHxK.shape
    half = k // 2
    freqs_K2 = _BASE ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles_TxK2 = jnp.arange(t, dtype=jnp.float32)[:, None] * freqs_K2[None, :]
    cos = jnp.cos(angles_TxK2)[None, :, None, :]
    sin = jnp.sin(angles_TxK2)[None, :, None, :]
    x1 = x_BxTxHxK[..., :half].astype(jnp.float32)
    x2 = x_BxTxHxK[..., half:].astype(jnp.float32)
    out = jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
    return out.astype(x_BxTxHxK.dtype)
