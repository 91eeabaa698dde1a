"""Multi-head self-attention with the skipless variants: standard, Value-SkipInit, U-SPA and E-SPA.

    heads(X) = (αI + βA) X W_V            (Value-SkipInit; α = 1, β = 0 at init)
    heads(X) = diag(d_l) softmax(QKᵀ/√K + B_l + mask) X W_V     (SPA; B_l, d_l generated, never stored)
    out      = heads(X) W_O

SPA's B_l and d_l are closed-form functions of the positions and of the layer's two schedule numbers: the caller
passes the layer's `pallas_kernels.SpaSpec` (the numbers) or `SpaTables` (prepared from them at this length, O(T))
and the attention implementation generates the bias (the Pallas kernel per tile, the XLA path per call).

Q, K and V come from one fused matmul `[B·T, D] @ [D, H·3·K]`; the weight is stored `[D, H, 3, K]`
(heads major, so sharding heads over the "model" axis survives the reshape).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray
from pallas_kernels.reference import MASK_VALUE, causal_mask
from pallas_kernels.spa import as_prepared, prepared_log_bias

from skipless_models.attend import attend
from skipless_models.dense import dense
from skipless_models.initialisers import normal, orthogonal
from skipless_models.ops import PLAIN_OPS, Ops
from skipless_models.rope import apply_rope


class Attention(eqx.Module):
    """One attention sub-block.

    **Fields:**
    - `w_qkv` `[D, H, 3, K]` (index 0 = query, 1 = key, 2 = value), `w_o` `[H, K, D]`.
    - `skip_alpha`, `skip_beta`: Value-SkipInit gains, shape `[]` or `[H]` (else `None`).
    - static: `kind`, `heads`, `causal`, `rope`, `impl`. SPA layers hold nothing of their bias: their two
      schedule numbers come with each call (see `__call__`).
    """

    w_qkv: Float[Array, "D H 3 K"]
    w_o: Float[Array, "H K D"]
    skip_alpha: Float[Array, "..."] | None
    skip_beta: Float[Array, "..."] | None
    kind: str = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    causal: bool = eqx.field(static=True)
    rope: bool = eqx.field(static=True)
    impl: str = eqx.field(static=True)

    def __init__(
        self, *, width: int, heads: int, kind: str, causal: bool, rope: bool, impl: str,
        init: str, depth: int, wk_init_scale: float, per_head_gains: bool, key: PRNGKeyArray,
    ):
        """**Arguments:** shapes (`width` D, `heads` H), `kind` of attention, `causal`,
        `rope`, `impl`, `init` scheme ("gpt2" | "fan_in" | "sigprop"), `depth` (GPT-2 residual
        scaling), `wk_init_scale`, `per_head_gains` (Value-SkipInit), `key`."""
        kq, kk, kv, ko = jax.random.split(key, 4)
        hk = width  # H·K
        head_dim = width // heads
        if init == "gpt2":
            wq, wk, wv = (normal(k_, (width, hk), 0.02) for k_ in (kq, kk, kv))
            wo = normal(ko, (hk, width), 0.02 / (2 * depth) ** 0.5)
        elif init == "fan_in":
            wq, wk, wv = (normal(k_, (width, hk), width**-0.5) for k_ in (kq, kk, kv))
            wo = normal(ko, (hk, width), hk**-0.5)
        else:  # sigprop: W_Q = 0 makes attention input-independent at init; W_V, W_O orthogonal
            wq = jnp.zeros((width, hk), jnp.float32)
            wk = normal(kk, (width, hk), wk_init_scale * width**-0.5)
            wv = orthogonal(kv, width, hk)
            wo = orthogonal(ko, hk, width)
        split = lambda w: w.reshape(width, heads, head_dim)  # noqa: E731
        self.w_qkv = jnp.stack([split(wq), split(wk), split(wv)], axis=2)
        self.w_o = wo.reshape(heads, head_dim, width)
        if kind == "value_skipinit":
            shape = (heads,) if per_head_gains else ()
            self.skip_alpha = jnp.ones(shape, jnp.float32)
            self.skip_beta = jnp.zeros(shape, jnp.float32)
        else:
            self.skip_alpha = self.skip_beta = None
        self.kind, self.heads, self.causal, self.rope, self.impl = kind, heads, causal, rope, impl

    # ----- pieces -----------------------------------------------------------------------------------
    def _qkv(self, x_BxTxD, positions_BxT=None, *, ops: Ops = PLAIN_OPS):
        """`(q, k, v)` `[B, T, H, K]`; RoPE at `positions_BxT` (default 0 … T−1; decoding passes its own)."""
        b, t, d = x_BxTxD.shape
        qkv = dense(x_BxTxD, self.w_qkv.reshape(d, -1), matmul=ops.matmul).reshape(b, t, self.heads, 3, -1)
        q, k, v = ops.split_qkv(qkv)
        if self.rope:
            q, k = apply_rope(q, positions_BxT), apply_rope(k, positions_BxT)
        return q, k, v

    def _spa(self, spa):
        """This layer's SPA input (`SpaSpec` or `SpaTables`), checked; None for non-SPA attention."""
        if self.kind not in ("espa", "uspa"):
            return None
        if spa is None or spa.kind != self.kind:
            raise ValueError(f"{self.kind} attention needs its layer's schedule (a {self.kind} SpaSpec or SpaTables), "
                             f"got {spa!r:.80}")
        return spa

    def _gains(self):
        shape = (1, 1, -1, 1) if self.skip_alpha.ndim else ()
        return self.skip_alpha.reshape(shape), self.skip_beta.reshape(shape)

    def _out(self, heads_BxTxHxK, *, ops: Ops = PLAIN_OPS):
        b, t, h, k = heads_BxTxHxK.shape
        return dense(heads_BxTxHxK.reshape(b, t, h * k), self.w_o.reshape(h * k, -1), matmul=ops.matmul)

    # ----- forward ----------------------------------------------------------------------------------
    @jax.named_scope("attention")
    def __call__(self, x_BxTxD: Float[Array, "B T D"], spa=None, *, ops: Ops = PLAIN_OPS) -> Float[Array, "B T D"]:
        """**Arguments:** `x_BxTxD` `[B, T, D]` (any T); `spa`: SPA layers' `pallas_kernels.SpaSpec` (γ_l and
        γ_{l−1} − γ_l for E-SPA; ρ_l and ρ_l − ρ_{l−1} for U-SPA) or its `SpaTables` at T, else None;
        `ops`: the model's operations. **Returns:** `[B, T, D]`, same dtype."""
        q, k, v = self._qkv(x_BxTxD, ops=ops)
        heads = attend(q, k, v, spa=self._spa(spa), causal=self.causal, impl=self.impl, ops=ops)
        if self.kind == "value_skipinit":
            alpha, beta = self._gains()
            heads = (alpha * v.astype(jnp.float32) + beta * heads.astype(jnp.float32)).astype(v.dtype)
        return self._out(heads, ops=ops)

    def attention_matrix(self, x_BxTxD: Float[Array, "B T D"], spa=None) -> Float[Array, "B H T T"]:
        """The effective matrix mixing the values, `heads = A V`, computed explicitly in float32.

        SPA: `diag(d_l) softmax(QKᵀ/√K + B_l + mask)`; Value-SkipInit: `αI + β softmax(...)`.

        **Arguments:** as `__call__`. **Returns:** `[B, H, T, T]` float32.
        """
        t = x_BxTxD.shape[1]
        q, k, _ = self._qkv(x_BxTxD)
        logits = jnp.einsum("bthk,bshk->bhts", q.astype(jnp.float32), k.astype(jnp.float32))
        logits = logits / (q.shape[-1] ** 0.5)
        spa = self._spa(spa)
        scale = None
        if spa is not None:
            prepared = as_prepared(spa, t, self.causal)
            logits = logits + prepared_log_bias(prepared)
            scale = prepared.scale
        if self.causal:
            logits = jnp.where(causal_mask(t, t), logits, MASK_VALUE)
        a = jax.nn.softmax(logits, axis=-1)
        if scale is not None:
            a = a * scale[:, None]
        if self.kind == "value_skipinit":
            alpha, beta = (g.reshape((1, -1, 1, 1) if g.ndim else ()) for g in (self.skip_alpha, self.skip_beta))
            a = alpha * jnp.eye(t, dtype=jnp.float32) + beta * a
        return a
