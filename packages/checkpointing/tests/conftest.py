"""Test set-up for this member: the XLA CPU hang guard, before any test module imports JAX."""

import os

# XLA CPU's multi-threaded Eigen pool can wedge on jax 0.10 (every thread idle, a program never
# finishes); single-threaded Eigen avoids it. Set before JAX is imported; an explicit setting wins.
if "--xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()
