"""The JAX E-SPA closed form against float64 oracles: Cholesky factors of the OU kernels, and `sigprop`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pallas_kernels import attention, espa_log_bias, espa_row_scale


def _ou_kernel(seq_len: int, gamma: float) -> np.ndarray:
    i = np.arange(seq_len)
    return np.exp(-gamma * np.abs(i[:, None] - i[None, :]))


def _cholesky_attention(seq_len: int, gamma_prev: float, gamma: float) -> np.ndarray:
    """A_l = L_l L_{l−1}⁻¹ in float64 (Σ_0 = I for layer 1)."""
    chol = np.linalg.cholesky(_ou_kernel(seq_len, gamma))
    prev = np.eye(seq_len) if np.isinf(gamma_prev) else np.linalg.cholesky(_ou_kernel(seq_len, gamma_prev))
    return chol @ np.linalg.inv(prev)


@pytest.mark.parametrize("gamma_prev, gamma", [(np.inf, 0.8), (0.8, 0.3), (0.05, 0.01)])
def test_closed_form_equals_cholesky_oracle(gamma_prev, gamma):
    seq_len = 24
    a = _cholesky_attention(seq_len, gamma_prev, gamma)
    bias = np.asarray(espa_log_bias(seq_len, gamma_prev, gamma), np.float64)
    scale = np.asarray(espa_row_scale(seq_len, gamma_prev, gamma), np.float64)
    lower = np.tril(np.ones((seq_len, seq_len), bool))
    assert np.all(a[lower] > 0) and np.allclose(a[~lower], 0.0, atol=1e-12)
    np.testing.assert_allclose(np.exp(bias[lower]), a[lower], rtol=2e-5, atol=1e-7)
    assert np.all(bias[~lower] <= -1e29)
    np.testing.assert_allclose(scale, a.sum(axis=1), rtol=2e-5)


def test_log_bias_is_finite_where_the_matrix_underflows():
    bias = np.asarray(espa_log_bias(2048, 0.6, 0.5))
    assert np.all(np.isfinite(bias)) and bias[-1, 1] < -900  # A[i, 1] ≈ e^{−1000}: zero in float64 too


def test_generated_bias_equals_sigprop_layers():
    sigprop = pytest.importorskip("sigprop")
    if not hasattr(sigprop, "spa_layers"):
        pytest.skip("sigprop.spa_layers is not available in this checkout")
    depth, seq_len = 8, 64
    layers = sigprop.spa_layers("espa", depth, seq_len, gamma_final=0.05)
    gammas = sigprop.espa_gammas(depth, 0.05)
    assert len(gammas) == depth + 1 and np.isinf(gammas[0])
    lower = np.tril(np.ones((seq_len, seq_len), bool))
    for layer in (0, 3, depth - 1):
        record = layers[layer]
        bias = np.asarray(espa_log_bias(seq_len, float(gammas[layer]), float(gammas[layer + 1])), np.float64)
        scale = np.asarray(espa_row_scale(seq_len, float(gammas[layer]), float(gammas[layer + 1])), np.float64)
        np.testing.assert_allclose(bias[lower], np.asarray(record.bias)[lower], rtol=1e-5, atol=2e-4)
        assert np.all(np.isneginf(np.asarray(record.bias)[~lower]))
        np.testing.assert_allclose(scale, np.asarray(record.scale), rtol=1e-5)


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_zero_queries_give_a_times_v_with_gammas_traced_in_a_scan(impl):
    """W_Q = 0 at init: each layer's output is A_l v exactly; the gammas arrive as scan-traced scalars."""
    depth, seq_len, heads, head_dim = 3, 40, 2, 16
    gammas = np.array([np.inf, 0.9, 0.4, 0.2])
    v = jax.random.normal(jax.random.key(0), (1, seq_len, heads, head_dim))
    q = jnp.zeros_like(v)

    def layer(carry, pair):
        out = attention(q, v, v, espa=(pair[0], pair[1]), impl=impl)
        return carry, out

    pairs = jnp.stack([jnp.asarray(gammas[:-1], jnp.float32), jnp.asarray(gammas[1:], jnp.float32)], axis=1)
    _, outs = jax.jit(lambda p: jax.lax.scan(layer, 0.0, p))(pairs)
    for l in range(depth):
        a = _cholesky_attention(seq_len, gammas[l], gammas[l + 1])
        want = np.einsum("ts,bshd->bthd", a, np.asarray(v, np.float64))
        np.testing.assert_allclose(np.asarray(outs[l]), want, rtol=1e-4, atol=1e-5)
