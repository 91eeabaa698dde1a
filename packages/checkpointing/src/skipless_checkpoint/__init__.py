"""Orbax checkpointing for skipless training runs.

Public API:

- `Checkpointer`: async manager saving an array pytree, the Grain iterator state and the config
  JSON per step, each step sealed with content checksums; `max_to_keep`; restores onto any mesh;
  verifies before reading and falls back to the newest step that verifies; a read-only mode.
- `RestoredCheckpoint`: `(step, arrays, config, skipped)` returned by `Checkpointer.restore`.
- `CheckpointFallbackWarning`: emitted when newer steps failed verification.
- `CheckpointIntegrityError`: no step (or not the requested one) verifies or restores.
- `abstract_arrays`: build sharded `jax.ShapeDtypeStruct` restore targets.
- `write_checksums`, `verify_checksums`, `CHECKSUM_FILE`: the per-step `checksums.sha256`.
- `quarantine_step`: move one step directory aside without deleting it.
"""

from .abstract import abstract_arrays
from .checksums import CHECKSUM_FILE, verify_checksums, write_checksums
from .manager import CheckpointFallbackWarning, CheckpointIntegrityError, Checkpointer, RestoredCheckpoint
from .quarantine import quarantine_step

__all__ = [
    "Checkpointer",
    "RestoredCheckpoint",
    "CheckpointFallbackWarning",
    "CheckpointIntegrityError",
    "abstract_arrays",
    "CHECKSUM_FILE",
    "verify_checksums",
    "write_checksums",
    "quarantine_step",
]
