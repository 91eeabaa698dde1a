"""A dataset seen with a smaller token budget than it was prepared with: a prefix of each split.

A split prepared to N tokens and asked for M < N tokens is exactly its first M tokens (a budget cuts
the same token stream wherever it falls), so a smaller budget reuses the shards as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from .dataset_info import DatasetInfo


def _prefix_bytes(info: DatasetInfo, split: str, count: int, token_bytes: np.ndarray) -> int:
    from array_record.python.array_record_module import ArrayRecordReader

    total, left = 0, count
    for path in info.shard_paths(split):
        reader = ArrayRecordReader(path)
        try:
            for record in reader.read_all():
                ids = np.frombuffer(record, dtype=np.dtype(info.token_dtype))[:left]
                total += int(token_bytes[ids].sum())
                left -= ids.size
                if left == 0:
                    return total
        finally:
            reader.close()
    return total


def budget_view(info: DatasetInfo, budgets: Mapping[str, int | None], token_bytes=None) -> DatasetInfo:
    """`info` limited to `budgets[split]` tokens per split where that is fewer than it holds.

    **Arguments:** `info`: a prepared dataset; `budgets`: token budget per split (None = all);
    `token_bytes`: a function returning the tokenizer's bytes-per-token table (for `num_bytes`).
    """
    trimmed = {s: n for s, n in budgets.items() if n is not None and n < info.num_tokens[s]}
    if not trimmed:
        return info
    table = token_bytes()
    num_tokens, num_bytes, shards = dict(info.num_tokens), dict(info.num_bytes), dict(info.shards)
    max_tokens, complete, resume = dict(info.max_tokens), dict(info.complete), dict(info.resume)
    for split, count in trimmed.items():
        records = -(-count // info.chunk_tokens)
        shards[split] = tuple(info.shards[split][: -(-records // info.records_per_shard)])
        num_bytes[split] = _prefix_bytes(info, split, count, table)
        num_tokens[split], max_tokens[split], complete[split] = count, count, False
        resume.pop(split, None)  # a view is never extended; its folder's metadata is
    return dataclasses.replace(info, num_tokens=num_tokens, num_bytes=num_bytes, shards=shards,
                               max_tokens=max_tokens, complete=complete, resume=resume)
