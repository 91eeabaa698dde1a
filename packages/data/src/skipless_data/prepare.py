"""Command line: tokenise a corpus into ArrayRecord shards (see `preparation.prepare_dataset`).

    python -m skipless_data.prepare --data PATH --tokenizer bpe:8192 --out DIR

`--data` is a text file, a folder, a `.jsonl` file, `hf:NAME[:CONFIG]`, or `embedded` (default);
the result's metadata is printed as JSON. Bad input exits with status 2 and one `error:` line.
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
    add("--data", default=EMBEDDED, help="file, folder, .jsonl, hf:NAME[:CONFIG] or 'embedded'")
    add("--eval-data", default=None, help="separate local eval data (default: held-out tail)")
    add("--tokenizer", default=None, help="'byte' or 'bpe:<vocab_size>' (default: by data)")
    add("--out", default=None, help="output folder (default: runs/data/<name>-<tokenizer>)")
    add("--eval-fraction", type=float, default=0.05, help="held-out tail fraction")
    add("--text-field", default="text", help="text field of .jsonl records and hf rows")
    add("--seq-len", type=int, default=None, help="check that one window of seq_len+1 fits")
    add("--embedded-tokens", type=int, default=2_000_000, help="size of the embedded corpus")
    add("--seed", type=int, default=0, help="sampling seed of the embedded corpus")
    add("--chunk-tokens", type=int, default=4096, help="tokens per ArrayRecord record")
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
        )
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(info.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
