"""`attention_xla` (hand-written backward) against `attention_reference` (autodiff): forward and all gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pallas_kernels import (
    SpaSpec,
    attention,
    attention_reference,
    attention_xla,
    espa_log_bias,
    espa_row_scale,
    spa_log_bias,
    spa_row_scale,
)

F32_TOL = 2e-5
BF16_TOL = 3e-2

# Lengths with a head dim and a bias broadcast shape each (the bias gradient must come back in that shape).
CASES = {1: (16, "TT"), 7: (24, "HTT"), 128: (32, "BHTT"), 200: (64, "B1TT")}


@pytest.mark.parametrize("source", ["none", "array", "espa", "uspa"])
@pytest.mark.parametrize("seq_len", sorted(CASES))
def test_forward_and_gradients_match_reference(check, problem, seq_len, source):
    head_dim, bias_shape = CASES[seq_len]
    args, cot = problem(seq_len, 2, seq_len, 3, head_dim, source, bias_shape=bias_shape)
    check(source, args, cot, atol=F32_TOL, attend=attention_xla)


@pytest.mark.parametrize("causal", [True, False])
def test_non_causal_and_causal_with_explicit_bias(check, problem, causal):
    args, cot = problem(5, 2, 50, 2, 16, "array", bias_shape="TT")
    check("array", args, cot, atol=F32_TOL, causal=causal, attend=attention_xla)


def test_bfloat16_inputs(check, problem):
    args, cot = problem(11, 2, 100, 2, 32, "array", dtype=jnp.bfloat16)
    check("array", args, cot, atol=BF16_TOL, attend=attention_xla)


@pytest.mark.parametrize("scale_shape", ["T", "BHT", "1T"])
def test_row_scale_shapes_and_sm_scale(scale_shape):
    """Row scales of every broadcast shape get gradients of their own shape; a custom sm_scale is honoured."""
    b, t, h, d = 2, 33, 3, 8
    keys = jax.random.split(jax.random.key(3), 6)
    q, k, v, g = (jax.random.normal(keys[i], (b, t, h, d)) for i in range(4))
    bias = jax.random.normal(keys[4], (h, t, t))
    shape = {"T": (t,), "BHT": (b, h, t), "1T": (1, t)}[scale_shape]
    scale = 0.5 + jax.random.uniform(keys[5], shape)

    def loss(fn):
        return lambda *a: jnp.sum(fn(*a[:3], bias=a[3], row_scale=a[4], sm_scale=0.3) * g)

    got = jax.jit(jax.value_and_grad(loss(attention_xla), argnums=range(5)))(q, k, v, bias, scale)
    want = jax.jit(jax.value_and_grad(loss(attention_reference), argnums=range(5)))(q, k, v, bias, scale)
    np.testing.assert_allclose(got[0], want[0], rtol=F32_TOL, atol=F32_TOL)
    for name, x, y in zip(["dq", "dk", "dv", "dbias", "drow_scale"], got[1], want[1]):
        assert x.shape == y.shape, name
        np.testing.assert_allclose(x, y, rtol=F32_TOL, atol=F32_TOL, err_msg=name)


def test_keys_longer_than_queries_non_causal():
    b, t, s, h, d = 2, 5, 9, 2, 8
    keys = jax.random.split(jax.random.key(4), 4)
    q = jax.random.normal(keys[0], (b, t, h, d))
    k, v = (jax.random.normal(keys[i], (b, s, h, d)) for i in (1, 2))
    g = jax.random.normal(keys[3], (b, t, h, d))
    for causal in (False, True):
        got = jax.vjp(lambda *a: attention_xla(*a, causal=causal), q, k, v)
        want = jax.vjp(lambda *a: attention_reference(*a, causal=causal), q, k, v)
        np.testing.assert_allclose(got[0], want[0], rtol=F32_TOL, atol=F32_TOL)
        for x, y in zip(got[1](g), want[1](g)):
            np.testing.assert_allclose(x, y, rtol=F32_TOL, atol=F32_TOL)


def test_dispatch_xla_uses_it_and_second_order_fails_clearly():
    """impl="xla" is this implementation (same numbers), and mismatched shapes get a clear error."""
    q = jax.random.normal(jax.random.key(0), (1, 4, 2, 8))
    np.testing.assert_array_equal(attention(q, q, q, impl="xla"), attention_xla(q, q, q))
    with pytest.raises(ValueError, match="must agree"):
        attention_xla(q, q[:, :, :1], q[:, :, :1])


def test_float32_error_against_a_float64_oracle_is_close_to_the_references():
    """In float32 both implementations round differently; against the reference evaluated in float64 on the
    same inputs, attention_xla's error stays within a small factor of the reference's own float32 error."""
    b, t, h, d = 3, 16, 4, 8
    keys = jax.random.split(jax.random.key(0), 4)
    q, k, v, g = (2.0 * jax.random.normal(key, (b, t, h, d)) for key in keys)
    bias, scale = espa_log_bias(t, 0.35, 0.12), espa_row_scale(t, 0.35, 0.12)

    def outputs(fn, dtype):
        args = [x.astype(dtype) for x in (q, k, v)]
        out, pullback = jax.vjp(lambda *a: fn(*a, bias=bias.astype(dtype), row_scale=scale.astype(dtype)), *args)
        return [np.asarray(x, np.float64) for x in (out, *pullback(g.astype(dtype)))]

    with jax.enable_x64(True):
        oracle = outputs(attention_reference, jnp.float64)
    for name, ref, got, want in zip(["out", "dq", "dk", "dv"], outputs(attention_reference, jnp.float32),
                                    outputs(attention_xla, jnp.float32), oracle):
        ref_error, error = np.max(np.abs(ref - want)), np.max(np.abs(got - want))
        assert error <= max(4 * ref_error, 1e-6), f"{name}: error {error:.2e} vs the reference's {ref_error:.2e}"


@pytest.mark.parametrize("source", ["espa", "uspa"])
@pytest.mark.parametrize("causal", [True, False])
def test_generated_spa_path_matches_reference_and_keeps_no_bias(problem, source, causal):
    """`spa=` builds the bias inside the forward pass: same numbers as the reference on the materialised bias,
    and its pullback keeps no `[T, T]` array (the explicit-bias path keeps its bias, so this check can fail)."""
    specs = {"espa": SpaSpec.from_levels("espa", 0.35, 0.12), "uspa": SpaSpec.from_levels("uspa", 0.3, 0.45)}
    if source == "espa" and not causal:
        with pytest.raises(ValueError, match="non-causal E-SPA"):
            attention_xla(*problem(0, 1, 8, 1, 8, "none")[0], spa=specs["espa"], causal=False)
        return
    t = 37
    args, cot = problem(8, 2, t, 2, 16, "none")
    got = jax.vjp(lambda *a: attention_xla(*a, spa=specs[source], causal=causal), *args)
    bias, scale = (fn(specs[source], t, causal=causal) for fn in (spa_log_bias, spa_row_scale))
    want = jax.vjp(lambda *a: attention_reference(*a, bias=bias, row_scale=scale, causal=causal), *args)
    np.testing.assert_allclose(got[0], want[0], rtol=F32_TOL, atol=F32_TOL)
    for x, y in zip(got[1](cot), want[1](cot)):
        np.testing.assert_allclose(x, y, rtol=F32_TOL, atol=F32_TOL)
    kept = [leaf.shape for leaf in jax.tree_util.tree_leaves(got[1])]
    assert (t, t) not in kept, kept
    explicit = jax.vjp(lambda *a: attention_xla(*a, bias=bias, row_scale=scale, causal=causal), *args)[1]
    assert (t, t) in [leaf.shape for leaf in jax.tree_util.tree_leaves(explicit)]
