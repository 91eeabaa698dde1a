"""`DatasetInfo`: metadata of a prepared dataset, saved as `metadata.json` next to its shards."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping

FORMAT_VERSION = 2
METADATA_FILE = "metadata.json"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Everything needed to read a prepared dataset.

    **Arguments:**

    - `path`: the dataset folder (shards, `tokenizer.json`, `metadata.json`).
    - `vocab_size`: size of the token vocabulary (every id is smaller).
    - `tokenizer`: the tokenizer spec, `"byte"` or `"bpe:<vocab_size>"`.
    - `num_tokens`: tokens per split, e.g. `{"train": ..., "eval": ...}`.
    - `num_bytes`: UTF-8 bytes of text per split (for bits per byte across tokenizers).
    - `entropy_rate`: the best achievable loss of the embedded corpus under this tokenizer, in
        nats per token (per split-independent byte rate times bytes per token for BPE), else None.
    - `source`: a short description of the data (`"embedded"`, a path, or `"hf:NAME"`).
    - `shards`: ArrayRecord file names per split, relative to `path`.
    - `chunk_tokens`: tokens per ArrayRecord record.
    - `token_dtype`: on-disk dtype of a token, e.g. `"<u2"`.
    - `fingerprint`: hash of the inputs; an identical fingerprint means the shards are reused.
    - `records_per_shard`: records per ArrayRecord file (the last file of a split may hold fewer).
    - `max_tokens`: the token budget each split was prepared with (`None`: no budget).
    - `complete`: per split, whether it holds all of its source's text (the source ended within
        the budget); a complete split never grows.
    - `resume`: per split, where its source continues: `{"pieces": P, "skip_tokens": K}` means
        the next token is token K of source piece P (pieces are lines, records or rows, counted
        from 0), so a larger budget extends the split exactly as a fresh build would.
    - `files`: `{name: {"bytes": size, "sha256": hex}}` of every shard and `tokenizer.json`;
        a waiting process checks them before it uses a dataset another process prepared.
    - `format_version`: version of this layout.
    """

    path: str
    vocab_size: int
    tokenizer: str
    num_tokens: Mapping[str, int]
    num_bytes: Mapping[str, int]
    entropy_rate: float | None
    source: str
    shards: Mapping[str, tuple[str, ...]]
    chunk_tokens: int
    token_dtype: str
    fingerprint: str
    records_per_shard: int = 16384
    max_tokens: Mapping[str, int | None] = dataclasses.field(default_factory=dict)
    complete: Mapping[str, bool] = dataclasses.field(default_factory=dict)
    resume: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)
    files: Mapping[str, Mapping[str, int | str]] = dataclasses.field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        """Serialise to a JSON string."""
        fields = dataclasses.asdict(self)
        fields["shards"] = {k: list(v) for k, v in self.shards.items()}
        for name in ("num_tokens", "num_bytes", "max_tokens", "complete"):
            fields[name] = dict(getattr(self, name))
        fields["resume"] = {k: dict(v) for k, v in self.resume.items()}
        fields["files"] = {k: dict(v) for k, v in self.files.items()}
        return json.dumps(fields, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DatasetInfo":
        """Inverse of `to_json`."""
        fields = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise ValueError(f"dataset metadata has unknown fields {unknown}; re-run prepare.")
        fields["shards"] = {k: tuple(v) for k, v in fields["shards"].items()}
        return cls(**fields)

    def shard_paths(self, split: str) -> list[str]:
        """Absolute paths of a split's shard files."""
        if split not in self.shards:
            raise ValueError(f"split {split!r} not in the dataset (has {sorted(self.shards)}).")
        return [os.path.join(self.path, name) for name in self.shards[split]]


def load_dataset_info(path: str | os.PathLike) -> DatasetInfo:
    """Read `metadata.json` from a prepared dataset folder (its `path` is set to that folder).

    **Raises:** `FileNotFoundError` if the folder holds no complete prepared dataset.
    """
    metadata = os.path.join(os.fspath(path), METADATA_FILE)
    if not os.path.isfile(metadata):
        raise FileNotFoundError(
            f"{metadata} not found: {path!r} is not a prepared dataset; run skipless_data.prepare."
        )
    with open(metadata) as f:
        info = DatasetInfo.from_json(f.read())
    return dataclasses.replace(info, path=os.path.abspath(os.fspath(path)))
