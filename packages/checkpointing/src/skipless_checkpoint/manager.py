"""`Checkpointer`: an async Orbax manager for arrays, the data iterator and the config."""

import dataclasses
import pathlib
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

from .quarantine import quarantine_step

_ARRAYS, _DATA, _CONFIG = "arrays", "data", "config"


class CheckpointFallbackWarning(UserWarning):
    """The newest checkpoint could not be read; an older one was restored instead."""


@dataclasses.dataclass(frozen=True)
class RestoredCheckpoint:
    """What `Checkpointer.restore` read back.

    **Fields:**

    - `step`: the step the checkpoint was saved at.
    - `arrays`: the array pytree, placed on the shardings of the abstract target.
    - `config`: the JSON-able dict saved next to it.
    """

    step: int
    arrays: Any
    config: dict


class Checkpointer:
    """Saves and restores training state under `directory/<step>/`.

    Each step holds three items written together: `arrays` (any pytree of `jax.Array`:
    parameters, optimiser state, step counter), `data` (the Grain iterator state, one JSON file
    per process, so data resumes exactly) and `config` (a JSON dict). Saves are asynchronous:
    `save` returns once device buffers are copied and the write finishes in the background.
    Steps whose write never finished (killed mid-save) are invisible; a step that fails to
    restore while an older one restores is moved to `directory/corrupt/` (kept, not deleted) and
    the older one is used, with a `CheckpointFallbackWarning`. When no step restores, nothing is
    moved (the restore target, not the files, is then the likely problem).

    **Arguments:**

    - `directory`: folder of the checkpoints (created if missing).
    - `max_to_keep`: how many most recent steps to keep; older ones are deleted.
    - `async_save`: write in a background thread (default) or block in `save`.
    """

    def __init__(self, directory: str | pathlib.Path, *, max_to_keep: int = 3, async_save: bool = True):
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep={max_to_keep} must be >= 1; pass a positive count of checkpoints to keep.")
        self.directory = pathlib.Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def all_steps(self) -> list[int]:
        """**Returns:** the sorted steps of all finished checkpoints on disk."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """**Returns:** the newest finished step, or `None` when there is none."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def save(
        self,
        step: int,
        arrays: Any,
        *,
        data_iterator: Any = None,
        config: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> bool:
        """Starts writing one checkpoint; returns before the write has finished.

        **Arguments:**

        - `step`: step number (directory name).
        - `arrays`: pytree of `jax.Array` leaves (no Equinox modules: partition them first).
        - `data_iterator`: a Grain `DatasetIterator`/`DataLoaderIterator` whose state is
            captured now, before `save` returns.
        - `config`: JSON-able dict stored beside the arrays.
        - `force`: save even if the manager's own policy would skip this step.

        **Returns:**

        `True` if a save was started, `False` if the step already exists on disk.
        """
        items = {_ARRAYS: ocp.args.StandardSave(arrays), _CONFIG: ocp.args.JsonSave(dict(config or {}))}
        if data_iterator is not None:
            import grain.checkpoint  # only needed when a data iterator is saved

            items[_DATA] = grain.checkpoint.CheckpointSave(data_iterator)
        return bool(self._manager.save(step, args=ocp.args.Composite(**items), force=force))

    def restore(self, abstract_arrays: Any, *, step: int | None = None, data_iterator: Any = None) -> RestoredCheckpoint:
        """Reads a checkpoint onto the shardings of `abstract_arrays`.

        **Arguments:**

        - `abstract_arrays`: pytree of `jax.ShapeDtypeStruct` (with `sharding=`) matching the
            saved arrays' structure; see `abstract_arrays`. The mesh may differ from the saving run's.
        - `step`: a specific step (no fallback), or `None` for the newest readable one.
        - `data_iterator`: a Grain iterator of the same pipeline; its state is set in place.

        **Returns:**

        A `RestoredCheckpoint`. Raises `FileNotFoundError` when no readable checkpoint exists.
        """
        self.wait_until_finished()
        if step is not None:
            return self._restore_step(step, abstract_arrays, data_iterator)
        failed: list[tuple[int, Exception]] = []
        for candidate in reversed(self.all_steps()):
            try:
                restored = self._restore_step(candidate, abstract_arrays, data_iterator)
            except Exception as error:  # any read failure makes this step a fallback candidate
                failed.append((candidate, error))
                continue
            # Only now, with an older step readable, are the newer failures the files' fault (not a
            # mismatched target): move them aside so their step numbers can be written again.
            for bad_step, error in failed:
                moved = self._quarantine(bad_step)
                warnings.warn(
                    f"checkpoint step {bad_step} in {self.directory} is incomplete or corrupt "
                    f"({type(error).__name__}); moved it to {moved} and restored step {candidate} instead.",
                    CheckpointFallbackWarning,
                    stacklevel=2,
                )
            return restored
        detail = "; ".join(f"step {s}: {type(e).__name__}: {str(e)[:300]}" for s, e in failed)
        raise FileNotFoundError(
            f"no readable checkpoint in {self.directory} ({detail or 'no finished checkpoint steps'}); "
            "check that the restore target matches the saved state, or start a new run."
        )

    def _restore_step(self, step: int, abstract_arrays: Any, data_iterator: Any) -> RestoredCheckpoint:
        items = {_ARRAYS: ocp.args.StandardRestore(abstract_arrays), _CONFIG: ocp.args.JsonRestore()}
        if data_iterator is not None:
            import grain.checkpoint

            items[_DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        return RestoredCheckpoint(step=step, arrays=restored[_ARRAYS], config=dict(restored[_CONFIG] or {}))

    def _quarantine(self, step: int) -> pathlib.Path | None:
        moved = None
        if jax.process_index() == 0:
            moved = quarantine_step(self.directory / str(step))
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"skipless_checkpoint_quarantine_{step}")
        self._manager.reload()
        return moved

    def wait_until_finished(self) -> None:
        """Blocks until every started save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager's threads."""
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
