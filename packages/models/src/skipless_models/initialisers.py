"""Weight initialisers: Gaussian, random orthogonal and scaled-uniform-orthogonal (SUO)."""

from __future__ import annotations

import functools

import jax
import numpy as np
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray
from threadpoolctl import ThreadpoolController


def normal(key: PRNGKeyArray, shape: tuple[int, ...], std: float) -> Float[Array, "..."]:
    """`N(0, std²)` float32 array of `shape`."""
    return std * jax.random.normal(key, shape, jnp.float32)


@functools.cache
def _blas_threads() -> ThreadpoolController:
    """The process's BLAS thread pools (numpy's OpenBLAS), found once by threadpoolctl."""
    return ThreadpoolController()


def _orthonormal_columns_host(g: np.ndarray) -> np.ndarray:
    """Q of a float64 QR on the host, signs fixed by diag(R) (Haar-distributed); batched over leading axes."""
    # Small LAPACK calls with OpenBLAS threads on a busy 2-core machine took seconds (see the package README,
    # "Orthogonal init"), so the QR runs on one BLAS thread and the setting is restored after it.
    with _blas_threads().limit(limits=1, user_api="blas"):
        q, r = np.linalg.qr(np.asarray(g, np.float64))
    signs = np.sign(np.diagonal(r, axis1=-2, axis2=-1))
    signs[signs == 0] = 1.0
    return (q * signs[..., None, :]).astype(np.float32)


def orthogonal(key: PRNGKeyArray, n_in: int, n_out: int) -> Float[Array, "n_in n_out"]:
    """Haar-random matrix with orthonormal columns (n_in ≥ n_out) or orthonormal rows (n_in < n_out).

    The QR runs in float64 numpy through `jax.pure_callback`: XLA's CPU QR (a LAPACK custom call)
    intermittently deadlocked inside compiled init programs with jax 0.10, and float64 is exact enough
    for the orthogonality the signal-propagation tests check.

    **Arguments:**
    - `key`: PRNG key.
    - `n_in`, `n_out`: the matrix acts as `x_N×n_in @ W`.

    **Returns:** `W` `[n_in, n_out]` with `WᵀW = I` if `n_in ≥ n_out`, else `WWᵀ = I`.
    """
    big, small = max(n_in, n_out), min(n_in, n_out)
    g = jax.random.normal(key, (big, small), jnp.float32)
    q = jax.pure_callback(
        _orthonormal_columns_host, jax.ShapeDtypeStruct((big, small), jnp.float32), g, vmap_method="broadcast_all"
    )
    return q if n_in >= n_out else q.T


def scaled_orthogonal(key: PRNGKeyArray, n_in: int, n_out: int) -> Float[Array, "n_in n_out"]:
    """SUO init (DKS/TAT): `orthogonal × max(√(n_out/n_in), 1)`, which preserves q = |x|²/n_in exactly.

    **Returns:** `[n_in, n_out]`.
    """
    scale = max((n_out / n_in) ** 0.5, 1.0)
    return scale * orthogonal(key, n_in, n_out)
