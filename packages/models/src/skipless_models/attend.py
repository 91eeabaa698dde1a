"""One attention interface; dispatches to the XLA path or the Pallas kernel of `pallas_kernels`."""

from __future__ import annotations

import pallas_kernels
from jaxtyping import Array, Float


def resolve_impl(impl: str) -> str:
    """What "auto" means on this backend: the Pallas kernel only where its compiled form is verified
    (`pallas_kernels.VERIFIED_COMPILED_BACKENDS`), else the XLA path (`attention_xla`)."""
    return pallas_kernels.resolve_impl(impl)


def attend(
    q: Float[Array, "B T H K"],
    k: Float[Array, "B T H K"],
    v: Float[Array, "B T H K"],
    *,
    bias: Float[Array, "T T"] | None,
    row_scale: Float[Array, " T"] | None,
    causal: bool,
    impl: str,
) -> Float[Array, "B T H K"]:
    """`row_scale ⊙ softmax(q kᵀ/√K + bias + mask) v` through the chosen implementation.

    **Arguments:**
    - `q`, `k`, `v`: `[B, T, H, K]`.
    - `bias`: fixed logit bias `[T, T]` shared by all heads (SPA), or `None`.
    - `row_scale`: per-query rescaling `[T]` (SPA's d_l), or `None`.
    - `causal`: mask keys after the query.
    - `impl`: "xla", "pallas" or "auto".

    **Returns:** `[B, T, H, K]` in the dtype of `q`.
    """
    return pallas_kernels.attention(
        q, k, v, bias=bias, row_scale=row_scale, causal=causal, impl=resolve_impl(impl)
    )
