"""Materialised attention in XLA with a hand-written backward pass: the fast path on CPU (`impl="xla"`).

Same maths and interface as `attention_reference` (the oracle it is tested against):

    out[b, i, h] = row_scale[h, i] * sum_j softmax_j(q_i . k_j * sm_scale + bias[h, i, j] + mask[i, j]) v_j

What differs is how XLA is asked to compute it. Autodiff through the reference differentiates every
elementwise step of the softmax over the `[B, H, T, S]` logits and leaves XLA to choose the layouts of the
six batched products; on CPU several of them then contract over the major axis of a T×S matrix, which
XLA runs as a generic loop at a fraction of its GEMM speed, and the softmax backward adds a reduction over
T×S. Here (flash-attention's backward, with the probabilities kept instead of recomputed):

- q, k, v are moved to head-major `[B, H, T, D]` once; every product is written so that no T×S operand is
  transposed: `S = q kᵀ`, `o = E v`, `dP = g vᵀ`, `dVᵀ = gᵀ E`, `dq = dS k`, `dKᵀ = qᵀ dS`
  (the transposed results are `[B, H, D, S]`, small, and transposed back);
- the softmax is kept unnormalised, `E = exp(S − max)`, with the row sums `l` folded into the output
  (`o = (E v) / l`), so the forward makes no normalising pass over T×S;
- the softmax backward uses `D_i = g_i · o_i` (a reduction over D, not over S):
  `dS = E ⊙ (g vᵀ / l − D / l)` with the row scale folded into `g`.

On the cpu-tiny model this cut the attention's share of a train step by about half (see `evals/README.md`).
Gradients flow to q, k, v, an explicit bias and the row scale (summed over the axes they broadcast over);
XLA drops the bias/scale gradients when nothing uses them.

A generated SPA bias (`spa=SpaSpec`) is built inside the forward pass from the layer's two numbers and never kept:
the backward pass needs only the probabilities, and the row scale is regenerated (O(T)). So a stack of layers
under `lax.scan` keeps no `[L, T, T]` bias between its forward and backward passes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from pallas_kernels.reference import MASK_VALUE, causal_mask
from pallas_kernels.spa import SpaSpec, SpaTables, as_prepared, prepared_log_bias


def attention_xla(
    q: Float[Array, "B T H D"],
    k: Float[Array, "B S H D"],
    v: Float[Array, "B S H D"],
    *,
    bias: Float[Array, "..."] | None = None,
    row_scale: Float[Array, "..."] | None = None,
    spa: SpaSpec | SpaTables | None = None,
    sm_scale: float | None = None,
    causal: bool = True,
) -> Float[Array, "B T H D"]:
    """Materialised-softmax attention with a custom VJP (arguments as `attention_reference`, plus `spa`).

    **Arguments:**
    - `q`: `[B, T, H, D]`; `k`, `v`: `[B, S, H, D]`.
    - `bias`: additive logit bias broadcastable to `[B, H, T, S]`; entries above the diagonal are ignored
      when `causal`.
    - `row_scale`: per-query rescaling broadcastable to `[B, H, T]`.
    - `spa`: a `SpaSpec` (or its `SpaTables`, prepared once for this length): bias and row scale generated from it
      (no gradient to it); exclusive with the two above.
    - `sm_scale`: logit scale, default `1/sqrt(D)`; `causal`: mask keys after the query.

    **Returns:** `[B, T, H, D]` in the dtype of `q`; logits, softmax and accumulation in float32.
    """
    if q.ndim != 4 or k.shape != v.shape or q.shape[::2] != k.shape[::2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q [B, T, H, D] and k, v [B, S, H, D] must agree, got {q.shape}, {k.shape}, {v.shape}")
    scale = float(sm_scale) if sm_scale is not None else q.shape[-1] ** -0.5
    if spa is None:
        return _attention(q, k, v, bias, row_scale, scale, bool(causal))
    if bias is not None or row_scale is not None:
        raise ValueError("spa generates its own bias and row scale; pass either spa or bias/row_scale, not both")
    if k.shape[1] != q.shape[1]:
        raise ValueError(f"SPA attention needs as many keys as queries, got {q.shape[1]} and {k.shape[1]}")
    prepared = as_prepared(spa, q.shape[1], bool(causal))
    return _attention_spa(q, k, v, prepared, scale)


def _dot(spec: str, a: Array, b: Array) -> Array:
    return jnp.einsum(spec, a, b, preferred_element_type=jnp.float32)


def _head_major(x: Array) -> Array:
    return jnp.transpose(x, (0, 2, 1, 3))


def _rows(row_scale: Array | None, batch: int, heads: int, t: int) -> Array | None:
    """The row scale as `[B, H, T, 1]` float32 (broadcast), or `None`."""
    if row_scale is None:
        return None
    return jnp.broadcast_to(jnp.asarray(row_scale, jnp.float32), (batch, heads, t))[..., None]


def _sum_to(x: Array, shape: tuple[int, ...]) -> Array:
    """Sums `x` over the axes a value of `shape` was broadcast along to reach `x.shape`."""
    lead = x.ndim - len(shape)
    x = jnp.sum(x, axis=tuple(range(lead))) if lead else x
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
    return jnp.sum(x, axis=axes, keepdims=True) if axes else x


def _forward(q, k, v, bias, row_scale, scale, causal):
    batch, t, heads, _ = q.shape
    s_len = k.shape[1]
    qh, kh, vh = _head_major(q), _head_major(k), _head_major(v)
    logits = _dot("bhik,bhjk->bhij", qh, kh) * scale
    if bias is not None:
        logits = logits + bias.astype(jnp.float32)
    if causal:
        logits = jnp.where(causal_mask(t, s_len), logits, MASK_VALUE)
    row_max = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    e = jnp.exp(logits - row_max)
    row_sum = jnp.sum(e, axis=-1, keepdims=True)
    out_unscaled = _dot("bhij,bhjk->bhik", e.astype(v.dtype), vh) / row_sum  # softmax(...) v, [B, H, T, D]
    rows = _rows(row_scale, batch, heads, t)
    out = out_unscaled if rows is None else out_unscaled * rows
    return _head_major(out).astype(q.dtype), (qh, kh, vh, e, row_sum, out_unscaled)


def _attention_fwd(q, k, v, bias, row_scale, scale, causal):
    out, saved = _forward(q, k, v, bias, row_scale, scale, causal)
    return out, (*saved, bias, row_scale)


def _attention_bwd(scale, causal, saved, g_out):
    del causal  # the mask is already in E (masked entries are exactly 0)
    *core, bias, row_scale = saved
    return _gradients(scale, core, g_out, bias, row_scale)


def _gradients(scale, core, g_out, bias, row_scale):
    """dq, dk, dv, and (when given) the bias's and row scale's gradients, from the forward's saved values."""
    qh, kh, vh, e, row_sum, out_unscaled = core
    batch, heads, t, _ = qh.shape
    f32 = jnp.float32
    g = _head_major(g_out.astype(f32))  # dL/d out, [B, H, T, D]
    g_dot_out = jnp.sum(g * out_unscaled, axis=-1, keepdims=True)  # g·(softmax v): the row-scale gradient
    rows = _rows(row_scale, batch, heads, t)
    if rows is None:
        g_rows, delta = g / row_sum, g_dot_out
    else:
        g_rows, delta = g * (rows / row_sum), g_dot_out * rows
    # dP / l and dVᵀ, with P = E / l: dP_ij = r_i g_i·v_j, dV_j = Σ_i P_ij r_i g_i.
    dp_over_l = _dot("bhik,bhjk->bhij", g_rows, vh.astype(f32))
    dv_t = _dot("bhik,bhij->bhkj", g_rows, e)
    # softmax backward: dS_ij = P_ij (dP_ij − D_i), D_i = Σ_j P_ij dP_ij = g_i·o_i.
    ds = e * (dp_over_l - delta / row_sum)
    dq = _dot("bhij,bhjk->bhik", ds, kh.astype(f32)) * scale
    dk_t = _dot("bhik,bhij->bhkj", qh.astype(f32), ds) * scale
    dq = _head_major(dq).astype(qh.dtype)
    dk = jnp.transpose(dk_t, (0, 3, 1, 2)).astype(kh.dtype)
    dv = jnp.transpose(dv_t, (0, 3, 1, 2)).astype(vh.dtype)
    dbias = None if bias is None else _sum_to(ds, bias.shape).reshape(bias.shape).astype(bias.dtype)
    drow = None
    if row_scale is not None:
        row_scale = jnp.asarray(row_scale)
        drow = _sum_to(g_dot_out[..., 0], row_scale.shape).reshape(row_scale.shape).astype(row_scale.dtype)
    return dq, dk, dv, dbias, drow


_attention = jax.custom_vjp(lambda q, k, v, bias, row_scale, scale, causal: _forward(
    q, k, v, bias, row_scale, scale, causal)[0], nondiff_argnums=(5, 6))
_attention.defvjp(_attention_fwd, _attention_bwd)


def _attention_spa_fwd(q, k, v, prepared, scale):
    out, core = _forward(q, k, v, prepared_log_bias(prepared), prepared.scale, scale, prepared.causal)
    return out, (core, prepared)  # the [T, T] bias is not kept; the tables are O(T)


def _attention_spa_bwd(scale, saved, g_out):
    core, prepared = saved
    dq, dk, dv, _, _ = _gradients(scale, core, g_out, None, prepared.scale)
    return dq, dk, dv, jax.tree.map(jnp.zeros_like, prepared)


_attention_spa = jax.custom_vjp(lambda q, k, v, prepared, scale: _forward(
    q, k, v, prepared_log_bias(prepared), prepared.scale, scale, prepared.causal)[0], nondiff_argnums=(4,))
_attention_spa.defvjp(_attention_spa_fwd, _attention_spa_bwd)
