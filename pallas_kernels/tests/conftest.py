"""Shared oracle comparison: run a kernel and the XLA reference on the same inputs, forward and backward."""

from __future__ import annotations

import os

# XLA CPU's multi-threaded Eigen pool can wedge on jax 0.10 (every thread idle, a program never
# finishes); single-threaded Eigen avoids it. Set before JAX is imported; an explicit setting wins.
if "--xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pallas_kernels import SpaSpec, attention_reference, fused_attention, spa_log_bias, spa_row_scale

# Generated-bias sources: a mid-depth E-SPA layer (γ_{l−1}, γ_l) and U-SPA layer (ρ_{l−1}, ρ_l).
SPECS = {"espa": SpaSpec.from_levels("espa", 0.35, 0.12), "uspa": SpaSpec.from_levels("uspa", 0.3, 0.45)}


def value_and_grads(fn, args, cotangent):
    """`fn(*args)` and the gradients of `<fn(*args), cotangent>` w.r.t. every arg, in one compiled call."""

    def run(*a):
        out, pullback = jax.vjp(fn, *a)
        return out, pullback(cotangent.astype(out.dtype))

    return jax.jit(run)(*args)


def random_problem(seed: int, batch: int, seq_len: int, heads: int, head_dim: int, source: str, dtype=jnp.float32,
                   bias_shape: str = "HTT"):
    """Inputs for one comparison. **Returns:** (kernel_fn_kwargs_builder, reference builder, args, cotangent)."""
    keys = jax.random.split(jax.random.key(seed), 6)
    q, k, v = (jax.random.normal(keys[i], (batch, seq_len, heads, head_dim), jnp.float32).astype(dtype) for i in range(3))
    cotangent = jax.random.normal(keys[3], (batch, seq_len, heads, head_dim), jnp.float32)
    args = [q, k, v]
    if source == "array":
        shape = {"TT": (seq_len, seq_len), "HTT": (heads, seq_len, seq_len), "BHTT": (batch, heads, seq_len, seq_len),
                 "B1TT": (batch, 1, seq_len, seq_len)}[bias_shape]
        args.append(jax.random.normal(keys[4], shape, jnp.float32))
        args.append(0.5 + jax.random.uniform(keys[5], (heads, seq_len), jnp.float32))
    return args, cotangent


def kernel_fn(source: str, attend=None, **kernel_kwargs):
    """The fused kernel (or `attend`, another implementation taking `bias` / `row_scale` arrays) as a
    function of the problem's args."""
    if attend is not None:
        if source in SPECS:
            causal = kernel_kwargs.get("causal", True)
            return lambda q, k, v: attend(q, k, v, bias=spa_log_bias(SPECS[source], q.shape[1], causal=causal),
                                          row_scale=spa_row_scale(SPECS[source], q.shape[1], causal=causal),
                                          **kernel_kwargs)
        if source == "array":
            return lambda q, k, v, bias, scale: attend(q, k, v, bias=bias, row_scale=scale, **kernel_kwargs)
        return lambda q, k, v: attend(q, k, v, **kernel_kwargs)
    if source == "array":
        return lambda q, k, v, bias, scale: fused_attention(q, k, v, bias=bias, row_scale=scale, **kernel_kwargs)
    if source in SPECS:
        return lambda q, k, v: fused_attention(q, k, v, spa=SPECS[source], **kernel_kwargs)
    return lambda q, k, v: fused_attention(q, k, v, **kernel_kwargs)


def reference_fn(source: str, seq_len: int, causal: bool = True):
    """The XLA reference as a function of the problem's args (computed in float32)."""
    up = lambda xs: [x.astype(jnp.float32) for x in xs]  # noqa: E731
    if source == "array":
        return lambda q, k, v, bias, scale: attention_reference(*up([q, k, v]), bias=bias, row_scale=scale, causal=causal)
    if source in SPECS:
        bias = spa_log_bias(SPECS[source], seq_len, causal=causal)
        scale = spa_row_scale(SPECS[source], seq_len, causal=causal)
        return lambda q, k, v: attention_reference(*up([q, k, v]), bias=bias, row_scale=scale, causal=causal)
    return lambda q, k, v: attention_reference(*up([q, k, v]), causal=causal)


def assert_matches_reference(source: str, args, cotangent, *, atol: float, causal: bool = True, **kernel_kwargs):
    """Forward output and every gradient of the kernel equal the reference's within `atol` (and `atol` relative)."""
    seq_len = args[0].shape[1]
    out, grads = value_and_grads(kernel_fn(source, causal=causal, **kernel_kwargs), args, cotangent)
    ref_args = [a.astype(jnp.float32) for a in args]
    with jax.default_matmul_precision("highest"):  # XLA on GPU would otherwise use TF32 for float32 matmuls
        ref_out, ref_grads = value_and_grads(reference_fn(source, seq_len, causal), ref_args, cotangent)
    names = ["out", "dq", "dk", "dv", "dbias", "drow_scale"]
    for name, got, want in zip(names, [out, *grads], [ref_out, *ref_grads]):
        assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
        got = np.asarray(got, np.float32)
        want = np.asarray(want, np.float32)
        assert np.all(np.isfinite(got)), f"{name}: non-finite values"
        np.testing.assert_allclose(got, want, atol=atol, rtol=atol, err_msg=name)


@pytest.fixture
def check():
    return assert_matches_reference


@pytest.fixture
def problem():
    return random_problem
