"""Hugging Face corpora through the optional `datasets` library (`data="hf:NAME[:CONFIG]"`).

Rows are read one at a time from the `train` split; the evaluation split is `validation` (or
`test`), or else the last `eval_fraction` of the rows. A row's text that does not end in a newline
gets one, as for JSON Lines, so `hf:text` over local files reproduces the files' text.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

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


def _row_stream(dataset, text_field: str, description: Any) -> TextStream:
    if text_field not in dataset.column_names:
        raise ValueError(
            f"Hugging Face split has no column {text_field!r} (found {dataset.column_names}); "
            "pass --text-field."
        )

    def pieces() -> Iterator[tuple[str, int]]:
        for row in dataset:
            text = str(row[text_field])
            text = text if text.endswith("\n") else text + "\n"
            yield text, 1

    return TextStream(pieces, len(dataset), description)


def hf_streams(
    data: str,
    *,
    eval_fraction: float,
    text_field: str,
    data_files: Any = None,
) -> tuple[TextStream, TextStream]:
    """Train and eval streams of a Hugging Face dataset.

    **Arguments:**

    - `data`: `"hf:NAME[:CONFIG]"`, e.g. `"hf:wikitext:wikitext-103-raw-v1"`, or `"hf:text"` with
        `data_files` naming local files.
    - `eval_fraction`: tail fraction of the rows held out when there is no evaluation split.
    - `text_field`: the column holding the text.
    - `data_files`: passed to `datasets.load_dataset` (a path, list, or `{split: paths}`).

    **Returns:** `(train, eval)` text streams; progress counts rows.
    """
    name, config = parse_hf_spec(data)
    datasets = _import_datasets()
    splits = datasets.load_dataset(name, config, data_files=data_files)
    if "train" not in splits:
        raise ValueError(f"{data!r} has no 'train' split (found {sorted(splits)}); pick another.")
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
