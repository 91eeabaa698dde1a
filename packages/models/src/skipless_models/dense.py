"""Dense layers written over whole arrays as one 2-D matmul `[B·T, D] @ [D, F]` (fastest on XLA CPU).

`matmul` is `x @ W` with a hand-written backward whose weight gradient `xᵀ g` is computed from an
explicitly transposed operand. Left to itself XLA folds the transpose into the dot's dimension numbers
(contracting over dimension 0 of both operands), which XLA CPU does not hand to YNNPACK: it runs as an
Eigen matmul on one thread (the hang guard `--xla_cpu_multi_thread_eigen=false`, `train.xla_env`), and
the profile showed stretches of the step in which nothing else ran beside it. For
`[2048, 512]ᵀ · [2048, 128]` that took 1.50 ms (179 GFLOP/s) against 0.71–0.87 ms with the transpose
materialised; train steps got 1.02–1.16× faster (in-process A/B, `evals/README.md`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def weight_grad(
    x_NxD: Float[Array, "N D"], g_NxF: Float[Array, "N F"], preferred_element_type=None
) -> Float[Array, "D F"]:
    """`xᵀ g` (contraction over the N rows) as a plain `[M, N] @ [N, K]` matmul on a transposed copy.

    The narrower operand is transposed (the cheaper copy); optimisation barriers keep XLA from folding
    the transposes back into the dot. Same dtype rules as `jnp.dot(x.T, g, preferred_element_type=...)`.
    On other backends than CPU (whose GEMMs take transposed operands natively) it is that plain dot.
    """
    if jax.default_backend() != "cpu":
        return jnp.dot(x_NxD.T, g_NxF, preferred_element_type=preferred_element_type)
    barrier = jax.lax.optimization_barrier
    if x_NxD.shape[1] <= g_NxF.shape[1]:
        return jnp.dot(barrier(x_NxD.T), g_NxF, preferred_element_type=preferred_element_type)
    return barrier(jnp.dot(barrier(g_NxF.T), x_NxD, preferred_element_type=preferred_element_type)).T


@jax.custom_vjp
def matmul(x_NxD: Float[Array, "N D"], w_DxF: Float[Array, "D F"]) -> Float[Array, "N F"]:
    """`x @ W` (2-D, same dtype rules as `jnp.dot`); its backward takes the weight gradient from
    `weight_grad`. Reverse-mode differentiation only (a custom VJP)."""
    return jnp.dot(x_NxD, w_DxF)


def _matmul_fwd(x_NxD, w_DxF):
    return jnp.dot(x_NxD, w_DxF), (x_NxD, w_DxF)


def _matmul_bwd(residuals, g_NxF):
    x_NxD, w_DxF = residuals
    return jnp.dot(g_NxF, w_DxF.T).astype(x_NxD.dtype), weight_grad(x_NxD, g_NxF).astype(w_DxF.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def dense(
    x_BxTxD: Float[Array, "B T D"], w_DxF: Float[Array, "D F"], b_F: Float[Array, " F"] | None = None
) -> Float[Array, "B T F"]:
    """`x @ W + b` computed as a single 2-D matmul in the dtype of `x`.

    **Arguments:**
    - `x_BxTxD`: activations `[B, T, D]` (their dtype is the compute dtype).
    - `w_DxF`: weight `[D, F]` (cast to the compute dtype at use; parameters stay float32).
    - `b_F`: optional bias `[F]`.

    **Returns:** `[B, T, F]` in the dtype of `x`.
    """
    b, t, d = x_BxTxD.shape
    y_NxF = matmul(x_BxTxD.reshape(b * t, d), w_DxF.astype(x_BxTxD.dtype))
    if b_F is not None:
        y_NxF = y_NxF + b_F.astype(y_NxF.dtype)
    return y_NxF.reshape(b, t, -1)
