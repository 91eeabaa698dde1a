"""LayerNorm / RMSNorm (plain, and the CPU operations' hand-written backward) against the textbook formula
differentiated in float64."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skipless_models import CPU_OPS, PLAIN_OPS, Norm


def _plain(x, gain, bias, centre):
    """Oracle: the textbook formula, left to autodiff."""
    if centre:
        x = x - jnp.mean(x, axis=-1, keepdims=True)
    y = x / jnp.sqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + 1e-6) * gain
    return y if bias is None else y + bias


@pytest.mark.parametrize("ops", [PLAIN_OPS, CPU_OPS], ids=lambda o: o.name)
@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
def test_value_and_gradients_match_the_plain_formula(kind, ops):
    d = 24
    norm = Norm(d, kind)
    keys = jax.random.split(jax.random.key(0), 4)
    norm = eqx.tree_at(lambda n: n.gain, norm, 1.0 + 0.3 * jax.random.normal(keys[0], (d,)))
    if kind == "layernorm":
        norm = eqx.tree_at(lambda n: n.bias, norm, jax.random.normal(keys[1], (d,)))
    x = 3.0 * jax.random.normal(keys[2], (2, 5, d)) + 1.5
    cot = jax.random.normal(keys[3], (2, 5, d))

    def loss(n, x_):
        return jnp.sum(n(x_, ops=ops) * cot)

    value, (g_norm, g_x) = jax.value_and_grad(loss, argnums=(0, 1))(norm, x)
    with jax.enable_x64(True):
        args64 = [None if a is None else np.asarray(a, np.float64) for a in (x, norm.gain, norm.bias)]

        def oracle(x_, gain, bias):
            return jnp.sum(_plain(x_, gain, bias, kind == "layernorm") * np.asarray(cot, np.float64))

        want_value, want = jax.value_and_grad(oracle, argnums=(0, 1, 2) if kind == "layernorm" else (0, 1))(*args64)
    np.testing.assert_allclose(float(value), float(want_value), rtol=1e-5)
    np.testing.assert_allclose(g_x, want[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g_norm.gain, want[1], rtol=1e-4, atol=1e-5)
    if kind == "layernorm":
        np.testing.assert_allclose(g_norm.bias, want[2], rtol=1e-4, atol=1e-5)
    else:
        assert g_norm.bias is None


@pytest.mark.parametrize("ops", [PLAIN_OPS, CPU_OPS], ids=lambda o: o.name)
def test_bfloat16_activations_keep_their_dtype_and_float32_statistics(ops):
    norm = Norm(16, "layernorm")
    x = (100.0 + jax.random.normal(jax.random.key(1), (3, 16))).astype(jnp.bfloat16)
    y, pullback = jax.vjp(lambda x_: norm(x_, ops=ops), x)
    assert y.dtype == jnp.bfloat16 and pullback(jnp.ones_like(y))[0].dtype == jnp.bfloat16
    want = np.asarray(x, np.float32)
    want = (want - want.mean(-1, keepdims=True)) / want.std(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(y, np.float32), want, atol=0.05)
