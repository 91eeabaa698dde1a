"""Benchmark the training step (forward, backward, AdamW) against a PyTorch eager twin of the same model.

    python -m evals.bench_step [--cases tiny-preln,deep-espa,...] [--steps 12] [--dtypes float32,bfloat16]
                               [--compile-depths 12,36,72] [--torch-path DIR] [--out FILE]

For every case: the JAX step's first-call compile time, the median step time over `--steps` timed
steps after warm-up, tokens/s, model FLOP/s (`model_flops_per_token`, PaLM convention) and, when torch is
importable, the PyTorch eager step on the same parameters (`torch_tokens_per_s`, `ratio_vs_torch`).
All cases and both implementations take turns in small rounds (this machine's speed drifts by tens of
percent between minutes, so only samples from the same rounds are compared). The dense-matmul FLOP/s of
one XLA f32 matmul, timed in every round, gives the attainable peak. A summary checks the targets:
tokens/s >= PyTorch eager, model FLOP/s >= 60% of the dense matmul, SPA within 5% of standard attention.
Before timing, the two implementations' losses on one batch are compared (`loss_diff`).

Compile-time rows (`--compile-depths`) lower and compile the step of the cpu-tiny E-SPA model at each
depth: layers run under `lax.scan`, so compile time should stay flat in depth.

torch is never a dependency: install a CPU build into a folder of its own and pass `--torch-path`
(or put it on PYTHONPATH); without it the table says so and the PyTorch columns stay empty.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import skipless_models
from skipless_models import ModelConfig
from train.xla_env import avoid_cpu_eigen_pool_hang, malloc_note, reexec_with_hugepage_malloc
from evals.bench_cli import comma_list, options_or_exit
from evals.bench_report import write_report

LR, WEIGHT_DECAY = 1e-4, 0.1
# Malloc: see train.xla_env (huge pages cut ~110k page faults and ~25% of the CPU time per step here).
# Both JAX and PyTorch run under the same setting.


@dataclass(frozen=True)
class Case:
    """A configuration to time: `config` and the batch size."""

    config: ModelConfig
    batch: int


def _cases() -> dict[str, Case]:
    tiny = skipless_models.preset("cpu-tiny")  # 8 layers, D 128, T 128, V 4096
    preln = dict(block="preln", attention="standard", mlp_activation="gelu")
    variants = {
        "preln": preln,
        "espa": dict(attention="espa"),
        "uspa": dict(attention="uspa"),
        "vsi": dict(attention="value_skipinit"),
        "vanilla": dict(attention="standard"),
    }
    cases = {f"tiny-{name}": Case(tiny.replace(**kw), 16) for name, kw in variants.items()}
    deep = tiny.replace(depth=16)
    cases.update({f"deep-{name}": Case(deep.replace(**kw), 16) for name, kw in variants.items()})
    cases["wide-preln"] = Case(tiny.replace(depth=6, width=256, mlp_width=1024, seq_len=256, **preln), 8)
    return cases


CASES = _cases()
DEFAULT_CASES = ("tiny-preln", "tiny-vanilla", "tiny-espa", "tiny-uspa", "tiny-vsi",
                 "deep-preln", "deep-vanilla", "deep-espa", "deep-uspa", "deep-vsi", "wide-preln")
# The speed targets the summary checks: tokens/s at least PyTorch eager's, model FLOP/s at least this share
# of the dense-matmul rate measured in the same run, SPA attention within 5% of standard attention.
TARGET_RATIO_VS_TORCH, TARGET_MFU_VS_MATMUL, TARGET_SPA_VS_STANDARD = 1.0, 0.6, 0.95


# ----- JAX step ---------------------------------------------------------------------------------------
def make_jax_step(model):
    """A jitted AdamW train step on every array leaf of the model (all are parameters).

    **Returns:** `(step, params, opt_state)`; `step(params, opt_state, tokens)` returns `(params, opt_state, loss)`
    and donates the first two.
    """
    params, static = eqx.partition(model, eqx.is_array)
    optimizer = optax.adamw(LR, weight_decay=WEIGHT_DECAY)

    def step(params, opt_state, tokens_BxTp1):
        def loss_of(p):
            return skipless_models.loss_fn(eqx.combine(p, static), tokens_BxTp1)[0]

        loss, grads = jax.value_and_grad(loss_of)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1)), params, optimizer.init(params)


def _jax_loss(model, tokens) -> float:
    return float(jax.jit(lambda m, t: skipless_models.loss_fn(m, t)[0])(model, tokens))


def matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of one XLA float32 `[n, n] @ [n, n]` matmul (median), in GFLOP/s."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    f(a, a).block_until_ready()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, a).block_until_ready()
        samples.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(samples) / 1e9


# ----- cases ------------------------------------------------------------------------------------------
class _Bench:
    """One case ready to time: its compiled JAX step, the PyTorch twin (when available) and their samples."""

    def __init__(self, name: str, case: Case, *, dtype: str, torch_ok: bool, scan_unroll: int | None):
        unroll = case.config.scan_unroll if scan_unroll is None else scan_unroll
        cfg = case.config.replace(compute_dtype=dtype, attention_impl="xla", scan_unroll=unroll)
        model = skipless_models.build_model(cfg, key=jax.random.PRNGKey(0), verbose=False)
        self.tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, (case.batch, cfg.seq_len + 1), dtype=np.int32)
        self.tokens_dev = jnp.asarray(self.tokens)
        self.cfg, self.n_tokens = cfg, case.batch * cfg.seq_len
        self.info = dict(
            case=name, dtype=dtype, scan_unroll=cfg.resolved_scan_unroll, block=cfg.block, attention=cfg.attention,
            depth=cfg.depth, width=cfg.width, seq_len=cfg.seq_len, batch=case.batch, vocab=cfg.vocab_size,
        )
        self.torch_step = None
        if torch_ok and dtype == "float32":
            from evals.torch_reference import make_torch_step

            self.torch_step, torch_loss_of = make_torch_step(model, lr=LR, weight_decay=WEIGHT_DECAY)
            self.info["loss_diff"] = abs(_jax_loss(model, self.tokens_dev) - torch_loss_of(self.tokens))
        self.step, self.params, self.opt_state = make_jax_step(model)
        del model
        start = time.perf_counter()
        self._jax_step()
        self.info["compile_s"] = time.perf_counter() - start
        if self.torch_step is not None:
            self.torch_step(self.tokens)  # warm-up
        self.jax_times: list = []
        self.torch_times: list = []

    def _jax_step(self):
        self.params, self.opt_state, loss = self.step(self.params, self.opt_state, self.tokens_dev)
        loss.block_until_ready()

    def time(self, n: int) -> None:
        """`n` timed JAX steps, then `n` PyTorch steps (when there is a twin)."""
        for _ in range(n):
            with _Timer(self.jax_times):
                self._jax_step()
        if self.torch_step is not None:
            for _ in range(n):
                with _Timer(self.torch_times):
                    self.torch_step(self.tokens)

    def row(self, matmul: float) -> dict:
        """**Returns:** the JSON-ready row (medians), with `matmul` the dense-matmul GFLOP/s of the same minutes."""
        row = dict(self.info)
        flops = skipless_models.model_flops_per_token(self.cfg) * self.n_tokens
        step_s, cpu_s = (statistics.median(x) for x in zip(*self.jax_times))
        row.update(step_ms=1e3 * step_s, cpu_ms=1e3 * cpu_s, tokens_per_s=self.n_tokens / step_s,
                   model_gflops=flops / step_s / 1e9)
        if self.torch_times:
            torch_s, torch_cpu_s = (statistics.median(x) for x in zip(*self.torch_times))
            row.update(
                torch_step_ms=1e3 * torch_s, torch_cpu_ms=1e3 * torch_cpu_s, torch_tokens_per_s=self.n_tokens / torch_s,
                torch_model_gflops=flops / torch_s / 1e9, ratio_vs_torch=torch_s / step_s,
                ratio_vs_torch_cpu=torch_cpu_s / cpu_s,
            )
        row["matmul_gflops"] = matmul
        row["mfu_vs_matmul"] = row["model_gflops"] / matmul
        return row


def run_cases(cases: list[tuple[str, Case]], *, dtype: str, steps: int, rounds: int, torch_ok: bool,
              scan_unroll: int | None = None, log=print) -> list[dict]:
    """Time every case's JAX step (and PyTorch twin), all cases taking turns in each of `rounds` rounds.

    The machine's speed drifts by tens of percent between minutes, so every comparison in the table
    (JAX vs PyTorch, SPA vs standard attention, model FLOP/s vs the dense matmul) is between samples
    taken in the same rounds: each round times `steps // rounds` steps of every case and implementation,
    then the dense matmul; each number is the median over all rounds.

    **Returns:** one JSON-ready row per case, in order.
    """
    benches = []
    for name, case in cases:
        benches.append(_Bench(name, case, dtype=dtype, torch_ok=torch_ok, scan_unroll=scan_unroll))
        log(f"  {name} {dtype}: compiled in {benches[-1].info['compile_s']:.1f} s")
    per_round = max(1, steps // rounds)
    matmul_samples = []
    for index in range(rounds):
        for bench in benches:
            bench.time(per_round)
        matmul_samples.append(matmul_gflops(repeats=5))
        log(f"  round {index + 1}/{rounds} done")
    matmul = statistics.median(matmul_samples)
    return [bench.row(matmul) for bench in benches]


def run_case(name: str, case: Case, *, dtype: str, steps: int, rounds: int, torch_ok: bool,
             scan_unroll: int | None = None) -> dict:
    """`run_cases` for one case. **Returns:** its row."""
    return run_cases([(name, case)], dtype=dtype, steps=steps, rounds=rounds, torch_ok=torch_ok,
                     scan_unroll=scan_unroll, log=lambda *_: None)[0]


class _Timer:
    """Appends `(wall seconds, process CPU seconds)` of the block to `samples`.

    CPU time (all threads) is the steadier number on a shared machine: other processes stretch the wall
    time of whichever implementation they happen to overlap, but barely change the CPU time it needs.
    """

    def __init__(self, samples: list):
        self.samples = samples

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), _cpu_seconds()

    def __exit__(self, *exc):
        self.samples.append((time.perf_counter() - self.wall, _cpu_seconds() - self.cpu))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def compile_time(depth: int, dtype: str, batch: int = 16) -> dict:
    """Seconds (wall and process CPU) to lower + compile the train step of the cpu-tiny E-SPA model at `depth` layers
    (layer loop rolled, `scan_unroll=1`)."""
    cfg = skipless_models.preset("cpu-tiny", depth=depth, compute_dtype=dtype, attention_impl="xla", scan_unroll=1)
    model = skipless_models.build_model(cfg, key=jax.random.PRNGKey(0), verbose=False)
    step, params, opt_state = make_jax_step(model)
    tokens = jnp.zeros((batch, cfg.seq_len + 1), jnp.int32)
    start, cpu = time.perf_counter(), _cpu_seconds()
    step.lower(params, opt_state, tokens).compile()
    return dict(depth=depth, dtype=dtype, compile_s=time.perf_counter() - start, compile_cpu_s=_cpu_seconds() - cpu)


# ----- CLI --------------------------------------------------------------------------------------------
def _import_torch(path: str | None) -> tuple[bool, str]:
    if path:
        sys.path.insert(0, path)
    try:
        import torch
    except ImportError:
        return False, "torch not importable: PyTorch columns left empty (install a CPU torch and pass --torch-path)"
    return True, f"torch {torch.__version__} ({torch.get_num_threads()} threads)"


def _fmt(x, spec):
    return "—" if x is None else format(x, spec)


def print_table(rows: list[dict]) -> None:
    header = (f"{'case':<12} {'dtype':<8} {'L':>3} {'D':>4} {'T':>4} {'B':>3} {'compile s':>9} {'step ms':>8} "
              f"{'cpu ms':>7} {'tok/s':>7} {'GFLOP/s':>7} {'%mm':>4} {'torch tok/s':>11} {'torch cpu':>9} {'×torch':>6} "
              f"{'×t cpu':>6} {'Δloss':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['case']:<12} {r['dtype']:<8} {r['depth']:>3} {r['width']:>4} {r['seq_len']:>4} {r['batch']:>3} "
            f"{r['compile_s']:>9.2f} {r['step_ms']:>8.1f} {r['cpu_ms']:>7.0f} {r['tokens_per_s']:>7.0f} "
            f"{r['model_gflops']:>7.1f} {100 * r['mfu_vs_matmul']:>4.0f} "
            f"{_fmt(r.get('torch_tokens_per_s'), '11.0f'):>11} {_fmt(r.get('torch_cpu_ms'), '9.0f'):>9} "
            f"{_fmt(r.get('ratio_vs_torch'), '6.2f'):>6} {_fmt(r.get('ratio_vs_torch_cpu'), '6.2f'):>6} "
            f"{_fmt(r.get('loss_diff'), '7.1e'):>7}"
        )


def summarise(rows: list[dict]) -> dict:
    """The targets, checked on `rows`: worst ratio to PyTorch, worst share of the dense-matmul rate, and SPA
    attention's tokens/s over standard attention's at the same shape (E-SPA, U-SPA vs the `*-vanilla` case).

    **Returns:** dict with `min_ratio_vs_torch` (None without torch), `min_mfu_vs_matmul`, `spa_vs_standard`
    (`{"tiny-espa": 0.98, ...}`) and `targets_met` (`{name: bool}` for those measured).
    """
    f32 = [r for r in rows if r["dtype"] == "float32"]
    ratios = [r["ratio_vs_torch"] for r in f32 if "ratio_vs_torch" in r]
    by_case = {r["case"]: r for r in f32}
    spa = {}
    for name, row in by_case.items():
        shape, _, variant = name.partition("-")
        standard = by_case.get(f"{shape}-vanilla")
        if variant in ("espa", "uspa") and standard is not None:
            spa[name] = row["tokens_per_s"] / standard["tokens_per_s"]
    summary = dict(
        min_ratio_vs_torch=min(ratios) if ratios else None,
        min_mfu_vs_matmul=min((r["mfu_vs_matmul"] for r in f32), default=None),
        spa_vs_standard=spa,
    )
    met = {}
    if ratios:
        met[f"tokens/s >= {TARGET_RATIO_VS_TORCH:g}x PyTorch eager"] = min(ratios) >= TARGET_RATIO_VS_TORCH
    if summary["min_mfu_vs_matmul"] is not None:
        met[f"model FLOP/s >= {TARGET_MFU_VS_MATMUL:.0%} of dense matmul"] = summary["min_mfu_vs_matmul"] >= TARGET_MFU_VS_MATMUL
    if spa:
        met[f"SPA within {1 - TARGET_SPA_VS_STANDARD:.0%} of standard attention"] = min(spa.values()) >= TARGET_SPA_VS_STANDARD
    summary["targets_met"] = met
    return summary


def print_summary(summary: dict) -> None:
    print("\ntargets (float32 rows):")
    if summary["min_ratio_vs_torch"] is not None:
        print(f"  worst ratio vs PyTorch eager:       {summary['min_ratio_vs_torch']:.2f}x")
    if summary["min_mfu_vs_matmul"] is not None:
        print(f"  worst share of dense-matmul FLOP/s: {summary['min_mfu_vs_matmul']:.0%}")
    for name, ratio in summary["spa_vs_standard"].items():
        print(f"  {name} vs standard attention:   {ratio:.2f}x tokens/s")
    for name, ok in summary["targets_met"].items():
        print(f"  [{'met' if ok else 'NOT met'}] {name}")


@dataclass(frozen=True)
class BenchStepOptions:
    """Options of `python -m evals.bench_step` (each field is a flag)."""

    cases: str = ",".join(DEFAULT_CASES)
    """comma list of cases (evals.bench_step.CASES; an unknown name lists them)"""
    dtypes: str = "float32"
    """comma list of float32, bfloat16"""
    steps: int = 12
    """timed steps per implementation (>= 10 advised)"""
    rounds: int = 4
    """alternations between JAX and PyTorch"""
    compile_depths: str = "12,36,72"
    """depths for compile-time rows ('' skips)"""
    scan_unroll: int | None = None
    """layers per scan iteration (ModelConfig.scan_unroll; none: the preset's, auto); 0 = auto"""
    torch_path: str | None = None
    """folder holding a torch install (prepended to sys.path)"""
    no_torch: bool = False
    """skip the PyTorch comparison"""
    malloc: Literal["hugepage", "default"] = "hugepage"
    """hugepage: restart under GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (Linux); default: leave malloc alone"""
    out: str = "bench_step.json"
    """JSON output file"""


def parse_options(argv: list[str]) -> BenchStepOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one."""
    from train.cli_parse import UsageError, parse  # here: the A/B bench's baseline worker imports this module

    args = parse(BenchStepOptions, argv, prog="python -m evals.bench_step", description=__doc__.split("\n")[0])
    unknown = sorted(set(comma_list(args.cases)) - set(CASES))
    if unknown:
        raise UsageError(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    bad = sorted(set(comma_list(args.dtypes)) - {"float32", "bfloat16"})
    if bad:
        raise UsageError(f"unknown dtype(s) {bad}; choose float32 and/or bfloat16")
    if args.steps < 1 or args.rounds < 1:
        raise UsageError("--steps and --rounds must be >= 1")
    if args.scan_unroll is not None and args.scan_unroll < 0:
        raise UsageError("--scan-unroll must be >= 0 (0 = auto: every layer up to depth 16, rolled above)")
    if not all(d.isdigit() and int(d) >= 1 for d in comma_list(args.compile_depths)):
        raise UsageError(f"--compile-depths {args.compile_depths!r}: give a comma list of depths >= 1 ('' skips)")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = options_or_exit(parse_options, argv)
    if args.malloc == "hugepage" and __name__ == "__main__":
        reexec_with_hugepage_malloc("evals.bench_step", sys.argv[1:] if argv is None else argv)
    avoid_cpu_eigen_pool_hang()  # time the step as train.main runs it (before JAX starts; see train.xla_env)

    names = comma_list(args.cases)
    dtypes = comma_list(args.dtypes)
    torch_ok, torch_note = (False, "PyTorch comparison skipped (--no-torch)") if args.no_torch else _import_torch(args.torch_path)
    print(f"jax {jax.__version__} on {jax.default_backend()} ({platform.processor() or platform.machine()}); "
          f"{torch_note}; {malloc_note()}")
    matmul = matmul_gflops()
    print(f"dense f32 matmul [1024x1024]·[1024x1024]: {matmul:.0f} GFLOP/s (re-measured in every round: %mm)", flush=True)

    rows = []
    for dtype in dtypes:
        rows += run_cases([(name, CASES[name]) for name in names], dtype=dtype, steps=args.steps, rounds=args.rounds,
                          torch_ok=torch_ok, scan_unroll=args.scan_unroll, log=lambda text: print(text, flush=True))
    print()
    print_table(rows)
    summary = summarise(rows)
    print_summary(summary)

    compiles = []
    for depth in (int(d) for d in comma_list(args.compile_depths)):
        for dtype in dtypes:
            compiles.append(compile_time(depth, dtype))
    if compiles:
        print("\ncompile time of the train step (cpu-tiny E-SPA, lower + compile):")
        for c in compiles:
            print(f"  depth {c['depth']:>3} {c['dtype']:<8} {c['compile_s']:6.2f} s wall, {c['compile_cpu_s']:6.2f} s CPU")

    result = dict(
        jax_version=jax.__version__, backend=jax.default_backend(), torch=torch_note, malloc=malloc_note(),
        xla_flags=os.environ.get("XLA_FLAGS", ""), matmul_gflops=matmul,
        steps=args.steps, rounds=args.rounds, rows=rows, compile=compiles, summary=summary,
    )
    print()
    write_report(args.out, result)
    return result


if __name__ == "__main__":
    main()
