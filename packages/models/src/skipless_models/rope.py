"""Rotary position embedding on queries and keys (acts on Q, K only, so it is neutral when W_Q = 0)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float, Int

_BASE = 10_000.0


def apply_rope(x_BxTxHxK: Float[Array, "B T H K"], positions_BxT: Int[Array, "B T"] | None = None) -> Float[Array, "B T H K"]:
    """Rotate feature pairs `(x[..., i], x[..., i + K/2])` by angle `t · base^(−2i/K)`.

    **Arguments:** `x_BxTxHxK` queries or keys `[B, T, H, K]`, K even; `positions_BxT`: each token's position t
    (default 0 … T−1 in every row; decoding with a cache passes the new tokens' positions).

    **Returns:** `[B, T, H, K]`, same dtype.
    """
    _, t, _, k = x_BxTxHxK.shape
    half = k // 2
    freqs_K2 = _BASE ** (-jnp.arange(half, dtype=jnp.float32) / half)
    positions = jnp.arange(t)[None, :] if positions_BxT is None else positions_BxT
    angles_BxTxK2 = positions.astype(jnp.float32)[..., None] * freqs_K2
    cos = jnp.cos(angles_BxTxK2)[:, :, None, :]
    sin = jnp.sin(angles_BxTxK2)[:, :, None, :]
    x1 = x_BxTxHxK[..., :half].astype(jnp.float32)
    x2 = x_BxTxHxK[..., half:].astype(jnp.float32)
    out = jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
    return out.astype(x_BxTxHxK.dtype)
