"""Benchmark data preparation: MB/s and tokens/s with 1 and 2 tokenising processes, and a 1 GB build.

    python -m evals.bench_prepare [--corpus-mb 48] [--big-mb 1024] [--out runs/bench_prepare.json]

The corpus is generated in the C4 layout (a folder of `.json.gz` shards of JSON Lines documents)
from WikiText-2's lines, shuffled per shard, when the shared data folder has them (else from the
embedded corpus). A byte-level BPE (`--tokenizer`, default bpe:8192) is trained once; then the
tokenisation stage (read, decompress, parse, tokenise, write ArrayRecord shards) is timed in a fresh
process for each setting:

- `1 process, 1 thread`: tokenisation in the preparing process, the tokenizer single-threaded;
- `1 process, library threads`: the same with the tokenizer's own threads (the earlier default);
- `N processes`: `workers=N` single-threaded worker processes (N = 2 by default).

The speed-up is `N processes` over `1 process, 1 thread` in wall-clock time. Each row also records
its CPU seconds (the preparing process, its threads and its worker processes, start-up included;
"reader": the preparing process alone, which reads, decompresses, parses and writes):
on N otherwise idle cores the wall-clock speed-up can reach at most `N x cpu(1 thread) / cpu(N
processes)`, printed as "bound on idle cores", which other work on the machine cannot distort. With
`--big-mb`, a corpus of that size is then prepared end to end (`prepare_dataset`, BPE training
included) with every core. The load average before and after each row is recorded: other work on
the machine slows every row's wall-clock time; so that the speed-up can be read against what the
machine gives at that moment, `N` copies of a fixed CPU loop (SHA-256) are timed against one copy
before and after the rows ("machine scaling": N on N free cores).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from evals.bench_cli import options_or_exit
from evals.bench_report import write_report

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
WIKITEXT = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "wikitext-2"))
SHARD_MB = 64


def _source_lines() -> list[str]:
    names = ("valid.txt", "test.txt", "train.txt")
    paths = [os.path.join(WIKITEXT, n) for n in names if os.path.isfile(os.path.join(WIKITEXT, n))]
    if paths:
        lines = []
        for path in paths:
            with open(path, encoding="utf-8") as f:
                lines += [line for line in f if line.strip()]
        return lines
    from skipless_data import embedded_corpus

    return "".join(embedded_corpus.default_corpus().iter_text(4 << 20, 0)).splitlines(keepends=True)


def make_corpus(folder: str, megabytes: float, seed: int = 0) -> int:
    """Write about `megabytes` MB of documents as `.json.gz` shards; **Returns:** text bytes."""
    os.makedirs(folder, exist_ok=True)
    lines = np.array(_source_lines(), dtype=object)
    rng, written, shard = np.random.default_rng(seed), 0, 0
    target = int(megabytes * 1e6)
    while written < target:
        order = rng.permutation(len(lines))
        size = min(SHARD_MB * 10**6, target - written)
        records, shard_bytes, start = [], 0, 0
        while shard_bytes < size and start < len(order):
            doc = "".join(lines[order[start : start + 20]])
            start += 20
            records.append(json.dumps({"text": doc, "url": f"doc{shard}-{start}"}) + "\n")
            shard_bytes += len(doc.encode())
        path = os.path.join(folder, f"c4-train.{shard:05d}.json.gz")
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as f:
            f.writelines(records)
        written, shard = written + shard_bytes, shard + 1
    return written


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished child processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


_SPIN = "import hashlib; b = bytes(1 << 20); [hashlib.sha256(b).digest() for _ in range(1500)]"


def machine_scaling(processes: int) -> float:
    """How much more CPU work `processes` copies of a fixed loop get done together than one alone
    (`processes` on truly independent, idle cores; less on shared or busy ones)."""
    def wall(copies: int) -> float:
        start = time.perf_counter()
        spins = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(copies)]
        for spin in spins:
            spin.wait()
        return time.perf_counter() - start

    return processes * wall(1) / wall(processes)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def tokenise_once(corpus: str, tokenizer_dir: str, workers: int) -> dict:
    """Time the tokenisation stage over `corpus` (run in a fresh process per setting)."""
    from skipless_data.local_text import local_streams
    from skipless_data.parallel_encode import BatchEncoder
    from skipless_data.prepare_progress import PrepareProgress
    from skipless_data.shard_writer import ShardWriter, token_dtype
    from skipless_data.text_tokenizer import load_tokenizer
    from skipless_data.tokenise_split import tokenise_split

    spec = json.load(open(os.path.join(tokenizer_dir, "spec.json")))["tokenizer"]
    tokenizer = load_tokenizer(spec, tokenizer_dir)
    train, _ = local_streams(corpus, corpus, eval_fraction=0.05, text_field="text")
    with tempfile.TemporaryDirectory() as out:
        writer = ShardWriter(out, "train", token_dtype(tokenizer.vocab_size), 4096, 16384)
        progress = PrepareProgress("train", train.total, "B", None, enabled=False)
        start, cpu, own = time.perf_counter(), _cpu_seconds(), time.process_time()
        with BatchEncoder(tokenizer, workers, writer.dtype) as encoder:
            result = tokenise_split(train, encoder, writer, tokenizer.token_bytes(), progress, max_tokens=None)
        writer.close()  # the workers have exited (and been reaped) when the encoder closed
        seconds, cpu, own = time.perf_counter() - start, _cpu_seconds() - cpu, time.process_time() - own
    return {"seconds": seconds, "cpu_seconds": cpu, "reader_cpu_seconds": own, "text_bytes": result.num_bytes, "tokens": result.tokens,
            "disk_bytes": train.total}


# The fresh process of one setting: no command line to parse, so its start-up is the module's imports alone.
ONE_SETTING_CODE = ("import json, sys; from evals.bench_prepare import tokenise_once; "
                    "print(json.dumps(tokenise_once(sys.argv[1], sys.argv[2], int(sys.argv[3]))))")


def _run_setting(corpus: str, tokenizer_dir: str, workers: int, threads: bool) -> dict:
    env = dict(os.environ)
    if not threads:
        env["TOKENIZERS_PARALLELISM"] = "false"
    before = _load()
    out = subprocess.run(
        [sys.executable, "-c", ONE_SETTING_CODE, corpus, tokenizer_dir, str(workers)],
        env=env, capture_output=True, text=True, check=True,
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row.update(load_before=before, load_after=_load())
    row["mb_per_s"] = row["text_bytes"] / row["seconds"] / 1e6
    row["tokens_per_s"] = row["tokens"] / row["seconds"]
    return row


def _train_tokenizer(corpus: str, spec: str, folder: str) -> None:
    from skipless_data.local_text import local_streams
    from skipless_data.text_tokenizer import train_bpe
    from skipless_data.tokenizer_spec import parse_tokenizer_spec

    train, _ = local_streams(corpus, corpus, eval_fraction=0.05, text_field="text")
    train_bpe(train.texts(), parse_tokenizer_spec(spec)).save(folder)
    with open(os.path.join(folder, "spec.json"), "w") as f:
        json.dump({"tokenizer": spec}, f)


def _big_build(root: str, megabytes: float, spec: str) -> dict:
    from skipless_data import prepare_dataset

    corpus = os.path.join(root, "big")
    start = time.perf_counter()
    text_bytes = make_corpus(corpus, megabytes, seed=1)
    generated = time.perf_counter() - start
    before, start = _load(), time.perf_counter()
    info = prepare_dataset(corpus, spec, os.path.join(root, "big-out"), show_progress=True)
    seconds = time.perf_counter() - start
    tokens = sum(info.num_tokens.values())
    return {"text_bytes": text_bytes, "seconds": seconds, "generate_seconds": generated,
            "tokens": tokens, "mb_per_s": text_bytes / seconds / 1e6, "tokens_per_s": tokens / seconds,
            "load_before": before, "load_after": _load(), "workers": "all cores"}


@dataclasses.dataclass(frozen=True)
class BenchPrepareOptions:
    """Options of `python -m evals.bench_prepare` (each field is a flag)."""

    corpus_mb: float = 48.0
    """size of the timed corpus (MB of text)"""
    workers: int = 2
    """processes of the parallel row"""
    tokenizer: str = "bpe:8192"
    """the tokenizer trained once and timed (as train.main's --tokenizer)"""
    big_mb: float = 0.0
    """also prepare a corpus this large end to end (0: no)"""
    out: str = os.path.join("runs", "bench_prepare.json")
    """JSON output file"""


def parse_options(argv: list[str]) -> BenchPrepareOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one."""
    from train.cli_parse import UsageError, parse  # here: a setting's fresh process imports this module

    args = parse(BenchPrepareOptions, argv, prog="python -m evals.bench_prepare", description=__doc__.split("\n")[0])
    if not args.corpus_mb > 0:
        raise UsageError(f"--corpus-mb={args.corpus_mb} must be positive")
    if args.workers < 1:
        raise UsageError(f"--workers={args.workers} must be a positive integer")
    if not args.big_mb >= 0:
        raise UsageError(f"--big-mb={args.big_mb} must be >= 0 (0: no end-to-end build)")
    from skipless_data.tokenizer_spec import parse_tokenizer_spec

    try:
        parse_tokenizer_spec(args.tokenizer)
    except ValueError as error:
        raise UsageError(f"--tokenizer: {error}") from None
    return args


def main(argv: list[str] | None = None) -> int:
    args = options_or_exit(parse_options, argv)
    rows, report = [], {"machine": platform.platform(), "cpu_count": os.cpu_count(), "tokenizer": args.tokenizer}
    report["machine_scaling_before"] = machine_scaling(args.workers)
    with tempfile.TemporaryDirectory() as root:
        corpus, tokenizer_dir = os.path.join(root, "corpus"), os.path.join(root, "tokenizer")
        os.makedirs(tokenizer_dir)
        report["corpus_text_bytes"] = make_corpus(corpus, args.corpus_mb)
        _train_tokenizer(corpus, args.tokenizer, tokenizer_dir)
        for name, workers, threads in (("1 process, 1 thread", 1, False),
                                       ("1 process, library threads", 1, True),
                                       (f"{args.workers} processes", args.workers, False)):
            rows.append({"setting": name, **_run_setting(corpus, tokenizer_dir, workers, threads)})
        report["speedup"] = rows[2]["tokens_per_s"] / rows[0]["tokens_per_s"]
        report["speedup_bound_idle"] = args.workers * rows[0]["cpu_seconds"] / rows[2]["cpu_seconds"]
        report["machine_scaling_after"] = machine_scaling(args.workers)
        report["speedup_vs_library_threads"] = rows[2]["tokens_per_s"] / rows[1]["tokens_per_s"]
        if args.big_mb:
            report["big"] = _big_build(root, args.big_mb, args.tokenizer)
    report["rows"] = rows
    print(f"{'setting':<28} {'MB/s':>7} {'tokens/s':>11} {'s':>7} {'CPU s':>7} {'reader':>7} {'load':>11}")
    for row in rows:
        print(f"{row['setting']:<28} {row['mb_per_s']:>7.2f} {row['tokens_per_s']:>11,.0f} {row['seconds']:>7.1f} "
              f"{row['cpu_seconds']:>7.1f} {row['reader_cpu_seconds']:>7.1f} "
              f"{row['load_before']:>5.1f}-{row['load_after']:<5.1f}")
    print(f"speed-up of {args.workers} processes: {report['speedup']:.2f}x over 1 thread, "
          f"{report['speedup_vs_library_threads']:.2f}x over the library's threads; "
          f"bound on idle cores {report['speedup_bound_idle']:.2f}x; the machine itself scaled "
          f"{report['machine_scaling_before']:.2f}x / {report['machine_scaling_after']:.2f}x (before / after) "
          f"with {args.workers} copies of a fixed CPU loop")
    if args.big_mb:
        big = report["big"]
        print(f"{big['text_bytes'] / 1e9:.2f} GB prepared end to end in {big['seconds']:.0f} s "
              f"({big['mb_per_s']:.2f} MB/s, {big['tokens_per_s']:,.0f} tokens/s, load "
              f"{big['load_before']}-{big['load_after']}; generating it took {big['generate_seconds']:.0f} s)")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
