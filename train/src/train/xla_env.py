"""XLA runtime flags that must be in place before JAX starts (this module never imports JAX).

XLA CPU's multi-threaded Eigen pool intermittently wedges on jax 0.10 here: every thread idle, the
first train step never finishes (seen with the cpu-tiny preset under load; the same hang is reported
upstream for other JAX programs). Single-threaded Eigen avoids it. A user's explicit setting wins.
"""

from __future__ import annotations

import os

_EIGEN_POOL = "--xla_cpu_multi_thread_eigen"


def avoid_cpu_eigen_pool_hang() -> None:
    """Adds `--xla_cpu_multi_thread_eigen=false` to `XLA_FLAGS` unless it is already set either way."""
    flags = os.environ.get("XLA_FLAGS", "")
    if _EIGEN_POOL not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {_EIGEN_POOL}=false".strip()
