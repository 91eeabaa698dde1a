"""The `attention` interface: implementation choice, E-SPA on both paths, and clear errors on bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pallas_kernels import attention, attention_reference, espa_log_bias, espa_row_scale, pallas_backend


def _qkv(seq_len=24, heads=2, head_dim=16):
    keys = jax.random.split(jax.random.key(7), 3)
    return [jax.random.normal(key, (2, seq_len, heads, head_dim)) for key in keys]


def test_auto_uses_xla_on_cpu_and_pallas_matches_it():
    if jax.default_backend() != "cpu":
        pytest.skip("checks the CPU fallback")
    assert pallas_backend() == ("gpu", True)
    q, k, v = _qkv()
    gammas = (jnp.float32(0.7), jnp.float32(0.2))
    auto = attention(q, k, v, espa=gammas)
    xla = attention(q, k, v, espa=gammas, impl="xla")
    np.testing.assert_array_equal(np.asarray(auto), np.asarray(xla))  # same program: the XLA path
    want = attention_reference(q, k, v, bias=espa_log_bias(24, 0.7, 0.2), row_scale=espa_row_scale(24, 0.7, 0.2))
    np.testing.assert_allclose(np.asarray(xla), np.asarray(want), atol=1e-6)
    pallas = jax.jit(lambda q, k, v, g: attention(q, k, v, espa=g, impl="pallas"))(q, k, v, gammas)
    np.testing.assert_allclose(np.asarray(pallas), np.asarray(xla), atol=2e-5, rtol=2e-5)


def test_gammas_get_no_gradient_on_either_path():
    q, k, v = _qkv()
    for impl in ("xla", "pallas"):
        grad = jax.grad(lambda g: jnp.sum(attention(q, k, v, espa=(jnp.inf, g), impl=impl)))(jnp.float32(0.3))
        assert float(grad) == 0.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(impl="cuda"), "impl must be one of"),
        (dict(espa=(1.0, 0.5), bias=jnp.zeros((24, 24))), "either spa or bias"),
        (dict(espa=(1.0,)), "pair"),
        (dict(espa=(0.2, 0.5)), "0 < gamma < gamma_prev"),
        (dict(espa=(jnp.inf, 0.0)), "0 < gamma < gamma_prev"),
        (dict(bias=jnp.zeros((3, 24, 24)), impl="pallas"), "heads axis has size 3"),
        (dict(bias=jnp.zeros((24, 23)), impl="pallas"), "does not match sequence length"),
        (dict(row_scale=jnp.ones((5, 24)), impl="pallas"), "heads axis has size 5"),
    ],
)
def test_bad_input_gives_a_clear_error(kwargs, match):
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=match):
        attention(q, k, v, **kwargs)


def test_mismatched_qkv_shapes_are_rejected():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"\[B, T, H, D\]"):
        attention(q, k[:, :10], v, impl="pallas")


def test_non_power_of_two_block_is_rejected():
    from pallas_kernels import fused_attention

    q, k, v = _qkv()
    with pytest.raises(ValueError, match="powers of two"):
        fused_attention(q, k, v, block_q=48, interpret=True)


def test_auto_only_picks_kernels_verified_on_hardware(monkeypatch):
    import pallas_kernels.dispatch as dispatch

    monkeypatch.setattr(dispatch, "pallas_backend", lambda: ("gpu", False))
    assert dispatch.resolve_impl("auto") == "xla"  # compiled GPU kernels not yet verified
    monkeypatch.setattr(dispatch, "VERIFIED_COMPILED_BACKENDS", frozenset({"gpu"}))
    assert dispatch.resolve_impl("auto") == "pallas"
    monkeypatch.setattr(dispatch, "pallas_backend", lambda: ("gpu", True))
    assert dispatch.resolve_impl("auto") == "xla"  # never interpret mode by default
    assert dispatch.resolve_impl("pallas") == "pallas"
    with pytest.raises(ValueError, match="impl must be one of"):
        dispatch.resolve_impl("triton")


def test_without_a_triton_backend_pallas_falls_back_to_xla_with_one_warning(monkeypatch):
    import warnings

    import pallas_kernels.dispatch as dispatch

    monkeypatch.setattr(dispatch, "triton_status", lambda: (False, "jax 9.9 has no Pallas Triton backend"))
    dispatch._warn_fallback.cache_clear()
    q, k, v = _qkv()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = attention(q, k, v, espa=(0.7, 0.2), impl="pallas")
        second = attention(q, k, v, espa=(0.7, 0.2), impl="pallas")
    ours = [w for w in caught if "pallas_kernels" in str(w.message)]
    assert len(ours) == 1 and "XLA path" in str(ours[0].message) and "Mosaic GPU" in str(ours[0].message)
    xla = attention(q, k, v, espa=(0.7, 0.2), impl="xla")
    np.testing.assert_array_equal(np.asarray(first), np.asarray(xla))
    np.testing.assert_array_equal(np.asarray(second), np.asarray(xla))
    dispatch._warn_fallback.cache_clear()


def test_this_jax_has_the_triton_backend():
    import pallas_kernels.dispatch as dispatch

    assert dispatch.triton_status() == (True, "")
