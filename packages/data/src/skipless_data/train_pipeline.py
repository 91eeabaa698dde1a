"""The training pipeline: shuffled windows → per-process slices of global batches, forever.

Global batch `b` is windows `perm_e[b*G : (b+1)*G]` of the epoch-`e` permutation (epochs follow
each other without a gap and are reshuffled from the seed). Process `p` of `P` reads only rows
`[p*G/P, (p+1)*G/P)` of every global batch, so processes see disjoint data and together exactly
the single-process stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .dataset_info import DatasetInfo
from .token_windows import TokenWindows

if TYPE_CHECKING:
    import grain

_PREFETCH_BYTES = 64 << 20


def _check_processes(global_batch_size: int, process_index: int, process_count: int) -> int:
    if global_batch_size < 1:
        raise ValueError(f"global_batch_size={global_batch_size} must be positive.")
    if process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(
            f"process_index={process_index} must lie in [0, process_count={process_count})."
        )
    if global_batch_size % process_count:
        raise ValueError(
            f"global_batch_size={global_batch_size} is not divisible by process_count="
            f"{process_count}; pick a multiple."
        )
    return global_batch_size // process_count


def train_dataset(
    info: DatasetInfo,
    *,
    split: str = "train",
    seq_len: int,
    global_batch_size: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
    read_options: grain.ReadOptions | None = None,
) -> grain.IterDataset:
    """An infinite, seeded, resumable stream of this process's training batches.

    **Arguments:**

    - `info`: a prepared dataset (`prepare_dataset` or `load_dataset_info`).
    - `split`: the split to read.
    - `seq_len`: model sequence length.
    - `global_batch_size`: rows per step over all processes (a multiple of `process_count`).
    - `seed`: shuffle seed (each epoch gets its own permutation derived from it).
    - `process_index`, `process_count`: this process's place among data-loading processes
        (`jax.process_index()`, `jax.process_count()`).
    - `read_options`: Grain prefetch options; the default uses 2 threads and a buffer of at most
        64 MiB of batches (Grain's own default of 500 buffered batches can take gigabytes).

    **Returns:** a `grain.IterDataset`; `iter(...)` yields int32 arrays
    `[global_batch_size // process_count, seq_len + 1]` (inputs `[:, :-1]`, targets `[:, 1:]`).
    The iterator's `get_state()`/`set_state()` resume exactly; save it with Orbax through
    `grain.checkpoint.CheckpointSave(iterator)` / `CheckpointRestore(iterator)`.
    """
    import grain

    from .generated_data import generated_train_dataset, is_generated

    local_batch = _check_processes(global_batch_size, process_index, process_count)
    if is_generated(info.source):  # unbounded: batch b is a pure function of (seed, b), never repeated
        return generated_train_dataset(info, seq_len=seq_len, global_batch_size=global_batch_size, seed=seed,
                                       process_index=process_index, process_count=process_count,
                                       read_options=read_options)
    windows = TokenWindows(info, split, seq_len)
    dataset = (
        grain.MapDataset.source(windows)
        .shuffle(seed=seed)
        .repeat(None)
        .batch(local_batch, drop_remainder=True)
    )
    # Batches of one global step are consecutive local batches; keep this process's one.
    dataset = dataset[process_index::process_count]
    if read_options is None:
        batch_bytes = local_batch * (seq_len + 1) * 4
        buffered = max(2, min(32, _PREFETCH_BYTES // batch_bytes))
        read_options = grain.ReadOptions(num_threads=2, prefetch_buffer_size=buffered)
    return dataset.to_iter_dataset(read_options)
