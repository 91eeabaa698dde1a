"""Closed-form U-SPA against numpy's numerical Cholesky factors and symmetric square roots (float64)."""

import numpy as np
import pytest

import sigprop

PAIRS = [(0.0, 0.05), (0.1, 0.3), (0.5, 0.6), (0.7955, 0.8), (0.95, 0.99)]


def _uniform(seq_len, rho):
    return (1.0 - rho) * np.eye(seq_len) + rho * np.ones((seq_len, seq_len))


@pytest.mark.parametrize("seq_len", [1, 2, 7, 64, 512])
@pytest.mark.parametrize("rho", [0.0, 0.05, 0.3, 0.8, 0.99])
def test_cholesky_factor_and_inverse_match_numpy(seq_len, rho):
    numerical = np.linalg.cholesky(_uniform(seq_len, rho))
    np.testing.assert_allclose(sigprop.uspa_cholesky(seq_len, rho), numerical, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(sigprop.uspa_cholesky_inverse(seq_len, rho), np.linalg.inv(numerical), rtol=1e-10,
                               atol=1e-11)


@pytest.mark.parametrize("seq_len", [1, 2, 3, 40, 256])
@pytest.mark.parametrize("rho_prev,rho", PAIRS)
def test_attention_is_the_numerical_cholesky_ratio(seq_len, rho_prev, rho):
    want = np.linalg.cholesky(_uniform(seq_len, rho)) @ np.linalg.inv(np.linalg.cholesky(_uniform(seq_len, rho_prev)))
    got = sigprop.uspa_attention(seq_len, rho_prev, rho)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sigprop.uspa_row_scale(seq_len, rho_prev, rho), want.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(got @ _uniform(seq_len, rho_prev) @ got.T, _uniform(seq_len, rho), atol=1e-11)


def test_entries_are_positive_and_independent_of_the_length():
    # Causal attention never sees the future: the first 300 rows at T = 8192 are the matrix at T = 300.
    rhos = sigprop.uspa_rhos(72, 0.8)
    rows = np.array([0, 1, 2, 150, 299])
    for prev, rho in zip(rhos[:-1], rhos[1:]):
        long = sigprop.uspa_attention(8192, prev, rho, rows=rows)
        short = sigprop.uspa_attention(300, prev, rho, rows=rows)
        np.testing.assert_allclose(long[:, :300], short, rtol=1e-12, atol=0)
        vec = sigprop.uspa_vectors(8192, prev, rho)
        assert (vec["col"][:-1] > 0).all() and (vec["row"][:-1] >= 0).all() and (vec["diag"] > 0).all()
        bias = sigprop.uspa_log_bias(8192, prev, rho, rows=np.array([8191]))
        assert np.isfinite(bias).all()


@pytest.mark.parametrize("seq_len", [1, 5, 33])
@pytest.mark.parametrize("rho_prev,rho", PAIRS)
def test_non_causal_is_the_symmetric_square_root_ratio(seq_len, rho_prev, rho):
    want = sigprop.spa_matrix(_uniform(seq_len, rho_prev), _uniform(seq_len, rho), causal=False)
    got = sigprop.uspa_attention(seq_len, rho_prev, rho, causal=False)
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert (got > 0).all()
    np.testing.assert_allclose(sigprop.uspa_row_scale(seq_len, rho_prev, rho, causal=False), want.sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize("call", [
    lambda: sigprop.uspa_attention(8, 0.3, 0.3),
    lambda: sigprop.uspa_attention(8, 0.4, 0.3),
    lambda: sigprop.uspa_attention(0, 0.0, 0.3),
    lambda: sigprop.uspa_cholesky(8, 1.0),
])
def test_bad_inputs_raise_clear_errors(call):
    with pytest.raises(ValueError, match="ρ|rho|seq_len"):
        call()
