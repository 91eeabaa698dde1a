"""From this process's numpy batches to global `jax.Array`s sharded over the mesh."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import jax
import numpy as np
from jax.sharding import NamedSharding


def to_global(local_rows: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """Assembles one global batch from every process's rows (each process passes only its own).

    **Arguments:**

    - `local_rows`: `[B // process_count, ...]` rows this process loaded.
    - `sharding`: the global batch sharding (rows over "data").

    **Returns:** the global array `[B, ...]`.
    """
    return jax.make_array_from_process_local_data(sharding, np.asarray(local_rows))


def eval_arrays(batches: Iterable, sharding: NamedSharding, limit: int) -> Iterator[tuple[jax.Array, jax.Array]]:
    """Yields `(tokens_BxTp1, mask_BxT)` global arrays from `skipless_data.eval_batches`.

    **Arguments:**

    - `batches`: iterable of `EvalBatch(tokens [b, T+1] int32, mask [b, T] bool)` (local rows).
    - `sharding`: batch sharding.
    - `limit`: the most batches to yield (0 = all). Every process yields the same count.
    """
    for index, batch in enumerate(batches):
        if limit and index >= limit:
            return
        yield to_global(batch.tokens, sharding), to_global(batch.mask.astype(np.float32), sharding)
