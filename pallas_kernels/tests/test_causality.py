"""Causality of the fused kernel: perturbing k/v at position t changes no output before t."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from pallas_kernels import SpaSpec, fused_attention


_run = jax.jit(
    lambda q, k, v: fused_attention(q, k, v, spa=SpaSpec.from_levels("espa", 0.4, 0.1), interpret=True, block_q=32,
                                    block_k=32)
)


@pytest.mark.parametrize("t", [0, 37, 95])
def test_future_keys_and_values_do_not_leak(t):
    batch, seq_len, heads, head_dim = 1, 96, 2, 16
    keys = jax.random.split(jax.random.key(t), 5)
    q, k, v, dk, dv = (jax.random.normal(key, (batch, seq_len, heads, head_dim)) for key in keys)
    k2 = k.at[:, t].add(10.0 * dk[:, t])
    v2 = v.at[:, t].add(10.0 * dv[:, t])
    before, after = np.asarray(_run(q, k, v)), np.asarray(_run(q, k2, v2))
    np.testing.assert_array_equal(before[:, :t], after[:, :t])
    # The perturbation is visible from t on (so the comparison above can fail).
    assert np.abs(before[:, t:] - after[:, t:]).max(axis=(0, 2, 3)).min() > 1e-6
