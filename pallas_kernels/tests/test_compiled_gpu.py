"""The compiled GPU kernels (Triton-style) against the XLA reference; runs only where a GPU is present."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

pytestmark = pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a GPU (kernels compile for Triton)")


@pytest.mark.parametrize("source", ["none", "array", "espa", "uspa"])
@pytest.mark.parametrize("seq_len, head_dim", [(7, 64), (200, 64), (1000, 64), (512, 128)])
def test_compiled_float32(check, problem, seq_len, head_dim, source):
    args, cot = problem(seq_len + head_dim, 2, seq_len, 3, head_dim, source)
    check(source, args, cot, atol=2e-5, backend="gpu")


@pytest.mark.parametrize("source", ["none", "array", "espa", "uspa"])
def test_compiled_bfloat16(check, problem, source):
    args, cot = problem(1, 2, 1024, 4, 128, source, dtype=jnp.bfloat16)
    check(source, args, cot, atol=3e-2, backend="gpu")
