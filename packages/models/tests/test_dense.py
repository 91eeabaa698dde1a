"""The CPU `matmul` / `weight_grad` (the hand-written backward of every dense layer) against float64 numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skipless_models.dense import dense
from skipless_models.ops.cpu import matmul, weight_grad


@pytest.mark.parametrize("d, f", [(3, 7), (7, 3), (5, 5)])  # x narrower, g narrower, equal widths
def test_matmul_value_and_gradients_match_float64_oracle(d, f):
    rng = np.random.default_rng(d * 10 + f)
    x = rng.standard_normal((11, d)).astype(np.float32)
    w = rng.standard_normal((d, f)).astype(np.float32)
    cot = rng.standard_normal((11, f)).astype(np.float32)
    y, vjp = jax.jit(lambda x, w: jax.vjp(matmul, x, w))(x, w)
    dx, dw = vjp(jnp.asarray(cot))
    x64, w64, c64 = (a.astype(np.float64) for a in (x, w, cot))
    np.testing.assert_allclose(np.asarray(y), x64 @ w64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dx), c64 @ w64.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dw), x64.T @ c64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.jit(weight_grad)(x, cot)), x64.T @ c64, rtol=1e-5, atol=1e-6)


def test_dense_gradients_match_autodiff_of_the_plain_formula_in_bfloat16_and_float32():
    """Through `dense` (bias, 3-D input, weight cast to the compute dtype): same values and dtypes as
    autodiff of `x @ W + b`."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 4)).astype(np.float32)
    w = rng.standard_normal((4, 9)).astype(np.float32)
    b = rng.standard_normal((9,)).astype(np.float32)
    cot = rng.standard_normal((2, 6, 9)).astype(np.float32)

    def plain(x, w, b):
        return (x.reshape(-1, 4) @ w.astype(x.dtype) + b.astype(x.dtype)).reshape(2, 6, 9)

    for dtype, tol in ((jnp.float32, 1e-6), (jnp.bfloat16, 2e-2)):
        xc = jnp.asarray(x, dtype)
        got = jax.grad(lambda *a: jnp.sum(dense(*a, matmul=matmul).astype(jnp.float32) * cot), argnums=(0, 1, 2))(xc, w, b)
        want = jax.grad(lambda *a: jnp.sum(plain(*a).astype(jnp.float32) * cot), argnums=(0, 1, 2))(xc, w, b)
        for g, h in zip(got, want):
            assert g.dtype == h.dtype and g.shape == h.shape
            np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(h, np.float32), rtol=tol, atol=tol)
