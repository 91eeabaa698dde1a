"""The evaluation pipeline: every window of a split once, in order, with a target mask.

Windows are those of `TokenWindows` including the final partial window, so the targets of all
batches cover every token of the split after the first exactly once. Global batch `b` holds windows
`[b*B, (b+1)*B)`; process `p` of `P` gets rows `[p*B/P, (p+1)*B/P)`. Rows past the last window and
positions past the end of the split are zero tokens with `mask == False`; every process yields the
same number of batches (as collective evaluation steps on several hosts need). A split shorter than
one window still gives one (partial) window.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from jaxtyping import Bool, Int32

from .dataset_info import DatasetInfo
from .token_windows import TokenWindows
from .train_pipeline import _check_processes


class EvalBatch(NamedTuple):
    """One evaluation batch.

    - `tokens`: int32 `[B, seq_len + 1]`; inputs `[:, :-1]`, targets `[:, 1:]`.
    - `mask`: bool `[B, seq_len]`, True where the target is a real token of the split.
    """

    tokens: Int32[np.ndarray, "B L+1"]
    mask: Bool[np.ndarray, "B L"]


class EvalBatches:
    """A finite, re-iterable sequence of `EvalBatch` (see the module docstring).

    **Arguments:** as `eval_batches`.
    """

    def __init__(
        self,
        info: DatasetInfo,
        *,
        split: str,
        seq_len: int,
        batch_size: int,
        process_index: int,
        process_count: int,
    ):
        self.local_batch = _check_processes(batch_size, process_index, process_count)
        self.windows = TokenWindows(info, split, seq_len, partial_last=True)
        self.seq_len, self.batch_size = seq_len, batch_size
        self.process_index = process_index
        self.num_targets = self.windows.num_tokens - 1

    def __len__(self) -> int:
        return -(-len(self.windows) // self.batch_size)

    def __iter__(self) -> Iterator[EvalBatch]:
        positions_L = np.arange(self.seq_len)
        for b in range(len(self)):
            first = b * self.batch_size + self.process_index * self.local_batch
            tokens = np.zeros((self.local_batch, self.seq_len + 1), dtype=np.int32)
            mask = np.zeros((self.local_batch, self.seq_len), dtype=bool)
            for row in range(self.local_batch):
                index = first + row
                if index < len(self.windows):
                    tokens[row] = self.windows[index]
                    mask[row] = positions_L < self.windows.valid_targets(index)
            yield EvalBatch(tokens, mask)


def eval_batches(
    info: DatasetInfo,
    *,
    split: str = "eval",
    seq_len: int,
    batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
) -> EvalBatches:
    """Evaluation batches covering a split exactly once, in order, without shuffling.

    **Arguments:**

    - `info`: a prepared dataset.
    - `split`: the split to read (default `"eval"`).
    - `seq_len`: model sequence length.
    - `batch_size`: global rows per batch over all processes (a multiple of `process_count`).
    - `process_index`, `process_count`: this process's place among data-loading processes.

    **Returns:** an `EvalBatches` (has `len`); iterating yields `EvalBatch(tokens, mask)` with
    `tokens` int32 `[batch_size // process_count, seq_len + 1]` and `mask` bool
    `[batch_size // process_count, seq_len]` over targets. The mean loss is
    `sum(loss * mask) / sum(mask)` summed over all batches (and processes). The generated source
    (`--data generated`) has held-out streams instead of splits: "eval" (dev) and "test".
    """
    from .generated_data import GeneratedEvalBatches, is_generated

    if is_generated(info.source):
        return GeneratedEvalBatches(info, split=split, seq_len=seq_len, batch_size=batch_size,
                                    process_index=process_index, process_count=process_count)
    return EvalBatches(
        info,
        split=split,
        seq_len=seq_len,
        batch_size=batch_size,
        process_index=process_index,
        process_count=process_count,
    )
