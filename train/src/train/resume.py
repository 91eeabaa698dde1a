"""Where a run starts: the newest checkpoint that verifies, or step 0.

Checkpoint steps are verified against their checksums before anything is read; newer steps that
fail are named in one warning line and moved to `checkpoints/corrupt/` (so their step numbers can
be written again). A run folder without any finished checkpoint starts from step 0 with its
saved config; one whose checkpoints all fail stops with `CheckpointIntegrityError`, moving nothing.
"""

from __future__ import annotations

import pathlib
from typing import IO, Any

import jax

from skipless_checkpoint import CheckpointIntegrityError, Checkpointer

from .data_position import restore_data_position, saved_layouts
from .resume_check import check_resume


def _reasons(skipped: list[tuple[int, str]]) -> str:
    return "; ".join(f"checkpoint step {step} fails verification: {reason}" for step, reason in skipped)


def restore_or_init(checkpointer: Checkpointer, *, resume: bool, config_dict: dict, out: pathlib.Path,
                    abstract: Any, train_iter: Any, init, console: IO[str]) -> tuple[Any, int]:
    """**Returns:** `(state, start step)`: the newest verified checkpoint on a resume, else `init()` and 0.

    **Arguments:** `checkpointer` (writable), `resume`, `config_dict` (the run's `TrainConfig.to_dict()`,
    checked against the checkpoint's own), `out` (run folder, for messages), `abstract` (restore
    target), `train_iter` (its position is restored in place), `init` (builds a fresh state),
    `console` (where the warning line goes).
    """
    is_main = jax.process_index() == 0
    if not resume:
        return init(), 0
    step, skipped = checkpointer.intact_step()
    if step is None and skipped:
        raise CheckpointIntegrityError(
            f"no checkpoint in {checkpointer.directory} verifies ({_reasons(skipped)}); the files were left as they "
            "are. Restore them from a copy, or start a new run with another --out."
        )
    if step is None:
        if is_main:
            print(f"no checkpoint in {checkpointer.directory} yet: starting the run from step 0 with its saved config",
                  flush=True)
        return init(), 0
    check_resume(checkpointer.read_config(step), config_dict, source=f"checkpoint step {step} in {out}")
    # A checkpoint from another process count: Grain cannot restore it, the position carries over.
    data_dir = checkpointer.directory / str(step) / "data"
    same_layout = jax.process_count() in saved_layouts(data_dir)
    restored = checkpointer.restore(abstract, step=step, data_iterator=train_iter if same_layout else None)
    if not same_layout:
        restore_data_position(train_iter, data_dir)
    if skipped:
        moved = checkpointer.set_aside([s for s, _ in skipped])
        if is_main:
            where = ", ".join(str(p) for p in moved)
            print(f"warning: {_reasons(skipped)}; resumed from step {step} instead (moved the failed step to {where})",
                  file=console, flush=True)
    if is_main:
        print(f"resumed from step {restored.step} of {checkpointer.directory}", flush=True)
    return restored.arrays, restored.step
