"""Orbax checkpointing for skipless training runs.

Public API:

- `Checkpointer`: async manager saving an array pytree, the Grain iterator state and the config
  JSON per step; `max_to_keep`; restores onto any mesh; falls back past corrupt steps.
- `RestoredCheckpoint`: `(step, arrays, config)` returned by `Checkpointer.restore`.
- `CheckpointFallbackWarning`: emitted when the newest checkpoint is unreadable.
- `abstract_arrays`: build sharded `jax.ShapeDtypeStruct` restore targets.
- `quarantine_step`: move one step directory aside without deleting it.
"""

from .abstract import abstract_arrays
from .manager import CheckpointFallbackWarning, Checkpointer, RestoredCheckpoint
from .quarantine import quarantine_step

__all__ = [
    "Checkpointer",
    "RestoredCheckpoint",
    "CheckpointFallbackWarning",
    "abstract_arrays",
    "quarantine_step",
]
