"""The generated source (`generated_source`) as a dataset: `--data generated[:TEXT]`, tokenizer `word:<V>`.

Streams, each a pure function of (stream, sequence index): training rows of run seed s are sequences
`b·G + r` of stream (0, s) (global batch b, row r), so a run never sees a sequence twice and resumes exactly from
the batch position alone; "eval" (the dev stream, for every selection) is stream (1,), "test" (scored once per
final model) is stream (2,), and the optimal-loss estimate uses stream (3,). Nothing is written to disk.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib

import numpy as np

from .dataset_info import DatasetInfo
from .eval_pipeline import EvalBatch
from .generated_source import GeneratedSource, GeneratedSourceConfig, fit_source

GENERATED = "generated"
STREAMS = {"eval": (1,), "test": (2,)}
DEFAULT_EVAL_SEQUENCES = 256
_ROWS_PER_EPOCH = 1 << 40  # "unbounded": 10^12 sequences per run seed


def is_generated(data) -> bool:
    """Whether `data` names the generated source: "generated" (fitted to the embedded corpus) or "generated:TEXT"."""
    return isinstance(data, str) and (data == GENERATED or data.startswith(GENERATED + ":"))


@functools.lru_cache(maxsize=4)
def _fitted(text_path: str | None, vocab_size: int) -> tuple[GeneratedSource, np.ndarray]:
    if text_path is None:
        from . import embedded_corpus

        text = embedded_corpus.generate(400_000, seed=0)
    else:
        path = pathlib.Path(text_path)
        if not path.is_file():
            raise FileNotFoundError(f"--data generated:{text_path}: no such text file to fit the source to.")
        text = path.read_text(encoding="utf-8", errors="replace")
    return fit_source(text, GeneratedSourceConfig(vocab_size=vocab_size))


def generated_source(info_or_data, vocab_size: int | None = None) -> tuple[GeneratedSource, np.ndarray]:
    """The fitted source and its base bigram for a `DatasetInfo` of the generated source (or a `--data` value)."""
    if isinstance(info_or_data, DatasetInfo):
        data, vocab_size = info_or_data.source, info_or_data.vocab_size
    else:
        data = info_or_data
    text = data[len(GENERATED) + 1:] if data.startswith(GENERATED + ":") else None
    return _fitted(str(pathlib.Path(text).resolve()) if text else None, int(vocab_size))


def prepare_generated(data: str, vocab_size: int, seq_len: int | None, eval_sequences: int | None) -> DatasetInfo:
    """The `DatasetInfo` of the generated source; `entropy_rate` is the estimated optimal loss at `seq_len`."""
    source, _ = generated_source(data, vocab_size)
    seq_len = seq_len or 128
    optimal, _ = optimal_loss(data, source.vocab_size, seq_len)
    n_eval = eval_sequences or DEFAULT_EVAL_SEQUENCES
    return DatasetInfo(
        path="", vocab_size=source.vocab_size, tokenizer=f"word:{source.vocab_size}",
        num_tokens={"train": _ROWS_PER_EPOCH * seq_len, "eval": n_eval * seq_len, "test": n_eval * seq_len},
        num_bytes={}, entropy_rate=optimal, source=data if data != GENERATED else GENERATED, shards={},
        chunk_tokens=0, token_dtype="<i4", fingerprint=source.fingerprint(),
    )


@functools.lru_cache(maxsize=16)
def optimal_loss(data: str, vocab_size: int, seq_len: int, sequences: int = 4096) -> tuple[float, float]:
    """(mean, standard error) of the best possible loss over the targets of a `seq_len` window."""
    source, _ = generated_source(data, vocab_size)
    return source.optimal_loss(seq_len, sequences=sequences)


@dataclasses.dataclass(frozen=True)
class GeneratedBatches:
    """Random-access training batches: item b is this process's rows of global batch b, `[G/P, T+1]` int32."""

    data: str
    vocab_size: int
    seq_len: int
    global_batch_size: int
    seed: int
    process_index: int
    process_count: int

    def __len__(self) -> int:
        return _ROWS_PER_EPOCH // self.global_batch_size

    def __getitem__(self, batch: int) -> np.ndarray:
        local = self.global_batch_size // self.process_count
        first = int(batch) * self.global_batch_size + self.process_index * local
        source, _ = generated_source(self.data, self.vocab_size)
        return source.sample(np.arange(first, first + local), (0, self.seed), self.seq_len + 1)


def generated_train_dataset(info: DatasetInfo, *, seq_len: int, global_batch_size: int, seed: int,
                            process_index: int, process_count: int, read_options=None):
    """The training stream as a `grain.IterDataset` (exact resume through its iterator state)."""
    import grain

    source = GeneratedBatches(info.source, info.vocab_size, seq_len, global_batch_size, seed, process_index,
                              process_count)
    options = read_options or grain.ReadOptions(num_threads=1, prefetch_buffer_size=4)
    return grain.MapDataset.source(source).to_iter_dataset(options)


class GeneratedEvalBatches:
    """A finite, re-iterable sequence of `EvalBatch` of a held-out stream ("eval" = dev, "test")."""

    def __init__(self, info: DatasetInfo, *, split: str, seq_len: int, batch_size: int, process_index: int = 0,
                 process_count: int = 1):
        if split not in STREAMS:
            raise ValueError(f"generated source: split {split!r} has no held-out stream; use one of {list(STREAMS)}.")
        self.info, self.split, self.seq_len = info, split, seq_len
        self.batch_size, self.process_index, self.process_count = batch_size, process_index, process_count
        self.sequences = max(1, info.num_tokens[split] // seq_len)

    def __len__(self) -> int:
        return -(-self.sequences // self.batch_size)

    def __iter__(self):
        source, _ = generated_source(self.info)
        local = self.batch_size // self.process_count
        for b in range(len(self)):
            first = b * self.batch_size + self.process_index * local
            indices = np.arange(first, first + local)
            tokens = source.sample(indices, STREAMS[self.split], self.seq_len + 1)
            mask = np.broadcast_to((indices < self.sequences)[:, None], (local, self.seq_len)).copy()
            yield EvalBatch(tokens, mask)
