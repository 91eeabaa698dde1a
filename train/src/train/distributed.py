"""Multi-host start-up: `jax.distributed.initialize` before anything touches devices.

Launch every process with the same flags plus its own `--process-id` and the shared
`--coordinator host:port` and `--num-processes`; or launch under a cluster JAX detects by itself
(SLURM, Open MPI, Kubernetes, Cloud TPU) with `JAX_COORDINATOR_ADDRESS` / `SKIPLESS_DISTRIBUTED=1`
set. Each process then loads only its rows of every batch.
"""

from __future__ import annotations

import os

_CLUSTER_ENV = ("JAX_COORDINATOR_ADDRESS", "SKIPLESS_DISTRIBUTED")


def wants_distributed(coordinator: str | None, num_processes: int | None, process_id: int | None) -> bool:
    """**Returns:** whether this launch is multi-process (flags given or a cluster variable set)."""
    flags = (coordinator, num_processes, process_id)
    if any(v is not None for v in flags) and not all(v is not None for v in flags):
        raise ValueError("multi-host needs all of --coordinator, --num-processes and --process-id (or none of them).")
    return coordinator is not None or any(os.environ.get(name) for name in _CLUSTER_ENV)


def initialize(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Calls `jax.distributed.initialize` (arguments left `None` are auto-detected by JAX)."""
    import jax

    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
