"""Train-step speed of this checkout against another one, side by side in one run (an A/B of two code versions).

    python -m evals.bench_step_ab --baseline REV [--cases tiny-espa,deep-espa,...] [--steps 16] [--rounds 8]
                                  [--out FILE]

`REV` is a git revision of this repository (exported with `git archive` into a temporary folder) or a folder
holding another checkout. Two worker processes build the same `evals.bench_step` cases: A imports this checkout's
packages, B the baseline's (`sigprop`, `skipless_models`, `pallas_kernels` and `train` from its `src` folders,
first on PYTHONPATH); the timing harness is this checkout's `evals.bench_step` in both. Then they take turns in
`--rounds` rounds, each round timing `steps // rounds` steps of every case in one worker and then in the other
(the order alternates between rounds), so both versions see the same minutes of this machine's drifting speed.
Per case: median wall and CPU milliseconds per step of each version and their ratio (`speedup` = B's time over
A's: above 1, this checkout is faster). Prints a table and writes JSON; the machine's load average is recorded
before and after.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
from typing import Literal

from evals.bench_cli import comma_list, options_or_exit, refuse_usage
from evals.bench_report import write_report

REPO = pathlib.Path(__file__).resolve().parents[3]
SRC_FOLDERS = ("packages/sigprop/src", "packages/models/src", "pallas_kernels/src", "train/src")


# ----- worker ---------------------------------------------------------------------------------------------------
# Started without a command line to parse: the baseline's `train` (first on PYTHONPATH) may predate train.cli_parse.
WORKER_CODE = ("import sys; from evals.bench_step_ab import _worker; "
               "_worker([c for c in sys.argv[1].split(',') if c], sys.argv[2])")


def _worker(cases: list[str], dtype: str) -> None:
    """Builds the cases, then answers `time N` / `samples` / `quit` lines on stdin with one JSON line each."""
    from train.xla_env import avoid_cpu_eigen_pool_hang

    avoid_cpu_eigen_pool_hang()
    import skipless_models

    from evals import bench_step

    benches = {name: bench_step._Bench(name, bench_step.CASES[name], dtype=dtype, torch_ok=False, scan_unroll=None)
               for name in cases}
    _reply(dict(ready=True, models=skipless_models.__file__, compile_s={n: b.info["compile_s"] for n, b in benches.items()}))
    for line in sys.stdin:
        command, *arg = line.split()
        if command == "time":
            for bench in benches.values():
                bench.time(int(arg[0]))
            _reply(dict(done=True))
        elif command == "samples":
            _reply({name: bench.jax_times for name, bench in benches.items()})
        else:
            return


def _reply(obj) -> None:
    print(json.dumps(obj), flush=True)


class _Worker:
    """One worker process and its line protocol."""

    def __init__(self, label: str, cases: list[str], dtype: str, pythonpath: str | None, hugepage: bool):
        env = dict(os.environ)
        if pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(x for x in (pythonpath, env.get("PYTHONPATH")) if x)
        if hugepage and sys.platform.startswith("linux"):
            from train.xla_env import HUGEPAGE_TUNABLE

            env["GLIBC_TUNABLES"] = ":".join(x for x in (env.get("GLIBC_TUNABLES"), HUGEPAGE_TUNABLE) if x)
        self.label = label
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_CODE, ",".join(cases), dtype],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        self.ready = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.label} ended early (exit {self.proc.wait()}); see its stderr above")
        return json.loads(line)

    def ask(self, command: str):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


# ----- driver ---------------------------------------------------------------------------------------------------
def baseline_folder(baseline: str, tmp: pathlib.Path) -> pathlib.Path:
    """A folder with the baseline's source: `baseline` itself when it is one, else `git archive` of that revision."""
    path = pathlib.Path(baseline)
    if path.is_dir():
        return path
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", baseline], capture_output=True)
    if archive.returncode:
        raise ValueError(f"--baseline {baseline}: neither a folder nor a git revision of {REPO} "
                         f"({archive.stderr.decode().strip().splitlines()[-1:]})")
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
    return tmp


def compare(cases: list[str], baseline: pathlib.Path, *, dtype: str, steps: int, rounds: int, hugepage: bool,
            log=print) -> dict:
    """Time `cases` in this checkout (A) and in `baseline` (B), alternating. **Returns:** the JSON-ready result."""
    missing = [f for f in SRC_FOLDERS if not (baseline / f).is_dir()]
    if missing:
        raise ValueError(f"--baseline {baseline}: no {missing[0]} folder; pass a checkout of this repository")
    load_before = os.getloadavg()
    a = _Worker("A", cases, dtype, None, hugepage)
    b = _Worker("B", cases, dtype, os.pathsep.join(str(baseline / f) for f in SRC_FOLDERS), hugepage)
    try:
        log(f"A imports {a.ready['models']}\nB imports {b.ready['models']}")
        per_round = max(1, steps // rounds)
        for index in range(rounds):
            for worker in ((a, b) if index % 2 == 0 else (b, a)):
                worker.ask(f"time {per_round}")
            log(f"  round {index + 1}/{rounds} done")
        samples_a, samples_b = a.ask("samples"), b.ask("samples")
    finally:
        a.close()
        b.close()
    rows = []
    for name in cases:
        (wall_a, cpu_a), (wall_b, cpu_b) = (tuple(statistics.median(x) for x in zip(*s[name])) for s in (samples_a, samples_b))
        rows.append(dict(case=name, dtype=dtype, a_step_ms=1e3 * wall_a, b_step_ms=1e3 * wall_b, a_cpu_ms=1e3 * cpu_a,
                         b_cpu_ms=1e3 * cpu_b, speedup=wall_b / wall_a, speedup_cpu=cpu_b / cpu_a,
                         a_compile_s=a.ready["compile_s"][name], b_compile_s=b.ready["compile_s"][name],
                         samples=len(samples_a[name])))
    return dict(a=str(REPO), b=str(baseline), a_models=a.ready["models"], b_models=b.ready["models"], steps=steps,
                rounds=rounds, load_before=load_before, load_after=os.getloadavg(), rows=rows)


def print_table(result: dict) -> None:
    header = f"{'case':<12} {'dtype':<8} {'A ms':>8} {'B ms':>8} {'A cpu':>8} {'B cpu':>8} {'B/A wall':>8} {'B/A cpu':>8}"
    print(header)
    print("-" * len(header))
    for r in result["rows"]:
        print(f"{r['case']:<12} {r['dtype']:<8} {r['a_step_ms']:>8.1f} {r['b_step_ms']:>8.1f} {r['a_cpu_ms']:>8.0f} "
              f"{r['b_cpu_ms']:>8.0f} {r['speedup']:>8.3f} {r['speedup_cpu']:>8.3f}")
    print(f"load average before {result['load_before']}, after {result['load_after']}")


@dataclasses.dataclass(frozen=True)
class BenchStepABOptions:
    """Options of `python -m evals.bench_step_ab` (each field is a flag)."""

    baseline: str | None = None
    """git revision of this repository, or a folder holding another checkout (required)"""
    cases: str = "tiny-espa,tiny-uspa,tiny-vanilla,deep-espa,deep-uspa"
    """comma list of cases (evals.bench_step.CASES; an unknown name lists them)"""
    dtypes: Literal["float32", "bfloat16"] = "float32"
    """compute dtype of both versions"""
    steps: int = 16
    """timed steps per case and version"""
    rounds: int = 8
    """alternations between the two versions"""
    malloc: Literal["hugepage", "default"] = "hugepage"
    """both workers under glibc.malloc.hugetlb=1 (as train.main runs), or malloc's default"""
    out: str = "bench_step_ab.json"
    """JSON output file"""


def parse_options(argv: list[str]) -> BenchStepABOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one."""
    from train.cli_parse import UsageError, parse  # here: the baseline worker imports this module

    from evals.bench_step import CASES

    args = parse(BenchStepABOptions, argv, prog="python -m evals.bench_step_ab", description=__doc__.split("\n")[0])
    unknown = sorted(set(comma_list(args.cases)) - set(CASES))
    if unknown:
        raise UsageError(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    if not args.baseline:
        raise UsageError("--baseline is required (a git revision such as main, or a folder)")
    if args.steps < 1 or args.rounds < 1:
        raise UsageError("--steps and --rounds must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = options_or_exit(parse_options, argv)
    cases = comma_list(args.cases)
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        try:
            baseline = baseline_folder(args.baseline, pathlib.Path(tmp))
            result = compare(cases, baseline, dtype=args.dtypes, steps=args.steps, rounds=args.rounds,
                             hugepage=args.malloc == "hugepage")
        except ValueError as err:
            refuse_usage(str(err))
    result["baseline"] = args.baseline
    print()
    print_table(result)
    write_report(args.out, result)
    return result


if __name__ == "__main__":
    main()
