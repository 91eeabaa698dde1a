"""The CPU operations: the plain maths (`skipless_models.ops.plain`) with hand-written backward passes that XLA CPU
runs faster. Each forward is the plain one; only reverse-mode differentiation is defined (custom VJPs), so
`jax.jvp` through them fails: a model that needs forward mode takes the plain operations (`Transformer.with_ops`).

- `matmul`: its weight gradient `xᵀ g` comes from an explicitly transposed operand (`weight_grad`). Left to
  itself XLA folds the transpose into the dot's dimension numbers (contracting over dimension 0 of both operands),
  which XLA CPU does not hand to YNNPACK: it runs as an Eigen matmul on one thread (the hang guard
  `--xla_cpu_multi_thread_eigen=false`, `train.xla_env`). For `[2048, 512]ᵀ · [2048, 128]` that took 1.50 ms
  (179 GFLOP/s) against 0.71–0.87 ms with the transpose materialised; train steps 1.02–1.16× faster.
- `split_qkv`: autodiff of three slices pads each gradient back to `[B, T, H, 3, K]` and adds the three (three
  passes over the full tensor on XLA CPU); this backward stacks them in one (train step 2–4% faster, cpu-tiny).
- `normalise`: the textbook backward `dx = σ⁻¹ (ĝ − mean(ĝ) − x̂ · mean(ĝ x̂))`, `ĝ = gain ⊙ dy` (the mean of ĝ only
  for LayerNorm), from the saved `x̂` and `σ⁻¹`; autodiff gave XLA CPU several more passes over the activations
  (train step 17% faster at 16 Pre-LN layers).
- `attention`: `pallas_kernels.attention_xla` (its hand-written backward halves attention's share of a step).
- `head_loss`: `skipless_models.ops.cpu_head_loss.head_cross_entropy` (head and loss fused and chunked).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float
from pallas_kernels import SpaSpec, SpaTables, attention_xla

from skipless_models.ops import plain


def weight_grad(
    x_NxD: Float[Array, "N D"], g_NxF: Float[Array, "N F"], preferred_element_type=None
) -> Float[Array, "D F"]:
    """`xᵀ g` (contraction over the N rows) as a plain `[M, N] @ [N, K]` matmul on a transposed copy.

    The narrower operand is transposed (the cheaper copy); optimisation barriers keep XLA from folding
    the transposes back into the dot. Same dtype rules as `jnp.dot(x.T, g, preferred_element_type=...)`.
    """
    barrier = jax.lax.optimization_barrier
    if x_NxD.shape[1] <= g_NxF.shape[1]:
        return jnp.dot(barrier(x_NxD.T), g_NxF, preferred_element_type=preferred_element_type)
    return barrier(jnp.dot(barrier(g_NxF.T), x_NxD, preferred_element_type=preferred_element_type)).T


@jax.custom_vjp
def matmul(x_NxD: Float[Array, "N D"], w_DxF: Float[Array, "D F"]) -> Float[Array, "N F"]:
    """`plain.matmul`; its backward takes the weight gradient from `weight_grad`."""
    return plain.matmul(x_NxD, w_DxF)


def _matmul_fwd(x_NxD, w_DxF):
    return plain.matmul(x_NxD, w_DxF), (x_NxD, w_DxF)


def _matmul_bwd(residuals, g_NxF):
    x_NxD, w_DxF = residuals
    return jnp.dot(g_NxF, w_DxF.T).astype(x_NxD.dtype), weight_grad(x_NxD, g_NxF).astype(w_DxF.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)


@jax.custom_vjp
def split_qkv(qkv_BxTxHx3xK: Array) -> tuple[Array, Array, Array]:
    """`plain.split_qkv`; its backward stacks the three gradients in one pass."""
    return plain.split_qkv(qkv_BxTxHx3xK)


def _split_qkv_fwd(qkv):
    return plain.split_qkv(qkv), None


def _split_qkv_bwd(_, grads):
    return (jnp.stack(grads, axis=3),)


split_qkv.defvjp(_split_qkv_fwd, _split_qkv_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def normalise(x: Array, gain: Array, bias: Array | None, centre: bool) -> Array:
    """`plain.normalise` with the textbook backward from the saved `x̂` and `σ⁻¹`."""
    return _normalise_fwd(x, gain, bias, centre)[0]


def _normalise_fwd(x, gain, bias, centre):
    xf = x.astype(jnp.float32)
    if centre:
        xf = xf - jnp.mean(xf, axis=-1, keepdims=True)
    inv_std = jax.lax.rsqrt(jnp.mean(jnp.square(xf), axis=-1, keepdims=True) + plain.NORM_EPS)
    x_hat = xf * inv_std
    y = x_hat * gain
    if bias is not None:
        y = y + bias
    return y.astype(x.dtype), (x_hat, inv_std, gain, bias)


def _normalise_bwd(centre, saved, dy):
    x_hat, inv_std, gain, bias = saved
    g = dy.astype(jnp.float32)
    rows = tuple(range(g.ndim - 1))
    d_gain = jnp.sum(g * x_hat, axis=rows).astype(gain.dtype)
    d_bias = None if bias is None else jnp.sum(g, axis=rows).astype(bias.dtype)
    g_hat = g * gain
    dx = g_hat - x_hat * jnp.mean(g_hat * x_hat, axis=-1, keepdims=True)
    if centre:
        dx = dx - jnp.mean(g_hat, axis=-1, keepdims=True)
    return (dx * inv_std).astype(dy.dtype), d_gain, d_bias


normalise.defvjp(_normalise_fwd, _normalise_bwd)


def attention(q: Array, k: Array, v: Array, *, spa: SpaSpec | SpaTables | None, causal: bool) -> Array:
    """`plain.attention` through `pallas_kernels.attention_xla` (materialised, hand-written backward)."""
    return attention_xla(q, k, v, spa=spa, causal=causal)
