"""Whether the orthogonal init's host QR still needs OpenBLAS held to one thread (`skipless_models.initialisers`).

    python -m evals.bench_init_qr [--shapes 8x512x128,72x512x128,16x128x128] [--repeats 6] [--out FILE]

Times `numpy.linalg.qr` of a batch of float64 Gaussian matrices (the shapes `orthogonal` draws for a model's layers)
with the BLAS pool limited to 1 thread and at its default, alternating which goes first, through threadpoolctl.
Prints the medians and the worst times and writes JSON with the machine's load average and core count.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import ThreadpoolController

from evals.bench_report import write_report
from evals.one_line import parse_command_line


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(x) for x in text.split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--shapes entry {text!r} is not LxNxK (three positive integers, e.g. 8x512x128)")
    return shape


def time_qr(shape: tuple[int, ...], threads: tuple[int, int], repeats: int, seed: int = 0) -> dict[int, list[float]]:
    """Seconds per `np.linalg.qr` of a `shape` batch with each BLAS thread count, alternating the order."""
    controller = ThreadpoolController()
    g = np.random.default_rng(seed).standard_normal(shape)
    times: dict[int, list[float]] = {n: [] for n in threads}
    for r in range(repeats):
        for n in threads if r % 2 == 0 else threads[::-1]:
            with controller.limit(limits=n, user_api="blas"):
                start = time.perf_counter()
                np.linalg.qr(g)
                times[n].append(time.perf_counter() - start)
    return times


@dataclasses.dataclass(frozen=True)
class BenchInitQROptions:
    """Options of `python -m evals.bench_init_qr` (each field is a flag)."""

    shapes: str = "8x512x128,72x512x128,16x128x128"
    """comma list of LxNxK batches"""
    repeats: int = 6
    """timed QRs per shape and thread count"""
    out: str = "bench_init_qr.json"
    """JSON output file"""


def parse_options(argv: list[str]) -> BenchInitQROptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one."""
    from train.cli_parse import UsageError, parse

    args = parse(BenchInitQROptions, argv, prog="python -m evals.bench_init_qr", description=__doc__.splitlines()[0])
    try:
        for text in args.shapes.split(","):
            _shape(text)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.repeats < 1:
        raise UsageError(f"--repeats={args.repeats} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_command_line(parse_options, argv)
    if args is None:
        return 2
    shapes = [_shape(s) for s in args.shapes.split(",")]
    blas = [p for p in ThreadpoolController().info() if p["user_api"] == "blas"]
    default = max((p["num_threads"] for p in blas), default=1)
    load_before = os.getloadavg()
    rows = []
    print(f"BLAS: {', '.join(p['internal_api'] + ' ' + p['version'] for p in blas) or 'none found'}; "
          f"default {default} thread(s) on {os.cpu_count()} core(s)")
    print(f"{'shape':>14} {'1 thread ms':>12} {f'{default} threads ms':>14} {'worst 1':>9} {f'worst {default}':>9}")
    for shape in shapes:
        times = time_qr(shape, (1, default), args.repeats)
        row = {"shape": list(shape), "one_thread_ms": 1e3 * statistics.median(times[1]),
               "default_threads_ms": 1e3 * statistics.median(times[default]),
               "one_thread_worst_ms": 1e3 * max(times[1]), "default_threads_worst_ms": 1e3 * max(times[default])}
        rows.append(row)
        print(f"{'x'.join(map(str, shape)):>14} {row['one_thread_ms']:12.1f} {row['default_threads_ms']:14.1f} "
              f"{row['one_thread_worst_ms']:9.1f} {row['default_threads_worst_ms']:9.1f}", flush=True)
    write_report(args.out, {"rows": rows, "default_threads": default, "cores": os.cpu_count(), "blas": blas,
                            "load_average_before": load_before, "load_average_after": os.getloadavg()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
