"""Moving an unreadable checkpoint step aside so training can write that step again."""

import pathlib
import time


def quarantine_step(step_dir: pathlib.Path) -> pathlib.Path:
    """Renames `step_dir` into `<root>/corrupt/<step>-<unix time>` and returns the new path.

    Nothing is deleted: the broken files stay available for inspection, while the manager
    no longer lists the step (so a later save of the same step number is not skipped).

    **Arguments:**

    - `step_dir`: directory of one checkpoint step, e.g. `run/checkpoints/200`.

    **Returns:**

    The path the step now lives at.
    """
    corrupt_root = step_dir.parent / "corrupt"
    corrupt_root.mkdir(exist_ok=True)
    target = corrupt_root / f"{step_dir.name}-{int(time.time() * 1000)}"
    step_dir.rename(target)
    return target
