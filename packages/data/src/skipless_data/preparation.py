"""Prepare a corpus: text → tokenizer → ArrayRecord shards + `metadata.json`, within a token budget.

`data` is a text file, a folder, JSON Lines (any of them gzip/xz/bzip2/zstd-compressed),
`hf:NAME[:CONFIG]`, or `embedded` (default). Re-running with the same inputs reuses the shards;
a larger token budget extends them exactly as a fresh build would; a smaller one reads a prefix;
different inputs replace them. One process per folder prepares (`dataset_lock`); the others wait
and then check what it wrote. A build happens in a private temporary folder and `metadata.json`,
which marks a dataset as complete, is written last, so a failed build never looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping

import numpy as np

from . import embedded_corpus
from .checksums import dataset_problem, file_checksum
from .dataset_info import FORMAT_VERSION, METADATA_FILE, DatasetInfo, load_dataset_info
from .dataset_lock import prepare_lock
from .dataset_view import budget_view
from .generated_data import is_generated, prepare_generated
from .embedded_source import EMBEDDED, embedded_streams, is_embedded
from .errors import DataError
from .hf_text import HF_PREFIX, hf_streams
from .local_text import local_streams
from .parallel_encode import BatchEncoder
from .prepare_progress import PrepareProgress
from .shard_writer import ShardWriter, token_dtype
from .text_stream import TextStream
from .text_tokenizer import TOKENIZER_FILE, ByteTokenizer, load_tokenizer, train_bpe
from .tokenise_split import tokenise_split
from .tokenizer_spec import TokenizerSpec, parse_tokenizer_spec

DEFAULT_TEXT_TOKENIZER = "bpe:8192"
DEFAULT_EMBEDDED_TOKENIZER = "byte"
SPLITS = ("train", "eval")
_SHARD_NAME = re.compile(r"^(train|eval)-\d{5}\.array_record$")


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
    name = EMBEDDED if is_embedded(data) else os.path.basename(os.path.normpath(str(data)))
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "data"
    return os.path.join("runs", "data", f"{name}-{str(spec).replace(':', '')}")


def _existing(out_dir: str, fingerprint: str, *, content: bool, quiet: bool) -> DatasetInfo | None:
    """The folder's dataset if it was built from the same inputs and its files are intact."""
    try:
        info = load_dataset_info(out_dir)
    except (FileNotFoundError, ValueError, TypeError, KeyError):
        return None
    if info.fingerprint != fingerprint or info.format_version != FORMAT_VERSION:
        return None
    problem = dataset_problem(info, content=content)
    if problem is not None and content:  # checked because another process wrote it: do not race it
        raise DataError(f"{out_dir}: the prepared dataset is damaged ({problem}); delete the folder "
                        "and prepare it again.")
    if problem is not None:
        if not quiet:
            warnings.warn(f"{out_dir}: the prepared dataset is damaged ({problem}); rebuilding it.",
                          RuntimeWarning, stacklevel=3)
        return None
    return info


def _remove_stale_builds(out_dir: str) -> None:
    """Delete build folders left by a killed preparer (only the lock holder builds)."""
    for name in os.listdir(out_dir):
        if name.startswith(".prepare-") and os.path.isdir(os.path.join(out_dir, name)):
            shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)


def _wants_more(info: DatasetInfo, split: str, budget: int | None) -> bool:
    if info.complete[split]:
        return False
    return budget is None or budget > info.num_tokens[split]


def _check_windows(info: DatasetInfo, seq_len: int | None) -> None:
    if seq_len is None:
        return
    # Only training needs whole windows; evaluation pads a short split (see eval_pipeline).
    count = info.num_tokens["train"]
    if count < seq_len + 1:
        raise DataError(
            f"train split has {count} tokens, shorter than one window of seq_len+1="
            f"{seq_len + 1}; use more data, a larger token budget or a smaller seq_len."
        )


def _install(tmp: str, out_dir: str, info: DatasetInfo) -> None:
    """Move the files built in `tmp` into `out_dir`, drop files the new dataset does not list,
    and write `metadata.json` last."""
    metadata = os.path.join(out_dir, METADATA_FILE)
    if os.path.exists(metadata):
        os.remove(metadata)  # from here on the old dataset no longer looks complete
    for name in os.listdir(tmp):
        os.replace(os.path.join(tmp, name), os.path.join(out_dir, name))
    for name in os.listdir(out_dir):
        if (_SHARD_NAME.match(name) or name == TOKENIZER_FILE) and name not in info.files:
            os.remove(os.path.join(out_dir, name))
    partial = os.path.join(tmp, METADATA_FILE)
    with open(partial, "w") as f:
        f.write(info.to_json())
    os.replace(partial, metadata)


def _empty_split(split: str, data, eval_data) -> DataError:
    if split == "eval" and eval_data is None and not is_embedded(data):
        where = f"the held-out tail of {data}"
        fix = "pass separate --eval-data, or give more text"
    else:
        where = str(eval_data if split == "eval" and eval_data is not None else data or EMBEDDED)
        fix = "give text that is not only whitespace"
    return DataError(f"the {split} split ({where}) holds no text, only whitespace or nothing; {fix}.")


def _file_tokens(path: str, dtype) -> np.ndarray:
    from array_record.python.array_record_module import ArrayRecordReader

    reader = ArrayRecordReader(path)
    try:
        return np.frombuffer(b"".join(reader.read_all()), dtype=dtype)
    finally:
        reader.close()


class _Build:
    """One build into a temporary folder: new splits, or an extension of `existing`'s."""

    def __init__(self, tmp: str, out_dir: str, existing: DatasetInfo | None, spec: TokenizerSpec,
                 chunk_tokens: int, records_per_shard: int):
        self.tmp, self.out_dir, self.existing = tmp, out_dir, existing
        self.spec, self.dtype = spec, token_dtype(spec.vocab_size)
        self.chunk_tokens, self.records_per_shard = chunk_tokens, records_per_shard

    def writer(self, split: str) -> tuple[ShardWriter, int]:
        """A writer for `split` and the tokens of the existing files it keeps as they are."""
        old = self.existing
        if old is None:
            return ShardWriter(self.tmp, split, self.dtype, self.chunk_tokens, self.records_per_shard), 0
        last = len(old.shards[split]) - 1
        kept = last * old.records_per_shard * old.chunk_tokens
        writer = ShardWriter(self.tmp, split, self.dtype, old.chunk_tokens, old.records_per_shard, first_file=last)
        writer.write(_file_tokens(old.shard_paths(split)[-1], self.dtype))  # written again, then continued
        return writer, kept


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
    max_train_tokens: int | None = None,
    max_eval_tokens: int | None = None,
    workers: int | None = None,
    verify: bool = False,
    show_progress: bool = True,
) -> DatasetInfo:
    """Tokenise a corpus into train/eval ArrayRecord shards, or reuse (or extend) earlier shards.

    **Arguments:**

    - `data`: `None` or `"embedded"` (the generated corpus), a local file / folder / JSON Lines
        path (plain or `.gz`/`.xz`/`.bz2`/`.zst`), or `"hf:NAME[:CONFIG]"` (needs `datasets`).
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
    - `max_train_tokens`, `max_eval_tokens`: token budgets: a split stops once it holds this many
        tokens (`None`: all of its text). `hf:` data with a budget is streamed, not downloaded.
    - `workers`: tokenising processes (1: this process, with the tokenizer's own threads; `None`:
        one per core on more than 2 cores, else 1). The shards are byte-identical for any number.
    - `verify`: check the SHA-256 of every file of a dataset that is reused (always done after
        waiting for another process that prepared it; otherwise only sizes are checked).
    - `show_progress`: draw progress bars.

    **Returns:** the `DatasetInfo` (saved as `out_dir/metadata.json`; a smaller budget than the
    folder holds returns a prefix view of it).

    **Raises:** `DataError` (a `ValueError`) for input that is not usable text, `ValueError` for
    bad arguments, `FileNotFoundError` for a missing path.
    """
    if is_generated(data):
        spec = parse_tokenizer_spec(tokenizer or "word:1024")
        if spec.kind != "word":
            raise ValueError(f"--data {data}: the generated source has its own words; use --tokenizer word:<V>.")
        eval_sequences = max_eval_tokens // seq_len if max_eval_tokens and seq_len else None
        return prepare_generated(data, spec.vocab_size, seq_len, eval_sequences)
    if tokenizer is None:
        tokenizer = DEFAULT_EMBEDDED_TOKENIZER if is_embedded(data) else DEFAULT_TEXT_TOKENIZER
    spec = parse_tokenizer_spec(tokenizer)
    if spec.kind == "word":
        raise ValueError("tokenizer word:<V> belongs to the generated source; pass --data generated[:TEXT].")
    if seq_len is not None and seq_len < 1:
        raise ValueError(f"seq_len={seq_len} must be positive.")
    budgets = {"train": max_train_tokens, "eval": max_eval_tokens}
    for split, budget in budgets.items():
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ValueError(f"--max-{split}-tokens={budget!r} must be a positive integer (or left out).")
    if is_embedded(data):
        if eval_data is not None:
            raise ValueError("eval_data is only for local data; the embedded corpus makes its own.")
        train, evals = embedded_streams(embedded_tokens, eval_fraction, seed, embedded_config)
    elif str(data).startswith(HF_PREFIX):
        if eval_data is not None:
            raise ValueError("eval_data cannot be combined with hf: data; use its eval split.")
        streaming = any(b is not None for b in budgets.values())
        train, evals = hf_streams(str(data), eval_fraction=eval_fraction, text_field=text_field,
                                  data_files=hf_data_files, streaming=streaming)
    else:
        train, evals = local_streams(data, eval_data, eval_fraction=eval_fraction, text_field=text_field)
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
    streams = {"train": train, "eval": evals}
    with prepare_lock(out_dir, announce=show_progress) as lock:
        if lock.held:
            _remove_stale_builds(out_dir)
        info = _existing(out_dir, fingerprint, content=verify or lock.waited, quiet=not show_progress)
        if info is None or any(_wants_more(info, s, budgets[s]) for s in SPLITS):
            build = dict(data=data, eval_data=eval_data, workers=workers, show_progress=show_progress,
                         bpe_train_chars=bpe_train_chars, embedded_config=embedded_config, seq_len=seq_len)
            info = _build(out_dir, info, spec, streams, budgets, fingerprint, chunk_tokens, records_per_shard, **build)
    view = budget_view(info, budgets, lambda: load_tokenizer(info.tokenizer, info.path).token_bytes())
    _check_windows(view, seq_len)
    return view


def _build(out_dir: str, existing: DatasetInfo | None, spec: TokenizerSpec, streams: Mapping[str, TextStream],
           budgets: Mapping[str, int | None], fingerprint: str, chunk_tokens: int, records_per_shard: int, *,
           data, eval_data, workers, show_progress, bpe_train_chars, embedded_config, seq_len) -> DatasetInfo:
    tmp = tempfile.mkdtemp(prefix=".prepare-", dir=out_dir)
    try:
        if existing is not None:
            text_tokenizer = load_tokenizer(existing.tokenizer, out_dir)
            files = {TOKENIZER_FILE: existing.files[TOKENIZER_FILE]} if TOKENIZER_FILE in existing.files else {}
        elif spec.kind == "byte":
            text_tokenizer, files = ByteTokenizer(), {}
        else:
            text_tokenizer = train_bpe(_limited_texts(streams["train"], bpe_train_chars), spec,
                                       show_progress=show_progress)
            text_tokenizer.save(tmp)
            files = {TOKENIZER_FILE: file_checksum(os.path.join(tmp, TOKENIZER_FILE))}
        build = _Build(tmp, out_dir, existing, spec, chunk_tokens, records_per_shard)
        table = text_tokenizer.token_bytes()
        fields = {name: {} for name in ("num_tokens", "num_bytes", "shards", "max_tokens", "complete", "resume")}
        with BatchEncoder(text_tokenizer, workers, build.dtype) as encoder:
            for split, stream in streams.items():
                _build_split(build, split, stream, budgets[split], encoder, table, fields, files,
                             data=data, eval_data=eval_data, show_progress=show_progress)
        entropy = None
        if is_embedded(data):
            byte_rate = embedded_corpus.default_corpus(embedded_config).byte_entropy_rate()
            entropy = byte_rate * fields["num_bytes"]["eval"] / fields["num_tokens"]["eval"]
        info = DatasetInfo(
            path=out_dir,
            vocab_size=spec.vocab_size,
            tokenizer=str(spec),
            entropy_rate=entropy,
            source=EMBEDDED if is_embedded(data) else str(data),
            chunk_tokens=existing.chunk_tokens if existing else chunk_tokens,
            records_per_shard=existing.records_per_shard if existing else records_per_shard,
            token_dtype=build.dtype.str,
            fingerprint=fingerprint,
            files=files,
            **fields,
        )
        _check_windows(budget_view(info, budgets, text_tokenizer.token_bytes), seq_len)
        _install(tmp, out_dir, info)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def _build_split(build: _Build, split: str, stream: TextStream, budget: int | None, encoder: BatchEncoder,
                 table, fields: dict, files: dict, *, data, eval_data, show_progress: bool) -> None:
    old = build.existing
    if old is not None and not _wants_more(old, split, budget):
        for name in fields:
            fields[name][split] = getattr(old, name)[split]
        files.update({n: old.files[n] for n in old.shards[split]})
        return
    writer, kept_tokens = build.writer(split)
    have = old.num_tokens[split] if old is not None else 0
    start = old.resume[split] if old is not None else {"pieces": 0, "skip_tokens": 0}
    progress = PrepareProgress(split, stream.total, stream.unit, budget, show_progress, initial_tokens=have)
    try:
        result = tokenise_split(stream, encoder, writer, table, progress,
                                max_tokens=None if budget is None else budget - have,
                                start_piece=start["pieces"], skip_tokens=start["skip_tokens"])
    finally:
        progress.close()
    writer.close()
    tokens = kept_tokens + writer.num_tokens
    if tokens == 0 or (old is None and not result.saw_text):
        raise _empty_split(split, data, eval_data)
    kept_files = old.shards[split][:-1] if old is not None else ()
    fields["shards"][split] = (*kept_files, *writer.files)
    fields["num_tokens"][split] = tokens
    fields["num_bytes"][split] = (old.num_bytes[split] if old is not None else 0) + result.num_bytes
    fields["max_tokens"][split] = budget
    fields["complete"][split] = result.complete
    fields["resume"][split] = {"pieces": result.pieces, "skip_tokens": result.skip_tokens}
    files.update({n: old.files[n] for n in kept_files})
    files.update(writer.checksums)
