"""bfloat16 compute with float32 parameters."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import skipless_models as sm


@pytest.mark.parametrize("block, attention", [("vanilla", "espa"), ("postln", "value_skipinit")])
def test_bf16_compute_tracks_float32(tiny, run_fast, block, attention):
    cfg32 = tiny(block=block, attention=attention, width=64, seq_len=16)
    cfg16 = cfg32.replace(compute_dtype="bfloat16")
    m32 = sm.build_model(cfg32, key=jax.random.key(0), verbose=False)
    m16 = sm.build_model(cfg16, key=jax.random.key(0), verbose=False)
    for a, b in zip(jax.tree.leaves(eqx.filter(m32, eqx.is_array)), jax.tree.leaves(eqx.filter(m16, eqx.is_array))):
        assert b.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    tokens = jax.random.randint(jax.random.key(1), (2, 17), 0, cfg32.vocab_size)
    vg = lambda m, t: eqx.filter_value_and_grad(sm.loss_fn, has_aux=True)(m, t)  # noqa: E731
    (l32, _), g32 = run_fast(vg, m32, tokens)
    (l16, _), g16 = run_fast(vg, m16, tokens)
    assert eqx.filter_eval_shape(lambda m, x: m(x), m16, tokens[:, :-1]).dtype == jnp.float32
    assert abs(float(l16) - float(l32)) < 0.05 * abs(float(l32))
    labels = jax.tree.leaves(sm.param_groups(m32))
    for label, a, b in zip(labels, jax.tree.leaves(g32), jax.tree.leaves(g16)):
        assert b.dtype == jnp.float32
        a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
        if np.linalg.norm(a) > 0:  # bf16 keeps ~3 significant digits: the gradient direction survives
            assert np.linalg.norm(a - b) < 0.1 * np.linalg.norm(a), label
