"""The Triton-style (GPU) kernels in interpret mode against the XLA reference: forward and all gradients."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

F32_TOL = 2e-5
BF16_TOL = 3e-2  # bf16 inputs/outputs (8 mantissa bits) against a float32 reference on the same inputs


# Each length also varies the head dim (64 and 128 included; 24 is padded to 32) and the explicit bias's
# broadcast shape, whose gradient must come back in that shape.
CASES = {1: (16, "TT"), 7: (24, "HTT"), 128: (64, "BHTT"), 200: (128, "B1TT"), 512: (16, "HTT")}


@pytest.mark.parametrize("source", ["none", "array", "espa", "uspa"])
# The two longest lengths run in the slow tier (they are the costliest to interpret); the workspace run covers both tiers.
@pytest.mark.parametrize(
    "seq_len", [pytest.param(t, marks=pytest.mark.slow) if t >= 200 else t for t in sorted(CASES)]
)
def test_forward_and_gradients_match_reference(check, problem, seq_len, source):
    head_dim, bias_shape = CASES[seq_len]
    args, cot = problem(seq_len, 2, seq_len, 2, head_dim, source, bias_shape=bias_shape)
    check(source, args, cot, atol=F32_TOL, backend="gpu", interpret=True)


def test_bfloat16_inputs(check, problem):
    args, cot = problem(11, 2, 100, 2, 32, "array", dtype=jnp.bfloat16)
    check("array", args, cot, atol=BF16_TOL, backend="gpu", interpret=True)


def test_non_causal_with_ragged_length_and_small_tiles(check, problem):
    args, cot = problem(5, 2, 50, 2, 16, "array", bias_shape="TT")
    check("array", args, cot, atol=F32_TOL, causal=False, backend="gpu", interpret=True, block_q=16, block_k=32)


def test_non_causal_uspa_with_ragged_length(check, problem):
    # Non-causal U-SPA is generated at the true length (its matrix depends on T); padded keys stay masked.
    args, cot = problem(6, 2, 50, 2, 16, "uspa")
    check("uspa", args, cot, atol=F32_TOL, causal=False, backend="gpu", interpret=True, block_q=16, block_k=32)
