"""The Triton-style (GPU) kernels in interpret mode against the XLA reference: forward and all gradients."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

F32_TOL = 2e-5
BF16_TOL = 3e-2  # bf16 inputs/outputs (8 mantissa bits) against a float32 reference on the same inputs


@pytest.mark.parametrize("source", ["none", "array", "espa"])
@pytest.mark.parametrize("seq_len", [1, 7, 128, 200, 512])
def test_forward_and_gradients_match_reference(check, problem, seq_len, source):
    args, cot = problem(seq_len, 2, seq_len, 2, 16, source)
    check(source, args, cot, atol=F32_TOL, backend="gpu", interpret=True)


@pytest.mark.parametrize("head_dim, source", [(64, "espa"), (128, "array")])
def test_head_dims(check, problem, head_dim, source):
    args, cot = problem(head_dim, 1, 72, 2, head_dim, source)
    check(source, args, cot, atol=F32_TOL, backend="gpu", interpret=True)


@pytest.mark.parametrize("bias_shape", ["TT", "B1TT"])
def test_bias_broadcast_shapes_get_gradients_in_their_shape(check, problem, bias_shape):
    args, cot = problem(3, 2, 40, 3, 16, "array", bias_shape=bias_shape)
    check("array", args, cot, atol=F32_TOL, backend="gpu", interpret=True, block_q=16, block_k=32)


def test_bfloat16_inputs(check, problem):
    args, cot = problem(11, 2, 100, 2, 32, "array", dtype=jnp.bfloat16)
    check("array", args, cot, atol=BF16_TOL, backend="gpu", interpret=True)


def test_non_causal_with_ragged_length_and_odd_head_dim(check, problem):
    args, cot = problem(5, 2, 50, 2, 24, "array", bias_shape="BHTT")
    check("array", args, cot, atol=F32_TOL, causal=False, backend="gpu", interpret=True)
