"""Fused causal attention with additive / generated (E-SPA) bias and per-row rescaling."""

from pallas_kernels.reference import attention_reference

__all__ = ["attention_reference"]
