"""The fused QKV projection's split, whose backward is hand-written."""

import jax
import numpy as np

from skipless_models.attention import split_qkv


def test_split_qkv_gradient_equals_autodiff_of_slices():
    """The fused-projection split's stacked backward against autodiff through three plain slices."""
    rng = np.random.default_rng(2)
    qkv = rng.standard_normal((2, 5, 3, 3, 4)).astype(np.float32)
    cot = [rng.standard_normal((2, 5, 3, 4)).astype(np.float32) for _ in range(3)]

    def weighted(split):
        return lambda a: sum(jax.numpy.sum(c * x) for c, x in zip(cot, split(a)))

    plain = weighted(lambda a: (a[:, :, :, 0], a[:, :, :, 1], a[:, :, :, 2]))
    for got, want in zip(split_qkv(qkv), (qkv[:, :, :, i] for i in range(3))):
        np.testing.assert_array_equal(np.asarray(got), want)
    np.testing.assert_array_equal(np.asarray(jax.grad(weighted(split_qkv))(qkv)), np.asarray(jax.grad(plain)(qkv)))
