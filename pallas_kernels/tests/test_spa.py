"""The JAX closed forms (`pallas_kernels.spa`) against their float64 oracle `sigprop` and numerical Cholesky factors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pallas_kernels import SpaSpec, attention, spa_log_bias, spa_row_scale
from pallas_kernels.spa import spa_bias_from_tables, spa_tables

sigprop = pytest.importorskip("sigprop")

LONG = 8192
ROWS = np.array([0, 1, 2, 3, 7, 100, 1000, 4095, 8190, 8191])  # query rows compared at T = 8192


@functools.partial(jax.jit, static_argnums=(1, 2))
def _rows_of_bias(spec, seq_len, causal, rows):
    tables = spa_tables(spec, seq_len, causal=causal)
    return spa_bias_from_tables(spec.kind, tables, rows[:, None], jnp.arange(seq_len)[None, :])


_scale = jax.jit(spa_row_scale, static_argnums=(1,), static_argnames=("causal",))
_bias = jax.jit(spa_log_bias, static_argnums=(1,), static_argnames=("causal",))


def _oracle(kind, seq_len, prev, level, causal=True, rows=None):
    if kind == "espa":
        return sigprop.espa_log_bias(seq_len, prev, level, rows=rows), sigprop.espa_row_scale(seq_len, prev, level)
    return (sigprop.uspa_log_bias(seq_len, prev, level, causal=causal, rows=rows),
            sigprop.uspa_row_scale(seq_len, prev, level, causal=causal))


def _assert_close(got, want, mask, what):
    """float32 against float64: |got − want| ≤ 1e−5 · max(1, |want|) where `mask`, finite there."""
    got, want = np.asarray(got, np.float64)[mask], want[mask]
    assert np.isfinite(got).all(), f"{what}: non-finite entries"
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    assert err.max() <= 1e-5, f"{what}: worst error {err.max():.2e}"


SCHEDULES = [
    ("espa", lambda depth: sigprop.espa_gammas(depth, 0.005)),
    ("espa", lambda depth: sigprop.espa_gammas(depth, 0.2)),
    ("uspa", lambda depth: sigprop.uspa_rhos(depth, 0.3)),
    ("uspa", lambda depth: sigprop.uspa_rhos(depth, 0.8)),
]


@pytest.mark.parametrize("kind,schedule", SCHEDULES)
def test_every_layer_matches_sigprop_at_long_context(kind, schedule):
    """Every layer of a 72-layer schedule at T = 8192: bias on and below the diagonal and row scale within
    1e−5 (relative where |log A| > 1) of the float64 theory, all finite."""
    levels = schedule(72)
    lower = np.arange(LONG)[None, :] <= ROWS[:, None]
    for layer in range(1, len(levels)):
        prev, level = float(levels[layer - 1]), float(levels[layer])
        spec = SpaSpec.from_levels(kind, prev, level)
        want_bias, want_scale = _oracle(kind, LONG, prev, level, rows=ROWS)
        _assert_close(_rows_of_bias(spec, LONG, True, jnp.asarray(ROWS)), want_bias, lower, f"{kind} layer {layer} bias")
        _assert_close(_scale(spec, LONG), want_scale, np.ones(LONG, bool), f"{kind} layer {layer} scale")


@pytest.mark.parametrize("seq_len", [1, 2, 3, 24])
@pytest.mark.parametrize("kind,prev,level", [("espa", np.inf, 0.8), ("espa", 0.8, 0.3), ("espa", 0.05, 0.01),
                                             ("uspa", 0.0, 0.2), ("uspa", 0.3, 0.45), ("uspa", 0.79, 0.8)])
def test_short_lengths_match_the_numerical_cholesky_ratio(seq_len, kind, prev, level):
    """A_l = L_l L_{l−1}⁻¹ from numpy's Cholesky factors of the target kernels (float64), against exp(bias)."""
    i = np.arange(seq_len)
    if kind == "espa":
        kernel = lambda g: np.exp(-g * np.abs(i[:, None] - i[None, :])) if np.isfinite(g) else np.eye(seq_len)  # noqa: E731
    else:
        kernel = lambda r: (1 - r) * np.eye(seq_len) + r  # noqa: E731
    want = np.linalg.cholesky(kernel(level)) @ np.linalg.inv(np.linalg.cholesky(kernel(prev)))
    spec = SpaSpec.from_levels(kind, prev, level)
    bias = np.asarray(_bias(spec, seq_len), np.float64)
    lower = i[None, :] <= i[:, None]
    np.testing.assert_allclose(np.exp(bias[lower]), want[lower], rtol=2e-6, atol=1e-7)
    assert np.all(bias[~lower] <= -1e29)
    np.testing.assert_allclose(np.asarray(_scale(spec, seq_len)), want.sum(axis=1), rtol=2e-6)


@pytest.mark.parametrize("seq_len", [1, 5, 300])
def test_non_causal_uspa_matches_sigprop_and_non_causal_espa_is_refused(seq_len):
    spec = SpaSpec.from_levels("uspa", 0.3, 0.45)
    want_bias, want_scale = _oracle("uspa", seq_len, 0.3, 0.45, causal=False)
    everywhere = np.ones((seq_len, seq_len), bool)
    _assert_close(_bias(spec, seq_len, causal=False), want_bias, everywhere, "non-causal bias")
    _assert_close(_scale(spec, seq_len, causal=False), want_scale, np.ones(seq_len, bool), "non-causal scale")
    with pytest.raises(ValueError, match="non-causal E-SPA"):
        spa_log_bias(SpaSpec.from_levels("espa", 0.4, 0.2), seq_len, causal=False)


def test_log_bias_is_finite_where_the_matrix_underflows():
    bias = np.asarray(_bias(SpaSpec.from_levels("espa", 0.6, 0.5), 2048))
    assert np.all(np.isfinite(bias)) and bias[-1, 1] < -900  # A[i, 1] ≈ e^{−1000}: zero in float64 too


@pytest.mark.parametrize("kind,levels", [("espa", [np.inf, 0.9, 0.4, 0.2]), ("uspa", [0.0, 0.2, 0.35, 0.5])])
@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_zero_queries_give_a_times_v_with_numbers_traced_in_a_scan(kind, levels, impl):
    """W_Q = 0 at init: each layer's output is A_l v exactly; the numbers arrive as scan-traced scalars."""
    depth, seq_len, heads, head_dim = 3, 40, 2, 16
    v = jax.random.normal(jax.random.key(0), (1, seq_len, heads, head_dim))
    q = jnp.zeros_like(v)
    specs = [SpaSpec.from_levels(kind, levels[l], levels[l + 1]) for l in range(depth)]
    stacked = SpaSpec(level=jnp.asarray([s.level for s in specs], jnp.float32),
                      step=jnp.asarray([s.step for s in specs], jnp.float32), kind=kind)

    def layer(carry, spec):
        return carry, attention(q, v, v, spa=spec, impl=impl)

    _, outs = jax.jit(lambda s: jax.lax.scan(layer, 0.0, s))(stacked)
    for l in range(depth):
        a = np.exp(np.asarray(_oracle(kind, seq_len, levels[l], levels[l + 1])[0]))
        want = np.einsum("ts,bshd->bthd", a, np.asarray(v, np.float64))
        np.testing.assert_allclose(np.asarray(outs[l]), want, rtol=1e-4, atol=1e-5)


def test_levels_are_checked():
    with pytest.raises(ValueError, match="E-SPA needs"):
        SpaSpec.from_levels("espa", 0.2, 0.5)
    with pytest.raises(ValueError, match="U-SPA needs"):
        SpaSpec.from_levels("uspa", 0.5, 0.2)
    with pytest.raises(ValueError, match="unknown SPA kind"):
        SpaSpec(level=0.1, step=0.1, kind="alibi")
