"""Read a whole split's token stream back from its shards (for inspection and tests)."""

from __future__ import annotations

import numpy as np
from jaxtyping import Int32

from .dataset_info import DatasetInfo


def split_tokens(info: DatasetInfo, split: str) -> Int32[np.ndarray, " N"]:
    """All tokens of a split in order, read sequentially record by record.

    **Arguments:**

    - `info`: a prepared dataset.
    - `split`: `"train"` or `"eval"`.

    **Returns:** int32 array of shape `[info.num_tokens[split]]`.
    """
    from array_record.python.array_record_module import ArrayRecordReader

    pieces = []
    for path in info.shard_paths(split):
        reader = ArrayRecordReader(path)
        try:
            pieces += reader.read_all()
        finally:
            reader.close()
    tokens = np.frombuffer(b"".join(pieces), dtype=np.dtype(info.token_dtype)).astype(np.int32)
    tokens = tokens[: info.num_tokens[split]]  # a budget view may end inside its last shard
    if tokens.size != info.num_tokens[split]:
        raise ValueError(
            f"{split} shards hold {tokens.size} tokens but metadata says "
            f"{info.num_tokens[split]}; the dataset is damaged, re-run prepare."
        )
    return tokens
