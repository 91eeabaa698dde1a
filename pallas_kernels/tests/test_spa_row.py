"""One query row of SPA attention (`spa_row`, for decoding with a cache) against the full `[T, T]` matrices and sigprop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pallas_kernels import SpaSpec, spa_log_bias, spa_row_scale
from pallas_kernels.spa import MASK_VALUE, spa_row

LAYERS = [("espa", np.inf, 0.8), ("espa", 0.8, 0.3), ("espa", 0.05, 0.01), ("espa", 0.0051, 0.005),
          ("uspa", 0.0, 0.2), ("uspa", 0.3, 0.45), ("uspa", 0.79, 0.8)]


@pytest.mark.parametrize("kind,prev,level", LAYERS)
def test_every_row_equals_the_full_matrix(kind, prev, level):
    """Rows 0 … T−1 (traced positions, batched as `[2, T]`) against `spa_log_bias` / `spa_row_scale` at T = 37:
    equal to 1e-6 on and below the diagonal, `MASK_VALUE` above it; the cache may be longer than the row's T."""
    t, keys = 37, 45
    spec = SpaSpec.from_levels(kind, prev, level)
    full_bias, full_scale = np.asarray(spa_log_bias(spec, t)), np.asarray(spa_row_scale(spec, t))
    positions = jnp.stack([jnp.arange(t), jnp.arange(t)[::-1]])
    bias, scale = jax.jit(spa_row, static_argnums=2)(spec, positions, keys)
    assert bias.shape == (2, t, keys) and scale.shape == (2, t)
    for row_bias, row_scale, order in zip(np.asarray(bias), np.asarray(scale), (slice(None), slice(None, None, -1))):
        row_bias, row_scale = row_bias[order], row_scale[order]
        lower = np.tril(np.ones((t, t), bool))
        np.testing.assert_allclose(row_bias[:, :t][lower], full_bias[lower], rtol=1e-6, atol=1e-6)
        assert (row_bias[:, :t][~lower] == MASK_VALUE).all() and (row_bias[:, t:] == MASK_VALUE).all()
        np.testing.assert_allclose(row_scale, full_scale, rtol=1e-6)


@pytest.mark.parametrize("kind,prev,level", LAYERS)
def test_rows_at_long_context_match_sigprop(kind, prev, level):
    """Far rows (up to 4095) against sigprop's float64 closed forms: 1e-5 relative where |log A| > 1."""
    sigprop = pytest.importorskip("sigprop")
    t, rows = 4096, np.array([0, 1, 2, 5, 100, 2047, 4095])
    if kind == "espa":
        want_bias = sigprop.espa_log_bias(t, prev, level, rows=rows)
        want_scale = sigprop.espa_row_scale(t, prev, level)[rows]
    else:
        want_bias = sigprop.uspa_log_bias(t, prev, level, causal=True, rows=rows)
        want_scale = sigprop.uspa_row_scale(t, prev, level, causal=True)[rows]
    bias, scale = spa_row(SpaSpec.from_levels(kind, prev, level), jnp.asarray(rows), t)
    lower = np.arange(t)[None, :] <= rows[:, None]
    got = np.asarray(bias, np.float64)[lower]
    err = np.abs(got - want_bias[lower]) / np.maximum(1.0, np.abs(want_bias[lower]))
    assert np.isfinite(got).all() and err.max() <= 1e-5, f"worst bias error {err.max():.2e}"
    np.testing.assert_allclose(np.asarray(scale, np.float64), want_scale, rtol=1e-5)
