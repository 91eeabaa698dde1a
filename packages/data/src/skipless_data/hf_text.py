"""Hugging Face corpora through the optional `datasets` library (`data="hf:NAME[:CONFIG]"`).

Rows are read one at a time from the `train` split; the evaluation split is `validation` (or
`valid`, `test`). A row's text that does not end in a newline gets one, as for JSON Lines, so
`hf:text` over local files reproduces the files' text.

Without a token budget the dataset is loaded (downloaded once into the `datasets` cache) and,
lacking an evaluation split, its last `eval_fraction` of the rows is held out. With a budget it is
streamed (`streaming=True`: rows are read as they are needed, nothing is downloaded in full) and,
lacking an evaluation split, every `round(1 / eval_fraction)`-th row is held out instead (a stream
has no known end).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

from .errors import DataError
from .text_stream import TextStream

HF_PREFIX = "hf:"
EVAL_SPLIT_NAMES = ("validation", "valid", "test")


def parse_hf_spec(data: str) -> tuple[str, str | None]:
    """Split `"hf:NAME[:CONFIG]"` into `(NAME, CONFIG)`."""
    parts = data[len(HF_PREFIX) :].split(":")
    if not parts[0] or len(parts) > 2 or (len(parts) == 2 and not parts[1]):
        raise ValueError(
            f"bad Hugging Face data spec {data!r}; write 'hf:NAME' or 'hf:NAME:CONFIG'."
        )
    return parts[0], (parts[1] if len(parts) == 2 else None)


def _import_datasets():
    try:
        import datasets
    except ImportError:
        raise ImportError(
            "data='hf:...' needs the optional 'datasets' library; install the project's 'hf' "
            "extra (uv sync --all-packages --extra hf) or pass a local path."
        ) from None
    return datasets


def _columns(dataset) -> list[str] | None:
    names = dataset.column_names
    return list(names) if names is not None else None


def _row_stream(dataset, text_field: str, description: Any, keep=None) -> TextStream:
    columns = _columns(dataset)
    if columns is not None and text_field not in columns:
        raise DataError(
            f"Hugging Face split has no column {text_field!r} (found {columns}); "
            "pass --text-field with the name of the text column."
        )

    def pieces() -> Iterator[tuple[str, int]]:
        for index, row in enumerate(dataset):
            if keep is not None and not keep(index):
                continue
            if text_field not in row:
                raise DataError(f"Hugging Face row {index} has no field {text_field!r} (found "
                                f"{sorted(row)}); pass --text-field with the name of the text column.")
            text = str(row[text_field])
            yield (text if text.endswith("\n") else text + "\n"), 1

    total = len(dataset) if hasattr(dataset, "__len__") and keep is None else None
    return TextStream(pieces, total, description, unit="row")


def _local_files(data_files: Any) -> list[dict]:
    """Size and mtime of the local files among `data_files` (they key the cache)."""
    if data_files is None:
        return []
    if isinstance(data_files, (str, os.PathLike)):
        paths = [data_files]
    elif isinstance(data_files, dict):
        paths = [p for v in data_files.values() for p in ([v] if isinstance(v, (str, os.PathLike)) else v)]
    else:
        paths = list(data_files)
    found = []
    for path in map(os.fspath, paths):
        if os.path.isfile(path):
            stat = os.stat(path)
            found.append({"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return found


def _streamed(datasets, name, config, data, data_files, eval_fraction, text_field):
    splits = datasets.load_dataset(name, config, data_files=data_files, streaming=True)
    if "train" not in splits:
        raise DataError(f"{data!r} has no 'train' split (found {sorted(splits)}); pick another.")
    train = splits["train"]
    info = getattr(train, "info", None)
    fingerprint = {"hf": data, "data_files": repr(data_files), "streaming": True,
                   "local_files": _local_files(data_files),
                   "version": str(getattr(info, "version", None)), "splits": repr(getattr(info, "splits", None))}
    eval_name = next((s for s in EVAL_SPLIT_NAMES if s in splits), None)
    if eval_name is not None:
        return (_row_stream(train, text_field, {**fingerprint, "split": "train"}),
                _row_stream(splits[eval_name], text_field, {**fingerprint, "split": eval_name}))
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction={eval_fraction} must lie strictly between 0 and 1.")
    every = max(2, round(1.0 / eval_fraction))
    held = {**fingerprint, "held_out_every": every}
    return (_row_stream(train, text_field, {**held, "split": "train"}, lambda i: i % every != every - 1),
            _row_stream(train, text_field, {**held, "split": "held out"}, lambda i: i % every == every - 1))


def hf_streams(
    data: str,
    *,
    eval_fraction: float,
    text_field: str,
    data_files: Any = None,
    streaming: bool = False,
) -> tuple[TextStream, TextStream]:
    """Train and eval streams of a Hugging Face dataset.

    **Arguments:**

    - `data`: `"hf:NAME[:CONFIG]"`, e.g. `"hf:wikitext:wikitext-103-raw-v1"`, or `"hf:text"` with
        `data_files` naming local files.
    - `eval_fraction`: share of the rows held out when there is no evaluation split.
    - `text_field`: the column holding the text.
    - `data_files`: passed to `datasets.load_dataset` (a path, list, or `{split: paths}`).
    - `streaming`: read rows as they are needed instead of loading the dataset first.

    **Returns:** `(train, eval)` text streams; progress counts rows.
    """
    name, config = parse_hf_spec(data)
    datasets = _import_datasets()
    if streaming:
        return _streamed(datasets, name, config, data, data_files, eval_fraction, text_field)
    splits = datasets.load_dataset(name, config, data_files=data_files)
    if "train" not in splits:
        raise DataError(f"{data!r} has no 'train' split (found {sorted(splits)}); pick another.")
    train = splits["train"]
    eval_name = next((s for s in EVAL_SPLIT_NAMES if s in splits), None)
    fingerprint = {"hf": data, "data_files": repr(data_files)}
    if eval_name is not None:
        evals = splits[eval_name]
        fingerprint.update(train=train._fingerprint, eval=evals._fingerprint)
    else:
        if not 0.0 < eval_fraction < 1.0:
            raise ValueError(f"eval_fraction={eval_fraction} must lie strictly between 0 and 1.")
        cut = math.floor(len(train) * (1.0 - eval_fraction))
        fingerprint.update(train=train._fingerprint, eval_fraction=eval_fraction)
        train, evals = train.select(range(cut)), train.select(range(cut, len(train)))
    return (
        _row_stream(train, text_field, {**fingerprint, "split": "train"}),
        _row_stream(evals, text_field, {**fingerprint, "split": eval_name or "held-out tail"}),
    )
