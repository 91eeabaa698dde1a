"""Prepare a corpus: text → tokenizer → ArrayRecord shards + `metadata.json`.

`data` is a text file, a folder, a `.jsonl` file, `hf:NAME[:CONFIG]`, or `embedded` (default).
Re-running with the same inputs returns the existing shards; different inputs replace them.
The shards become visible only once complete: they are built in a private temporary folder and
`metadata.json`, which marks a dataset as complete, is written last.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from . import embedded_corpus
from .dataset_info import FORMAT_VERSION, METADATA_FILE, DatasetInfo, load_dataset_info
from .hf_text import HF_PREFIX, hf_streams
from .local_text import local_streams
from .shard_writer import ShardWriter, token_dtype
from .text_stream import TextStream
from .text_tokenizer import TOKENIZER_FILE, ByteTokenizer, train_bpe
from .tokenizer_spec import TokenizerSpec, parse_tokenizer_spec

EMBEDDED = "embedded"
DEFAULT_TEXT_TOKENIZER = "bpe:8192"
DEFAULT_EMBEDDED_TOKENIZER = "byte"
_ENCODE_BATCH_CHARS = 1 << 20
_SHARD_NAME = re.compile(r"^(train|eval)-\d{5}\.array_record$")


def _is_embedded(data) -> bool:
    return data is None or data == EMBEDDED


def _embedded_streams(
    num_tokens: int, eval_fraction: float, seed: int, config: embedded_corpus.EmbeddedCorpusConfig
) -> tuple[TextStream, TextStream]:
    if num_tokens < 2:
        raise ValueError(f"embedded_tokens={num_tokens} is too small; use at least thousands.")
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction={eval_fraction} must lie strictly between 0 and 1.")
    num_eval = max(1, round(num_tokens * eval_fraction))
    train_seed, eval_seed = np.random.SeedSequence(seed).generate_state(2).tolist()

    def stream(size: int, sample_seed: int, split: str) -> TextStream:
        def pieces() -> Iterator[tuple[str, int]]:
            corpus = embedded_corpus.default_corpus(config)
            for text in corpus.iter_text(size, sample_seed):
                yield text, len(text)

        description = {
            "embedded": dataclasses.asdict(config),
            "generator_version": embedded_corpus.GENERATOR_VERSION,
            "seed": seed,
            "split": split,
            "num_bytes": size,
        }
        return TextStream(pieces, size, description)

    return (
        stream(num_tokens - num_eval, train_seed, "train"),
        stream(num_eval, eval_seed, "eval"),
    )


def _batched(stream: TextStream, progress: tqdm) -> Iterator[list[str]]:
    batch, chars, advanced = [], 0, 0
    for text, advance in stream.pieces():
        advanced += advance
        if text:
            batch.append(text)
            chars += len(text)
        if chars >= _ENCODE_BATCH_CHARS:
            progress.update(advanced)
            yield batch
            batch, chars, advanced = [], 0, 0
    progress.update(advanced)
    if batch:
        yield batch


def _limited_texts(stream: TextStream, max_chars: int) -> Iterator[str]:
    seen = 0
    for text in stream.texts():
        if seen >= max_chars:
            return
        seen += len(text)
        yield text


def _fingerprint(**inputs) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _default_out_dir(data, spec: TokenizerSpec) -> str:
    name = EMBEDDED if _is_embedded(data) else os.path.basename(os.path.normpath(str(data)))
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "data"
    return os.path.join("runs", "data", f"{name}-{str(spec).replace(':', '')}")


def _reusable(out_dir: str, fingerprint: str) -> DatasetInfo | None:
    try:
        info = load_dataset_info(out_dir)
    except (FileNotFoundError, ValueError, TypeError, KeyError):
        return None
    if info.fingerprint != fingerprint or info.format_version != FORMAT_VERSION:
        return None
    if not all(os.path.isfile(p) for split in info.shards for p in info.shard_paths(split)):
        return None
    return info


def _check_windows(info: DatasetInfo, seq_len: int | None) -> None:
    if seq_len is None:
        return
    # Only training needs whole windows; evaluation pads a short split (see eval_pipeline).
    count = info.num_tokens["train"]
    if count < seq_len + 1:
        raise ValueError(
            f"train split has {count} tokens, shorter than one window of seq_len+1="
            f"{seq_len + 1}; use more data or a smaller seq_len."
        )


def _install(tmp: str, out_dir: str, info: DatasetInfo) -> None:
    """Replace any previous dataset in `out_dir` by the one built in `tmp`, metadata last."""
    old_metadata = os.path.join(out_dir, METADATA_FILE)
    if os.path.exists(old_metadata):
        os.remove(old_metadata)  # from here on the old dataset no longer looks complete
    for name in os.listdir(out_dir):
        if _SHARD_NAME.match(name) or name == TOKENIZER_FILE:
            os.remove(os.path.join(out_dir, name))
    for name in os.listdir(tmp):
        os.replace(os.path.join(tmp, name), os.path.join(out_dir, name))
    partial = os.path.join(tmp, METADATA_FILE)
    with open(partial, "w") as f:
        f.write(info.to_json())
    os.replace(partial, old_metadata)


def prepare_dataset(
    data: str | os.PathLike | None = None,
    tokenizer: str | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    seq_len: int | None = None,
    eval_data: str | os.PathLike | None = None,
    eval_fraction: float = 0.05,
    text_field: str = "text",
    hf_data_files=None,
    embedded_tokens: int = 2_000_000,
    embedded_config: embedded_corpus.EmbeddedCorpusConfig = embedded_corpus.EmbeddedCorpusConfig(),
    seed: int = 0,
    chunk_tokens: int = 4096,
    records_per_shard: int = 16384,
    bpe_train_chars: int = 64 << 20,
    show_progress: bool = True,
) -> DatasetInfo:
    """Tokenise a corpus into train/eval ArrayRecord shards, or reuse identical earlier shards.

    **Arguments:**

    - `data`: `None` or `"embedded"` (the generated corpus), a local file / folder / `.jsonl`
        path, or `"hf:NAME[:CONFIG]"` (needs the optional `datasets` library).
    - `tokenizer`: `"byte"` or `"bpe:<vocab_size>"`; `None` picks `"byte"` for the embedded
        corpus (its entropy rate is then exact per token) and `"bpe:8192"` for real text.
    - `out_dir`: output folder; `None` uses `runs/data/<name>-<tokenizer>`.
    - `seq_len`: if given, check that the train split holds one window of `seq_len + 1`.
    - `eval_data`: separate local evaluation data (e.g. WikiText-2 `test.txt`); without it the
        last `eval_fraction` of the data (cut at a line boundary) is held out.
    - `eval_fraction`: held-out tail fraction (also the eval share of the embedded corpus).
    - `text_field`: the text field of JSON Lines records / Hugging Face rows.
    - `hf_data_files`: `data_files` for `datasets.load_dataset` (e.g. local files for `hf:text`).
    - `embedded_tokens`: total size of the embedded corpus in bytes (= byte tokens).
    - `embedded_config`: the embedded grammar.
    - `seed`: sampling seed of the embedded corpus.
    - `chunk_tokens`: tokens per ArrayRecord record; `records_per_shard`: records per file.
    - `bpe_train_chars`: BPE is trained on at most this many leading characters of the train split.
    - `show_progress`: draw progress bars.

    **Returns:** the `DatasetInfo` (also saved as `out_dir/metadata.json`).
    """
    if tokenizer is None:
        tokenizer = DEFAULT_EMBEDDED_TOKENIZER if _is_embedded(data) else DEFAULT_TEXT_TOKENIZER
    spec = parse_tokenizer_spec(tokenizer)
    if seq_len is not None and seq_len < 1:
        raise ValueError(f"seq_len={seq_len} must be positive.")
    if _is_embedded(data):
        if eval_data is not None:
            raise ValueError("eval_data is only for local data; the embedded corpus makes its own.")
        train, evals = _embedded_streams(embedded_tokens, eval_fraction, seed, embedded_config)
    elif str(data).startswith(HF_PREFIX):
        if eval_data is not None:
            raise ValueError("eval_data cannot be combined with hf: data; use its eval split.")
        train, evals = hf_streams(
            str(data), eval_fraction=eval_fraction, text_field=text_field, data_files=hf_data_files
        )
    else:
        train, evals = local_streams(
            data, eval_data, eval_fraction=eval_fraction, text_field=text_field
        )
    fingerprint = _fingerprint(
        format=FORMAT_VERSION,
        tokenizer=str(spec),
        train=train.description,
        eval=evals.description,
        chunk_tokens=chunk_tokens,
        records_per_shard=records_per_shard,
        bpe_train_chars=bpe_train_chars if spec.kind == "bpe" else None,
    )
    out_dir = os.path.abspath(os.fspath(out_dir or _default_out_dir(data, spec)))
    os.makedirs(out_dir, exist_ok=True)
    info = _reusable(out_dir, fingerprint)
    if info is not None:
        _check_windows(info, seq_len)
        return info

    tmp = tempfile.mkdtemp(prefix=".prepare-", dir=out_dir)
    try:
        if spec.kind == "byte":
            text_tokenizer = ByteTokenizer()
        else:
            text_tokenizer = train_bpe(
                _limited_texts(train, bpe_train_chars), spec, show_progress=show_progress
            )
            text_tokenizer.save(tmp)
        dtype = token_dtype(spec.vocab_size)
        shards, num_tokens, num_bytes = {}, {}, {}
        for split, stream in (("train", train), ("eval", evals)):
            writer = ShardWriter(tmp, split, dtype, chunk_tokens, records_per_shard)
            unit = "row" if str(data).startswith(HF_PREFIX) else "B"
            with tqdm(
                total=stream.total,
                desc=f"tokenising {split}",
                unit=unit,
                unit_scale=True,
                disable=not show_progress,
                file=sys.stderr,
            ) as progress:
                split_bytes = 0
                for batch in _batched(stream, progress):
                    for ids in text_tokenizer.encode_batch(batch):
                        writer.write(ids)
                    split_bytes += sum(len(t.encode("utf-8")) for t in batch)
            writer.close()
            if writer.num_tokens == 0:
                raise ValueError(
                    f"the {split} split of {data or EMBEDDED!r} is empty; give non-empty text "
                    "(or a larger file for a held-out eval tail)."
                )
            shards[split] = tuple(writer.files)
            num_tokens[split] = writer.num_tokens
            num_bytes[split] = split_bytes
        entropy = None
        if _is_embedded(data):
            byte_rate = embedded_corpus.default_corpus(embedded_config).byte_entropy_rate()
            entropy = byte_rate * num_bytes["eval"] / num_tokens["eval"]
        info = DatasetInfo(
            path=out_dir,
            vocab_size=spec.vocab_size,
            tokenizer=str(spec),
            num_tokens=num_tokens,
            num_bytes=num_bytes,
            entropy_rate=entropy,
            source=EMBEDDED if _is_embedded(data) else str(data),
            shards=shards,
            chunk_tokens=chunk_tokens,
            token_dtype=dtype.str,
            fingerprint=fingerprint,
        )
        _check_windows(info, seq_len)
        _install(tmp, out_dir, info)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info
