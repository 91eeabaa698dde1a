"""One transformer block in each of the five arrangements (Pre-LN, Post-LN, skipless+LN, vanilla, norm-free residual).

    preln:        x ← x + Attn(N(x));   x ← x + MLP(N(x))
    postln:       x ← N(x + Attn(x));   x ← N(x + MLP(x))
    skipless_ln:  x ← Attn(N(x));       x ← MLP(N(x))
    vanilla:      x ← Attn(x);          x ← MLP(x)
    nf_residual:  x ← a·x + b·Attn(x);  x ← a·x + b·MLP(x)     (a² + b² = 1, no normalisation)
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
from jaxtyping import Array, Float

from skipless_models.attention import Attention
from skipless_models.mlp import MLP
from skipless_models.norm import Norm
from skipless_models.ops import PLAIN_OPS, Ops


class Block(eqx.Module):
    """Attention sub-block followed by an (optional) MLP sub-block.

    **Fields:** `attention`, `mlp` (or `None`), `norm_attention` / `norm_mlp` (`None` for vanilla, nf_residual or
    without MLP), static `kind`, static `branch_weight` b of "nf_residual" (shortcut weight √(1 − b²)).
    """

    attention: Attention
    mlp: MLP | None
    norm_attention: Norm | None
    norm_mlp: Norm | None
    kind: str = eqx.field(static=True)
    branch_weight: float = eqx.field(static=True, default=1.0)

    def __init__(self, attention: Attention, mlp: MLP | None, *, kind: str, norm: str, width: int,
                 branch_weight: float = 1.0):
        self.attention, self.mlp, self.kind, self.branch_weight = attention, mlp, kind, float(branch_weight)
        use_norm = kind not in ("vanilla", "nf_residual")
        self.norm_attention = Norm(width, norm) if use_norm else None
        self.norm_mlp = Norm(width, norm) if use_norm and mlp is not None else None

    def _sub(self, f, norm, x, ops):
        norm = None if norm is None else functools.partial(norm, ops=ops)
        if self.kind == "preln":
            return x + f(norm(x))
        if self.kind == "postln":
            return norm(x + f(x))
        if self.kind == "skipless_ln":
            return f(norm(x))
        if self.kind == "nf_residual":
            b = self.branch_weight
            return (1.0 - b * b) ** 0.5 * x + b * f(x)
        return f(x)

    @jax.named_scope("block")
    def __call__(self, x_BxTxD: Float[Array, "B T D"], spa=None, *, ops: Ops = PLAIN_OPS) -> Float[Array, "B T D"]:
        """**Arguments:** `x_BxTxD` `[B, T, D]`; `spa`: the layer's SPA input (SPA attention only, see `Attention`);
        `ops`: the model's operations. **Returns:** `[B, T, D]`, same dtype."""
        return self.trace(x_BxTxD, spa, ops=ops)[1]

    def trace(
        self, x_BxTxD: Float[Array, "B T D"], spa=None, *, ops: Ops = PLAIN_OPS
    ) -> tuple[Float[Array, "B T D"], Float[Array, "B T D"]]:
        """**Returns:** the representations after the attention and after the MLP sub-block."""
        attention = functools.partial(self.attention, spa=spa, ops=ops)
        x_attn = self._sub(attention, self.norm_attention, x_BxTxD, ops)
        mlp = None if self.mlp is None else functools.partial(self.mlp, ops=ops)
        x_mlp = x_attn if mlp is None else self._sub(mlp, self.norm_mlp, x_attn, ops)
        return x_attn, x_mlp

    def attention_input(self, x_BxTxD: Float[Array, "B T D"], *, ops: Ops = PLAIN_OPS) -> Float[Array, "B T D"]:
        """What the attention layer itself sees (the normalised input for Pre-LN / skipless_ln)."""
        if self.kind in ("preln", "skipless_ln"):
            return self.norm_attention(x_BxTxD, ops=ops)
        return x_BxTxD
