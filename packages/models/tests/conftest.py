"""Shared fixtures: tiny configurations and a fast compile path for the many small programs tested."""

from __future__ import annotations

import os

# XLA CPU's multi-threaded Eigen pool can wedge on jax 0.10 (every thread idle, a program never
# finishes); single-threaded Eigen avoids it. Set before JAX is imported; an explicit setting wins.
if "--xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()

import equinox as eqx
import jax
import pytest

import skipless_models as sm

# Tests compile dozens of tiny programs; XLA's backend optimisations dominate their cost and do not
# change results beyond float rounding.
_FAST = {"xla_backend_optimization_level": 0}


def _compile_fast(fn, *args):
    """Compile `fn(*args)` (arrays and modules mixed) once with fast XLA options and run it."""
    dyn, static = eqx.partition(args, eqx.is_array)
    jitted = jax.jit(lambda d: fn(*eqx.combine(d, static)))
    return jitted.lower(dyn).compile(compiler_options=_FAST)(dyn)


@pytest.fixture
def run_fast():
    return _compile_fast


@pytest.fixture
def tiny():
    """A tiny vanilla E-SPA config; override fields with `tiny(**kw)`."""

    def make(**kw):
        base = dict(vocab_size=23, width=32, depth=3, heads=4, seq_len=8)
        base.update(kw)
        return sm.ModelConfig(**base)

    return make
