"""`Checkpointer`: an async Orbax manager for arrays, the data iterator and the config, whose
steps carry content checksums that are verified before anything is restored."""

import contextlib
import dataclasses
import logging
import pathlib
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from .checksums import verify_checksums, write_checksums
from .quarantine import quarantine_step

_ARRAYS, _DATA, _CONFIG = "arrays", "data", "config"
_TMP_SUFFIX = ".orbax-checkpoint-tmp"
# Orbax's own step bookkeeping, rewritten (commit time) or added after the hook: not checksummed.
_WRITTEN_AT_COMMIT = frozenset({"_CHECKPOINT_METADATA", "commit_success.txt"})


class CheckpointFallbackWarning(UserWarning):
    """The newest checkpoint failed verification; an older one was restored instead."""


class CheckpointIntegrityError(RuntimeError):
    """No finished checkpoint step verifies, the requested one does not, or a verified step does not
    restore onto the given target."""


@dataclasses.dataclass(frozen=True)
class RestoredCheckpoint:
    """What `Checkpointer.restore` read back.

    **Fields:**

    - `step`: the step the checkpoint was saved at.
    - `arrays`: the array pytree, placed on the shardings of the abstract target.
    - `config`: the JSON-able dict saved next to it.
    - `skipped`: `(step, reason)` of the newer steps that failed verification (fallback only).
    """

    step: int
    arrays: Any
    config: dict
    skipped: tuple[tuple[int, str], ...] = ()


class Checkpointer:
    """Saves and restores training state under `directory/<step>/`.

    Each step holds three items written together: `arrays` (any pytree of `jax.Array`:
    parameters, optimiser state, step counter), `data` (the Grain iterator state, one JSON file
    per process, so data resumes exactly) and `config` (a JSON dict), plus `checksums.sha256`,
    the SHA-256 of every one of its files, written last, before Orbax renames the step's
    temporary folder into place. Saves are asynchronous: `save` returns once device buffers are
    copied and the write finishes in the background. Steps whose write never finished (killed
    mid-save) are invisible.

    `restore` verifies a step's checksums before reading it. Without an explicit step it takes the
    newest step that verifies, warning once (`CheckpointFallbackWarning`) about the newer ones
    that did not; a writable checkpointer then moves those aside to `directory/corrupt/` (kept,
    not deleted) so their step numbers can be written again, a read-only one leaves every file
    where it is.

    **Arguments:**

    - `directory`: folder of the checkpoints (created if missing, unless `read_only`).
    - `max_to_keep`: how many most recent steps to keep; older ones are deleted.
    - `async_save`: write in a background thread (default) or finish the write inside `save`.
    - `read_only`: never create, write, move or delete anything (evaluation tools). A writable
        checkpointer also removes the temporary folders of interrupted saves when it starts, so
        only one writable checkpointer may use a folder at a time (the trainer holds a lock).
    """

    def __init__(self, directory: str | pathlib.Path, *, max_to_keep: int = 3, async_save: bool = True,
                 read_only: bool = False):
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep={max_to_keep} must be >= 1; pass a positive count of checkpoints to keep.")
        self.directory = pathlib.Path(directory).absolute()
        self.read_only = read_only
        self._async_save = async_save
        if read_only and not self.directory.is_dir():
            raise FileNotFoundError(f"no checkpoint folder {self.directory}; pass the folder of a training run.")
        self._sealing_step: int | None = None
        self._verdicts: dict[int, str | None] = {}
        with _quiet_absl_warnings(read_only):  # Orbax warns that read_only is read-only: our choice, not news
            options = ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, enable_async_checkpointing=True, create=not read_only, read_only=read_only,
                cleanup_tmp_directories=not read_only,
                async_options=ocp.AsyncOptions(post_finalization_callback=None if read_only else self._seal),
            )
            self._manager = ocp.CheckpointManager(self.directory, options=options)

    def all_steps(self) -> list[int]:
        """**Returns:** the sorted steps of all finished checkpoints on disk (verified or not)."""
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
        """Starts writing one checkpoint; returns before the write has finished (when async).

        **Arguments:**

        - `step`: step number (directory name).
        - `arrays`: pytree of `jax.Array` leaves (no Equinox modules: partition them first).
        - `data_iterator`: a Grain `DatasetIterator`/`DataLoaderIterator` whose state is
            captured now, before `save` returns.
        - `config`: JSON-able dict stored beside the arrays.
        - `force`: save even if the manager's own policy would skip this step.

        **Returns:**

        `True` if a save was started, `False` if the step already exists on disk. Errors of an
        earlier background write are raised here or by `wait_until_finished`.
        """
        if self.read_only:
            raise ValueError(f"this Checkpointer of {self.directory} is read-only; it cannot save.")
        items = {_ARRAYS: ocp.args.StandardSave(arrays), _CONFIG: ocp.args.JsonSave(dict(config or {}))}
        if data_iterator is not None:
            import grain.checkpoint  # only needed when a data iterator is saved

            items[_DATA] = grain.checkpoint.CheckpointSave(data_iterator)
        self._manager.wait_until_finished()  # the previous step is sealed before this one starts
        self._sealing_step = step
        self._verdicts.pop(step, None)
        started = bool(self._manager.save(step, args=ocp.args.Composite(**items), force=force))
        if not self._async_save:
            self._manager.wait_until_finished()
        return started

    def _seal(self) -> None:
        """Orbax's post-finalisation hook (primary process, all processes' files written): checksums
        into the step's temporary folder, which Orbax renames into place right after."""
        step = self._sealing_step
        candidates = list(self.directory.glob(f"{step}{_TMP_SUFFIX}*"))
        if len(candidates) != 1:
            raise RuntimeError(f"cannot find the temporary folder of checkpoint step {step} in {self.directory} "
                               f"to write its checksums (found {[p.name for p in candidates]}).")
        write_checksums(candidates[0], exclude=_WRITTEN_AT_COMMIT)

    def verify(self, step: int) -> str | None:
        """**Returns:** `None` when step `step`'s files match its checksums, else the reason they do not
        (remembered for this checkpointer's lifetime; on process 0 only, the others learn the verdict)."""
        if step not in self._verdicts:
            reason = verify_checksums(self.directory / str(step)) if jax.process_index() == 0 else None
            if jax.process_count() > 1:
                failed = _from_process_0(int(reason is not None))
                reason = reason if jax.process_index() == 0 else ("failed verification on process 0" if failed else None)
            self._verdicts[step] = reason
        return self._verdicts[step]

    def intact_step(self) -> tuple[int | None, list[tuple[int, str]]]:
        """**Returns:** `(newest step that verifies or None, [(step, reason)] of the newer ones that do not)`."""
        skipped = []
        for step in reversed(self.all_steps()):
            reason = self.verify(step)
            if reason is None:
                return step, skipped
            skipped.append((step, reason))
        return None, skipped

    def read_config(self, step: int) -> dict:
        """**Returns:** the config dict saved with step `step` (its arrays are not read)."""
        restored = self._manager.restore(step, args=ocp.args.Composite(**{_CONFIG: ocp.args.JsonRestore()}))
        return dict(restored[_CONFIG] or {})

    def restore(self, abstract_arrays: Any, *, step: int | None = None, data_iterator: Any = None) -> RestoredCheckpoint:
        """Verifies and reads a checkpoint onto the shardings of `abstract_arrays`.

        **Arguments:**

        - `abstract_arrays`: pytree of `jax.ShapeDtypeStruct` (with `sharding=`) matching the
            saved arrays' structure; see `abstract_arrays`. The mesh may differ from the saving run's.
        - `step`: a specific step (it must verify), or `None` for the newest step that verifies.
        - `data_iterator`: a Grain iterator of the same pipeline; its state is set in place.

        **Returns:**

        A `RestoredCheckpoint`. Raises `FileNotFoundError` when there is no finished checkpoint and
        `CheckpointIntegrityError` when none (or not the requested one) verifies, or when a verified
        step does not fit `abstract_arrays` (then nothing is moved).
        """
        self.wait_until_finished()
        skipped: list[tuple[int, str]] = []
        if step is None:
            step, skipped = self.intact_step()
            if step is None and not skipped:
                raise FileNotFoundError(f"no finished checkpoint in {self.directory}.")
            if step is None:
                raise CheckpointIntegrityError(
                    f"no checkpoint in {self.directory} verifies ({_reasons(skipped)}); the files were left as they are."
                )
        elif (reason := self.verify(step)) is not None:
            raise CheckpointIntegrityError(f"checkpoint step {step} in {self.directory} fails verification: {reason}.")
        restored = self._read(step, abstract_arrays, data_iterator)
        if skipped:
            what = "left in place"
            if not self.read_only:
                moved = self.set_aside([s for s, _ in skipped])
                what = "moved to " + ", ".join(str(p) for p in moved)
            warnings.warn(f"{_reasons(skipped)}: restored step {step} instead (the failed steps were {what}).",
                          CheckpointFallbackWarning, stacklevel=2)
        return dataclasses.replace(restored, skipped=tuple(skipped))

    def _read(self, step: int, abstract_arrays: Any, data_iterator: Any) -> RestoredCheckpoint:
        items = {_ARRAYS: ocp.args.StandardRestore(abstract_arrays), _CONFIG: ocp.args.JsonRestore()}
        if data_iterator is not None:
            import grain.checkpoint

            items[_DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as error:  # the files verified: the target (or this program) does not fit them
            first = " ".join(str(error).split())[:300]
            raise CheckpointIntegrityError(
                f"checkpoint step {step} in {self.directory} verifies but does not restore onto this run's state "
                f"({type(error).__name__}: {first}); the model and optimiser flags must match the checkpoint's."
            ) from error
        return RestoredCheckpoint(step=step, arrays=restored[_ARRAYS], config=dict(restored[_CONFIG] or {}))

    def set_aside(self, steps: list[int]) -> list[pathlib.Path]:
        """Moves the given steps into `directory/corrupt/` (process 0; the others wait) so that their
        step numbers can be saved again. **Returns:** the new paths (empty on other processes)."""
        if self.read_only:
            raise ValueError(f"this Checkpointer of {self.directory} is read-only; it moves nothing.")
        moved = []
        if jax.process_index() == 0:
            moved = [quarantine_step(self.directory / str(step)) for step in steps]
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"skipless_checkpoint_set_aside_{'_'.join(map(str, steps))}")
        for step in steps:
            self._verdicts.pop(step, None)
        self._manager.reload()
        return moved

    def wait_until_finished(self) -> None:
        """Blocks until every started save is on disk (raising the error of a failed one)."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager's threads."""
        try:
            self._manager.wait_until_finished()
        finally:
            self._manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def _quiet_absl_warnings(quiet: bool):
    logger = logging.getLogger("absl")
    previous = logger.level
    if quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _reasons(skipped: list[tuple[int, str]]) -> str:
    return "; ".join(f"checkpoint step {step} fails verification: {reason}" for step, reason in skipped)


def _from_process_0(value: int) -> int:
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(jnp.int32(value)))
