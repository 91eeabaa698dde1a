"""One attention interface: the Pallas kernel of `pallas_kernels`, or the XLA path of the model's operations."""

from __future__ import annotations

import pallas_kernels
from jaxtyping import Array, Float

from skipless_models.ops import PLAIN_OPS, Ops


def resolve_impl(impl: str) -> str:
    """What "auto" means on this backend: the Pallas kernel only where its compiled form is verified
    (`pallas_kernels.VERIFIED_COMPILED_BACKENDS`), else the XLA path."""
    return pallas_kernels.resolve_impl(impl)


def attend(
    q: Float[Array, "B T H K"],
    k: Float[Array, "B T H K"],
    v: Float[Array, "B T H K"],
    *,
    spa: pallas_kernels.SpaSpec | pallas_kernels.SpaTables | None,
    causal: bool,
    impl: str,
    ops: Ops = PLAIN_OPS,
) -> Float[Array, "B T H K"]:
    """`d ⊙ softmax(q kᵀ/√K + B + mask) v` through the chosen implementation, with the SPA bias B and row
    scale d generated where attention runs (in the Pallas kernel, or per call on the XLA path), never passed in.

    **Arguments:**
    - `q`, `k`, `v`: `[B, T, H, K]`.
    - `spa`: the layer's `SpaSpec` / `SpaTables` (SPA attention; shared by all heads), or `None` (plain softmax).
    - `causal`: mask keys after the query.
    - `impl`: "xla" (`ops.attention`: plain autodiff, or `pallas_kernels.attention_xla` with the CPU operations),
      "pallas" (the fused kernel; a custom VJP, reverse mode only) or "auto".
    - `ops`: the model's operations.

    **Returns:** `[B, T, H, K]` in the dtype of `q`.
    """
    if resolve_impl(impl) == "pallas":
        return pallas_kernels.attention(q, k, v, spa=spa, causal=causal, impl="pallas")
    return ops.attention(q, k, v, spa=spa, causal=causal)
