"""Random access to fixed-length windows of a split's token stream.

Window `w` is tokens `[w * seq_len, w * seq_len + seq_len + 1)`: consecutive windows share one
boundary token, so inputs `[:, :-1]` and targets `[:, 1:]` of all windows together predict every
token after the first exactly once (non-overlapping targets).
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Int32

from .dataset_info import DatasetInfo


class TokenWindows:
    """A Grain random-access source of token windows over one split of a prepared dataset.

    **Arguments:**

    - `info`: the prepared dataset.
    - `split`: `"train"` or `"eval"`.
    - `seq_len`: model sequence length; each window holds `seq_len + 1` tokens.
    - `partial_last`: also expose the final incomplete window (its missing tokens are 0 and
        `valid_targets` says how many targets are real). Training uses only full windows.
    """

    def __init__(self, info: DatasetInfo, split: str, seq_len: int, *, partial_last: bool = False):
        from grain.sources import ArrayRecordDataSource

        if seq_len < 1:
            raise ValueError(f"seq_len={seq_len} must be positive.")
        self.num_tokens = int(info.num_tokens[split]) if split in info.num_tokens else 0
        if partial_last and self.num_tokens < 2:
            raise ValueError(
                f"{split} split has {self.num_tokens} tokens; evaluation needs at least 2."
            )
        if not partial_last and self.num_tokens < seq_len + 1:
            raise ValueError(
                f"{split} split has {self.num_tokens} tokens, shorter than one window of "
                f"seq_len+1={seq_len + 1}; use more data or a smaller seq_len."
            )
        self.seq_len, self.chunk_tokens = seq_len, info.chunk_tokens
        self.dtype = np.dtype(info.token_dtype)
        self._paths = info.shard_paths(split)
        self._source = ArrayRecordDataSource(self._paths)
        targets = self.num_tokens - 1
        self._length = -(-targets // seq_len) if partial_last else targets // seq_len

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"TokenWindows(windows={self._length}, seq_len={self.seq_len})"

    def valid_targets(self, index: int) -> int:
        """How many of window `index`'s `seq_len` targets exist in the split."""
        return min(self.seq_len, self.num_tokens - 1 - index * self.seq_len)

    def __getitem__(self, index: int) -> Int32[np.ndarray, " L+1"]:
        """Window `index` as int32, shape `[seq_len + 1]` (zero-padded past the end)."""
        index = int(index)
        if not 0 <= index < self._length:
            raise IndexError(f"window {index} out of range [0, {self._length}).")
        start = index * self.seq_len
        end = min(start + self.seq_len + 1, self.num_tokens)
        first, last = start // self.chunk_tokens, (end - 1) // self.chunk_tokens
        records = [self._source[r] for r in range(first, last + 1)]
        tokens = np.frombuffer(b"".join(records), dtype=self.dtype)
        offset = start - first * self.chunk_tokens
        window = np.zeros(self.seq_len + 1, dtype=np.int32)
        window[: end - start] = tokens[offset : offset + end - start]
        return window

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_source")
        return state

    def __setstate__(self, state):
        from grain.sources import ArrayRecordDataSource

        self.__dict__.update(state)
        self._source = ArrayRecordDataSource(self._paths)
