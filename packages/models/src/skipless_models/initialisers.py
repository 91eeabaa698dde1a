"""Weight initialisers: Gaussian, random orthogonal and scaled-uniform-orthogonal (SUO)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def normal(key: PRNGKeyArray, shape: tuple[int, ...], std: float) -> Float[Array, "..."]:
    """`N(0, std²)` float32 array of `shape`."""
    return std * jax.random.normal(key, shape, jnp.float32)


def orthogonal(key: PRNGKeyArray, n_in: int, n_out: int) -> Float[Array, "n_in n_out"]:
    """Haar-random matrix with orthonormal columns (n_in ≥ n_out) or orthonormal rows (n_in < n_out).

    **Arguments:**
    - `key`: PRNG key.
    - `n_in`, `n_out`: the matrix acts as `x_N×n_in @ W`.

    **Returns:** `W` `[n_in, n_out]` with `WᵀW = I` if `n_in ≥ n_out`, else `WWᵀ = I`.
    """
    big, small = max(n_in, n_out), min(n_in, n_out)
    g = jax.random.normal(key, (big, small), jnp.float32)
    q, r = jnp.linalg.qr(g)
    q = q * jnp.sign(jnp.diagonal(r))[None, :]  # sign fix makes the distribution Haar
    return q if n_in >= n_out else q.T


def scaled_orthogonal(key: PRNGKeyArray, n_in: int, n_out: int) -> Float[Array, "n_in n_out"]:
    """SUO init (DKS/TAT): `orthogonal × max(√(n_out/n_in), 1)`, which preserves q = |x|²/n_in exactly.

    **Returns:** `[n_in, n_out]`.
    """
    scale = max((n_out / n_in) ** 0.5, 1.0)
    return scale * orthogonal(key, n_in, n_out)
