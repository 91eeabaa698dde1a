"""The attention interface the models call: one signature, interchangeable implementations."""

from __future__ import annotations

import functools
import warnings
from typing import Literal, get_args

import jax
from jaxtyping import Array, Float

from pallas_kernels.fused import fused_attention
from pallas_kernels.spa import SpaSpec, SpaTables
from pallas_kernels.xla_attention import attention_xla

AttentionImpl = Literal["auto", "xla", "pallas"]
"""How attention is computed: the materialised XLA reference with a hand-written backward ("xla"), the Pallas
kernel ("pallas"), or "auto": Pallas on a GPU/TPU whose compiled kernels are verified, else XLA. An execution
choice: the numbers it computes are the same model's."""
IMPLS: tuple[str, ...] = get_args(AttentionImpl)

# Backends whose compiled kernels have passed tests/test_compiled_*.py against the XLA reference on real
# hardware. Only these get the kernel under impl="auto"; elsewhere "auto" means the XLA reference and the
# kernel stays available as an explicit opt-in (impl="pallas"). The compiled Triton kernels were
# benchmarked on an H100 but failed their first correctness checks there (see README), so none yet.
VERIFIED_COMPILED_BACKENDS: frozenset[str] = frozenset()


def resolve_impl(impl: str) -> str:
    """Maps "auto" to "pallas" on a GPU/TPU whose compiled kernels are verified, else to "xla". The GPU kernels
    need jax's Pallas Triton backend: where this jax has none, "pallas" becomes "xla" with one warning."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    backend, interpret = pallas_backend()
    if impl == "auto":
        impl = "pallas" if not interpret and backend in VERIFIED_COMPILED_BACKENDS else "xla"
    if impl == "pallas" and backend == "gpu":
        usable, why = triton_status()
        if not usable:
            _warn_fallback(why)
            return "xla"
    return impl


@functools.cache
def triton_status() -> tuple[bool, str]:
    """Whether this jax still runs Pallas kernels through its Triton backend (deprecated from jax 0.11 in favour
    of Mosaic GPU). **Returns:** `(usable, reason when not)`."""
    try:
        from jax.experimental.pallas import triton as plgpu

        plgpu.CompilerParams  # noqa: B018
    except (ImportError, AttributeError) as err:
        return False, f"jax {jax.__version__} has no Pallas Triton backend ({type(err).__name__}: {err})"
    try:
        from jax._src import deprecations

        if deprecations.is_accelerated("jax-pallas-triton"):
            return False, f"jax {jax.__version__} turns the Pallas Triton deprecation into an error"
    except (ImportError, AttributeError, KeyError, ValueError):
        pass  # no deprecation registry to ask: the backend is there
    return True, ""


@functools.cache
def _warn_fallback(why: str) -> None:  # cached: one warning per process and reason
    warnings.warn(
        f"pallas_kernels: {why}; attention runs on the XLA path instead of the GPU kernels "
        "(pallas_kernels/README.md, 'Mosaic GPU port', says what a port needs)",
        RuntimeWarning,
        stacklevel=3,
    )


def pallas_backend() -> tuple[str, bool]:
    """The kernel family for the default device and whether it must be interpreted.

    **Returns:** ("gpu", False) on GPU, ("tpu", False) on TPU, ("gpu", True) elsewhere (interpret mode).
    """
    platform = jax.default_backend()
    if platform in ("gpu", "cuda", "rocm"):
        return "gpu", False
    if platform == "tpu":
        return "tpu", False
    return "gpu", True


def attention(
    q: Float[Array, "B T H D"],
    k: Float[Array, "B T H D"],
    v: Float[Array, "B T H D"],
    *,
    bias: Float[Array, "..."] | None = None,
    row_scale: Float[Array, "..."] | None = None,
    spa: SpaSpec | SpaTables | None = None,
    espa: tuple | None = None,
    sm_scale: float | None = None,
    causal: bool = True,
    impl: str = "auto",
) -> Float[Array, "B T H D"]:
    """Causal attention with an additive bias and per-row rescaling:
    `out = diag(scale) · softmax(q kᵀ · sm_scale + bias + mask) · v`.

    **Arguments:**
    - `q`, `k`, `v`: `[B, T, H, D]`, float32 or bfloat16.
    - `bias`: broadcastable to `[B, H, T, T]`; `row_scale`: broadcastable to `[B, H, T]`.
    - `spa`: a `SpaSpec` (one E-SPA or U-SPA layer: kind and two numbers, may be traced): the bias and row
      scale are generated from it, in the kernel (Pallas) or transiently per call (XLA). No gradient flows to it.
      Or its `SpaTables` (`spa_prepare`), e.g. prepared for every layer at once outside a scan. Exclusive with
      `bias` / `row_scale`.
    - `espa`: shorthand for `spa=SpaSpec.from_levels("espa", gamma_prev, gamma)` (`gamma_prev = inf` for layer 1).
    - `sm_scale`: logit scale, default `1/sqrt(D)`; `causal`: mask future keys.
    - `impl`: "xla" (`attention_xla`: the reference's maths with a hand-written backward), "pallas" (the fused
      kernel for this backend; interpret mode on CPU) or "auto" (Pallas on a GPU/TPU whose compiled kernels are
      verified, see `VERIFIED_COMPILED_BACKENDS`; XLA elsewhere).

    **Returns:** `[B, T, H, D]` in the dtype of `q`.
    """
    impl = resolve_impl(impl)
    if espa is not None:
        if spa is not None:
            raise ValueError("pass either spa or espa, not both")
        if len(espa) != 2:
            raise ValueError(f"espa must be a pair (gamma_prev, gamma), got {espa!r}")
        _check_gammas(*espa)
        spa = SpaSpec.from_levels("espa", *espa)
    if spa is not None and (bias is not None or row_scale is not None):
        raise ValueError("spa generates its own bias and row scale; pass either spa or bias/row_scale, not both")
    if impl == "xla":
        return attention_xla(q, k, v, bias=bias, row_scale=row_scale, spa=spa, sm_scale=sm_scale, causal=causal)
    backend, interpret = pallas_backend()
    return fused_attention(
        q, k, v, bias=bias, row_scale=row_scale, spa=spa, sm_scale=sm_scale, causal=causal,
        backend=backend, interpret=interpret,
    )


def _check_gammas(gamma_prev, gamma) -> None:
    """Reject concrete gammas outside 0 < γ_l < γ_{l−1} (traced ones cannot be checked here)."""
    try:
        gp, g = float(gamma_prev), float(gamma)
    except (jax.errors.ConcretizationTypeError, TypeError):
        return
    if not (0.0 < g < gp and g != float("inf")):
        raise ValueError(
            f"espa needs 0 < gamma < gamma_prev (gamma_prev = inf for layer 1), got ({gp}, {g}); "
            "use a decreasing schedule such as sigprop.espa_gammas"
        )
