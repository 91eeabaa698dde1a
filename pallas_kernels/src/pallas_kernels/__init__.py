"""Fused causal attention with additive / generated (E-SPA) bias and per-row rescaling.

Public API:
- `attention`: the interface models call (`impl="auto" | "xla" | "pallas"`); `resolve_impl` says what "auto" picks.
- `fused_attention`: the Pallas kernel family directly (choose backend, interpret mode, tiles).
- `attention_reference`: the XLA reference (the oracle in tests).
- `SpaSpec`, `SpaTables`, `spa_prepare`, `spa_log_bias`, `spa_row_scale`, `spa_tables`, `spa_row` (one query row, for decoding): SPA (E-SPA, U-SPA)
  generated from two numbers per layer, in JAX (the one implementation of the closed forms; `sigprop` is its float64 oracle);
  `espa_coefficients`, `espa_log_bias`, `espa_row_scale`: the E-SPA shorthands.
"""

from pallas_kernels.dispatch import VERIFIED_COMPILED_BACKENDS, attention, pallas_backend, resolve_impl
from pallas_kernels.spa import (
    SpaSpec,
    SpaTables,
    espa_coefficients,
    espa_log_bias,
    espa_row_scale,
    spa_log_bias,
    spa_prepare,
    spa_row,
    spa_row_scale,
    spa_tables,
)
from pallas_kernels.fused import fused_attention
from pallas_kernels.reference import attention_reference
from pallas_kernels.xla_attention import attention_xla

__all__ = [
    "SpaSpec",
    "SpaTables",
    "VERIFIED_COMPILED_BACKENDS",
    "attention",
    "attention_reference",
    "attention_xla",
    "espa_coefficients",
    "espa_log_bias",
    "espa_row_scale",
    "fused_attention",
    "pallas_backend",
    "resolve_impl",
    "spa_log_bias",
    "spa_prepare",
    "spa_row",
    "spa_row_scale",
    "spa_tables",
]
