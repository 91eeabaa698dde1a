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
    spa: pallas_kernels.SpaSpec | None,
    causal: bool,
    impl: str,
) -> Float[Array, "B T H K"]:
    """`d ⊙ softmax(q kᵀ/√K + B + mask) v` through the chosen implementation, with the SPA bias B and row
    scale d generated where attention runs (in the Pallas kernel, or per call on the XLA path), never passed in.

    **Arguments:**
    - `q`, `k`, `v`: `[B, T, H, K]`.
    - `spa`: the layer's `SpaSpec` (SPA attention; shared by all heads), or `None` (plain softmax attention).
    - `causal`: mask keys after the query.
    - `impl`: "xla", "pallas" or "auto".

    **Returns:** `[B, T, H, K]` in the dtype of `q`.
    """
    return pallas_kernels.attention(q, k, v, spa=spa, causal=causal, impl=resolve_impl(impl))
