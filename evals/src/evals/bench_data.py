"""Benchmark the data pipeline: preparation time and tokens/s of training and eval batches.

    python -m evals.bench_data [--out runs/bench_data.json] [--train-tokens-per-s 2000]

Prepares the embedded corpus (byte tokens) and, when present, WikiText-2 (BPE trained on valid,
evaluated on test) in a temporary folder, then times the Grain training pipeline and the eval
pipeline for a few batch shapes. The last column compares the pipeline with what a training step
consumes (`--train-tokens-per-s`, default: the tiny-GPT CPU step measured in docs/stack.md); the
pipeline should deliver at least 100 times that.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import platform
import tempfile
import time

import numpy as np

from skipless_data import eval_batches, prepare_dataset, train_dataset
from evals.bench_report import write_report
from evals.one_line import parse_command_line

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
WIKITEXT = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "wikitext-2"))
SHAPES = ((8, 256), (64, 512))


def _time_train(info, batch: int, seq_len: int, seconds: float) -> float:
    iterator = iter(train_dataset(info, seq_len=seq_len, global_batch_size=batch, seed=0))
    next(iterator)  # start the prefetch threads outside the timed region
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(iterator)
        steps += 1
    return steps * batch * seq_len / (time.perf_counter() - start)


def _time_eval(info, batch: int, seq_len: int) -> float:
    start, targets = time.perf_counter(), 0
    for eval_batch in eval_batches(info, seq_len=seq_len, batch_size=batch):
        targets += int(np.sum(eval_batch.mask))
    return targets / (time.perf_counter() - start)


def _prepare(name: str, root: str) -> tuple[object, float]:
    start = time.perf_counter()
    if name == "embedded":
        info = prepare_dataset(None, "byte", os.path.join(root, name), show_progress=False)
    else:
        info = prepare_dataset(
            os.path.join(WIKITEXT, "valid.txt"),
            "bpe:8192",
            os.path.join(root, name),
            eval_data=os.path.join(WIKITEXT, "test.txt"),
            show_progress=False,
        )
    return info, time.perf_counter() - start


def _measure(names: list[str], seconds: float) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for name in names:
            info, prepare_s = _prepare(name, root)
            total = sum(info.num_tokens.values())
            rows.append(
                {
                    "dataset": name,
                    "stage": "prepare",
                    "shape": "-",
                    "tokens_per_s": total / prepare_s,
                    "seconds": prepare_s,
                    "tokens": total,
                }
            )
            for batch, seq_len in SHAPES:
                rate = _time_train(info, batch, seq_len, seconds)
                row = {"dataset": name, "stage": "train", "shape": f"{batch}x{seq_len}"}
                rows.append({**row, "tokens_per_s": rate})
            rate = _time_eval(info, 16, 256)
            rows.append({"dataset": name, "stage": "eval", "shape": "16x256", "tokens_per_s": rate})
    return rows


def _print_table(rows: list[dict]) -> None:
    header = f"{'dataset':<20} {'stage':<8} {'shape':<8} {'tokens/s':>12} {'x train step':>13}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['dataset']:<20} {row['stage']:<8} {row['shape']:<8} "
            f"{row['tokens_per_s']:>12,.0f} {row['x_train_step']:>13,.0f}"
        )


@dataclasses.dataclass(frozen=True)
class BenchDataOptions:
    """Options of `python -m evals.bench_data` (each field is a flag)."""

    out: str = os.path.join("runs", "bench_data.json")
    """JSON output file"""
    train_tokens_per_s: float = 2000.0
    """the train step's tokens/s that each row's throughput is compared with"""
    seconds: float = 3.0
    """timing window per row"""


def parse_options(argv: list[str]) -> BenchDataOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one."""
    from train.cli_parse import UsageError, parse

    args = parse(BenchDataOptions, argv, prog="python -m evals.bench_data", description=__doc__.split("\n")[0])
    for flag, value in (("train-tokens-per-s", args.train_tokens_per_s), ("seconds", args.seconds)):
        if not value > 0:
            raise UsageError(f"--{flag}={value} must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_command_line(parse_options, argv)
    if args is None:
        return 2

    names = ["embedded"] + (["wikitext2-bpe8192"] if os.path.isdir(WIKITEXT) else [])
    rows = _measure(names, args.seconds)
    for row in rows:
        row["x_train_step"] = row["tokens_per_s"] / args.train_tokens_per_s
    _print_table(rows)
    report = {
        "rows": rows,
        "train_tokens_per_s": args.train_tokens_per_s,
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
