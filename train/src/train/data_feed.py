"""From this process's numpy batches to global `jax.Array`s sharded over the mesh."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import jax
import numpy as np
from jax.sharding import NamedSharding


def process_rows(sharding: NamedSharding, global_batch_size: int) -> tuple[int, int]:
    """Which block of every global batch this process must load, from the devices it holds.

    With the "data" axis spread over processes each process loads its own block; when processes
    share rows (a "model" axis spanning processes) they load the same block.

    **Arguments:**

    - `sharding`: the global batch sharding (rows over "data").
    - `global_batch_size`: rows `B` of a global batch.

    **Returns:** `(block_index, block_count)`: this process loads rows
    `[i * B / n, (i + 1) * B / n)`. Raises `ValueError` when its rows are not one such block.
    """
    indices = sharding.addressable_devices_indices_map((global_batch_size, 1)).values()
    rows = sorted({(s[0].start or 0, global_batch_size if s[0].stop is None else s[0].stop) for s in indices})
    start, stop = rows[0][0], rows[-1][1]
    covered = sum(b - a for a, b in rows)
    if covered != stop - start or global_batch_size % (stop - start) or start % (stop - start):
        raise ValueError(
            f"this process's devices hold rows {rows} of the {global_batch_size}-row batch, not one contiguous "
            "block; pass a --mesh whose data axis is a multiple or a divisor of the process count."
        )
    return start // (stop - start), global_batch_size // (stop - start)


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
