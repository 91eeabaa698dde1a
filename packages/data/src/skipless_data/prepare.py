"""Command line: tokenise a corpus into ArrayRecord shards (see `preparation.prepare_dataset`).

    python -m skipless_data.prepare --data PATH --tokenizer bpe:8192 --out DIR [--max-train-tokens N]

`--data` is a text file, a folder, JSON Lines (any of them compressed), `hf:NAME[:CONFIG]`, or
`embedded` (default); the result's metadata is printed as JSON. Bad input exits with status 2 and
one `error:` line; a folder that cannot be written exits with status 1 and one `error:` line.
"""

from __future__ import annotations

import argparse
import sys

from .preparation import EMBEDDED, prepare_dataset


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m skipless_data.prepare",
        description="Tokenise a corpus into ArrayRecord shards for training.",
    )
    add = parser.add_argument
    add("--data", default=EMBEDDED,
        help="text file, folder or JSON Lines (also .gz/.xz/.bz2/.zst), hf:NAME[:CONFIG] or 'embedded'")
    add("--eval-data", default=None, help="separate local eval data (default: held-out tail)")
    add("--tokenizer", default=None, help="'byte' or 'bpe:<vocab_size>' (default: by data)")
    add("--out", default=None, help="output folder (default: runs/data/<name>-<tokenizer>)")
    add("--eval-fraction", type=float, default=0.05, help="held-out tail fraction")
    add("--text-field", default="text", help="text field of .jsonl records and hf rows")
    add("--seq-len", type=int, default=None, help="check that one window of seq_len+1 fits")
    add("--embedded-tokens", type=int, default=2_000_000, help="size of the embedded corpus")
    add("--seed", type=int, default=0, help="sampling seed of the embedded corpus")
    add("--chunk-tokens", type=int, default=4096, help="tokens per ArrayRecord record")
    add("--max-train-tokens", type=int, default=None, help="stop the train split at this many tokens")
    add("--max-eval-tokens", type=int, default=None, help="stop the eval split at this many tokens")
    add("--workers", type=int, default=None, help="tokenising processes (default: one per core on >2 cores, else 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        info = prepare_dataset(
            args.data,
            args.tokenizer,
            args.out,
            seq_len=args.seq_len,
            eval_data=args.eval_data,
            eval_fraction=args.eval_fraction,
            text_field=args.text_field,
            embedded_tokens=args.embedded_tokens,
            seed=args.seed,
            chunk_tokens=args.chunk_tokens,
            max_train_tokens=args.max_train_tokens,
            max_eval_tokens=args.max_eval_tokens,
            workers=args.workers,
        )
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write the prepared data: {error}", file=sys.stderr)
        return 1
    print(info.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
