"""Process-level settings that must be in place before JAX starts (this module never imports JAX).

- XLA CPU's multi-threaded Eigen pool intermittently wedged on jax 0.10 here: every thread idle, the
  first train step never finished (seen with the cpu-tiny preset under load; the same hang is reported
  upstream for other JAX programs). Single-threaded Eigen avoids it. A user's explicit setting wins.
- glibc's malloc hands XLA CPU's many short-lived activation buffers fresh 4 KiB pages, and the page
  faults and zero-fills cost about a quarter of a small model's step (measured with `evals.bench_step`).
  `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` makes malloc ask for transparent huge pages instead. glibc
  reads tunables only at process start, so entry points restart themselves once under it.
"""

from __future__ import annotations

import os
import sys

_EIGEN_POOL = "--xla_cpu_multi_thread_eigen"
HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb=1"
MALLOC_ENV = "SKIPLESS_MALLOC"  # "default" opts out of the huge-page restart


def avoid_cpu_eigen_pool_hang() -> None:
    """Adds `--xla_cpu_multi_thread_eigen=false` to `XLA_FLAGS` unless it is already set either way."""
    flags = os.environ.get("XLA_FLAGS", "")
    if _EIGEN_POOL not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {_EIGEN_POOL}=false".strip()


def hugepage_malloc_active() -> bool:
    """Whether this process was started with `GLIBC_TUNABLES` holding `glibc.malloc.hugetlb=1`."""
    return HUGEPAGE_TUNABLE in os.environ.get("GLIBC_TUNABLES", "").split(":")


def malloc_note() -> str:
    """One line for logs: which malloc setting this process runs under."""
    return HUGEPAGE_TUNABLE if hugepage_malloc_active() else "default malloc"


def reexec_with_hugepage_malloc(module: str, argv: list[str]) -> None:
    """Restarts `python -m module *argv` under `GLIBC_TUNABLES=...:glibc.malloc.hugetlb=1`.

    Call it first thing in a module's `if __name__ == "__main__":` block (never from library code: it
    replaces the process). Does nothing off Linux, when the setting is already active, or when
    `SKIPLESS_MALLOC=default` is set. The process keeps its PID, so
    signals, exit codes and multi-process launchers are unaffected.
    """
    if (not sys.platform.startswith("linux") or hugepage_malloc_active()
            or os.environ.get(MALLOC_ENV, "").lower() == "default"):
        return
    env = dict(os.environ)
    env["GLIBC_TUNABLES"] = ":".join(x for x in (env.get("GLIBC_TUNABLES"), HUGEPAGE_TUNABLE) if x)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)
