"""One attention interface; dispatches to the XLA reference or the Pallas kernel of `pallas_kernels`."""

from __future__ import annotations

import jax
import pallas_kernels
from jaxtyping import Array, Float


def resolve_impl(impl: str) -> str:
    """Map "auto" to "pallas" on GPU/TPU (when the kernel is installed) and to "xla" elsewhere."""
    if impl != "auto":
        return impl
    has_kernel = hasattr(pallas_kernels, "attention")
    return "pallas" if has_kernel and jax.default_backend() in ("gpu", "tpu") else "xla"


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
    impl = resolve_impl(impl)
    if impl == "xla":
        kernel = getattr(pallas_kernels, "attention", None)
        if kernel is None:
            return pallas_kernels.attention_reference(q, k, v, bias=bias, row_scale=row_scale, causal=causal)
        return kernel(q, k, v, bias=bias, row_scale=row_scale, causal=causal, impl="xla")
    kernel = getattr(pallas_kernels, "attention", None)
    if kernel is None:
        raise ValueError(
            "attention_impl='pallas' needs pallas_kernels.attention, which this install lacks; "
            "use attention_impl='xla'"
        )
    return kernel(q, k, v, bias=bias, row_scale=row_scale, causal=causal, impl="pallas")
