"""skipless_data: text → tokenizer → ArrayRecord shards → sharded, resumable Grain batches.

Public API:

- `prepare_dataset`, `DatasetInfo`, `load_dataset_info`: tokenise a corpus into shards (or reuse
  or extend them); `verify_dataset`: check its files' checksums; `DataError`: unusable input.
- `train_dataset`: infinite shuffled batches `[global_batch // processes, seq_len + 1]`, resumable.
- `eval_batches`, `EvalBatch`: each eval token exactly once, in order, with a target mask.
- `parse_tokenizer_spec`, `TokenizerSpec`, `load_tokenizer`, `ByteTokenizer`, `BpeTokenizer`.
- `TokenWindows`: random access to the fixed-length windows of a split; `split_tokens`: a
  whole split's token stream.
- `embedded_corpus`: the generated default corpus with an exact entropy rate.
- `generated_source`, `GeneratedSource`, `fit_source`: an unbounded word-level source fitted to a text, with
  long-range structure (hidden topic, copying) and exact per-token likelihoods (`--data generated[:TEXT]`);
  `generated_optimal_loss`: its best possible loss at a window length, with a standard error.
"""

from . import embedded_corpus
from .generated_data import generated_source, is_generated
from .generated_data import optimal_loss as generated_optimal_loss
from .generated_source import GeneratedSource, GeneratedSourceConfig, fit_source
from .checksums import verify_dataset
from .dataset_info import DatasetInfo, load_dataset_info
from .errors import DataError
from .eval_pipeline import EvalBatch, EvalBatches, eval_batches
from .preparation import prepare_dataset
from .split_tokens import split_tokens
from .text_tokenizer import BpeTokenizer, ByteTokenizer, load_tokenizer
from .token_windows import TokenWindows
from .tokenizer_spec import TokenizerSpec, parse_tokenizer_spec
from .train_pipeline import train_dataset

__all__ = [
    "BpeTokenizer",
    "ByteTokenizer",
    "DataError",
    "DatasetInfo",
    "EvalBatch",
    "EvalBatches",
    "GeneratedSource",
    "GeneratedSourceConfig",
    "TokenWindows",
    "TokenizerSpec",
    "embedded_corpus",
    "eval_batches",
    "fit_source",
    "generated_optimal_loss",
    "generated_source",
    "is_generated",
    "load_dataset_info",
    "load_tokenizer",
    "parse_tokenizer_spec",
    "prepare_dataset",
    "split_tokens",
    "train_dataset",
    "verify_dataset",
]
