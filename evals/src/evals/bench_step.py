"""Benchmark the training step (forward, backward, AdamW) against a PyTorch eager twin of the same model.

    python -m evals.bench_step [--cases tiny-preln,deep-espa,...] [--steps 12] [--dtypes float32,bfloat16]
                               [--compile-depths 12,36,72] [--torch-path DIR] [--out FILE]

For every case: the JAX step's first-call compile time, the median step time over `--steps` timed
steps after warm-up, tokens/s, model FLOP/s (`model_flops_per_token`, PaLM convention) and, when torch is
importable, the PyTorch eager step on the same parameters (`torch_tokens_per_s`, `ratio_vs_torch`).
JAX and PyTorch steps alternate in small rounds so that load from other processes hits both alike.
The dense-matmul FLOP/s of one XLA f32 matmul, timed in the same run, gives the attainable peak.
Before timing, the two implementations' losses on one batch are compared (`loss_diff`).

Compile-time rows (`--compile-depths`) lower and compile the step of the cpu-tiny E-SPA model at each
depth: layers run under `lax.scan`, so compile time should stay flat in depth.

torch is never a dependency: install a CPU build into a folder of its own and pass `--torch-path`
(or put it on PYTHONPATH); without it the table says so and the PyTorch columns stay empty.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import skipless_models
from skipless_models import ModelConfig
from train.xla_env import malloc_note, reexec_with_hugepage_malloc

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
DEFAULT_CASES = ("tiny-preln", "tiny-espa", "tiny-uspa", "tiny-vsi", "deep-preln", "deep-espa", "wide-preln")


# ----- JAX step ---------------------------------------------------------------------------------------
def make_jax_step(model):
    """A jitted AdamW train step on the trainable leaves (SPA buffers held fixed, not donated).

    **Returns:** `(step, trainable, buffers, opt_state)`; `step(trainable, opt_state, buffers, tokens)`
    returns `(trainable, opt_state, loss)` and donates the first two.
    """
    labels = skipless_models.param_groups(model)
    params, static = eqx.partition(model, eqx.is_array)
    is_buffer = jax.tree.map(lambda label: label == "buffer", labels)
    buffers = jax.tree.map(lambda p, b: p if b else None, params, is_buffer)
    trainable = jax.tree.map(lambda p, b: None if b else p, params, is_buffer)
    optimizer = optax.adamw(LR, weight_decay=WEIGHT_DECAY)

    def step(trainable, opt_state, buffers, tokens_BxTp1):
        def loss_of(tr):
            model = eqx.combine(tr, buffers, static)
            return skipless_models.loss_fn(model, tokens_BxTp1)[0]

        loss, grads = jax.value_and_grad(loss_of)(trainable)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1)), trainable, buffers, optimizer.init(trainable)


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


# ----- one case ---------------------------------------------------------------------------------------
def run_case(name: str, case: Case, *, dtype: str, steps: int, rounds: int, torch_ok: bool, scan_unroll: int | None = None) -> dict:
    """Time the JAX step (and the PyTorch twin when available), alternating in `rounds` rounds.

    **Returns:** a JSON-ready row.
    """
    unroll = case.config.scan_unroll if scan_unroll is None else scan_unroll
    cfg = case.config.replace(compute_dtype=dtype, attention_impl="xla", scan_unroll=unroll)
    model = skipless_models.build_model(cfg, key=jax.random.PRNGKey(0), verbose=False)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, cfg.vocab_size, (case.batch, cfg.seq_len + 1), dtype=np.int32)
    tokens_dev = jnp.asarray(tokens)
    row = dict(
        case=name, dtype=dtype, scan_unroll=cfg.resolved_scan_unroll, block=cfg.block, attention=cfg.attention,
        depth=cfg.depth, width=cfg.width,
        seq_len=cfg.seq_len, batch=case.batch, vocab=cfg.vocab_size,
    )

    torch_step = None
    if torch_ok and dtype == "float32":
        from evals.torch_reference import make_torch_step

        torch_step, torch_loss_of = make_torch_step(model, lr=LR, weight_decay=WEIGHT_DECAY)
        row["loss_diff"] = abs(_jax_loss(model, tokens_dev) - torch_loss_of(tokens))

    step, trainable, buffers, opt_state = make_jax_step(model)
    del model
    start = time.perf_counter()
    trainable, opt_state, loss = step(trainable, opt_state, buffers, tokens_dev)
    loss.block_until_ready()
    row["compile_s"] = time.perf_counter() - start
    if torch_step is not None:
        torch_step(tokens)  # warm-up

    per_round = max(1, steps // rounds)
    jax_times, torch_times = [], []
    for _ in range(rounds):
        for _ in range(per_round):
            with _Timer(jax_times):
                trainable, opt_state, loss = step(trainable, opt_state, buffers, tokens_dev)
                loss.block_until_ready()
        if torch_step is not None:
            for _ in range(per_round):
                with _Timer(torch_times):
                    torch_step(tokens)

    n_tokens = case.batch * cfg.seq_len
    flops = skipless_models.model_flops_per_token(cfg) * n_tokens
    step_s, cpu_s = (statistics.median(x) for x in zip(*jax_times))
    row.update(
        step_ms=1e3 * step_s, cpu_ms=1e3 * cpu_s, tokens_per_s=n_tokens / step_s, model_gflops=flops / step_s / 1e9
    )
    if torch_times:
        torch_s, torch_cpu_s = (statistics.median(x) for x in zip(*torch_times))
        row.update(
            torch_step_ms=1e3 * torch_s, torch_cpu_ms=1e3 * torch_cpu_s, torch_tokens_per_s=n_tokens / torch_s,
            torch_model_gflops=flops / torch_s / 1e9, ratio_vs_torch=torch_s / step_s,
            ratio_vs_torch_cpu=torch_cpu_s / cpu_s,
        )
    # the attainable peak right after this case: on a shared machine it moves with the load
    row["matmul_gflops"] = matmul_gflops()
    row["mfu_vs_matmul"] = row["model_gflops"] / row["matmul_gflops"]
    return row


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
    step, trainable, buffers, opt_state = make_jax_step(model)
    tokens = jnp.zeros((batch, cfg.seq_len + 1), jnp.int32)
    start, cpu = time.perf_counter(), _cpu_seconds()
    step.lower(trainable, opt_state, buffers, tokens).compile()
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES), help=f"comma list of {sorted(CASES)}")
    parser.add_argument("--dtypes", default="float32", help="comma list of float32, bfloat16")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per implementation (>= 10 advised)")
    parser.add_argument("--rounds", type=int, default=4, help="alternations between JAX and PyTorch")
    parser.add_argument("--compile-depths", default="12,36,72", help="depths for compile-time rows ('' skips)")
    parser.add_argument("--scan-unroll", type=int, default=None,
                        help="layers per scan iteration (ModelConfig.scan_unroll; default: the preset's, auto); 0 = auto")
    parser.add_argument("--torch-path", default=None, help="folder holding a torch install (prepended to sys.path)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument(
        "--malloc", choices=("hugepage", "default"), default="hugepage",
        help="hugepage: restart under GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (Linux); default: leave malloc alone",
    )
    parser.add_argument("--out", default="bench_step.json", help="JSON output file")
    args = parser.parse_args(argv)
    if args.malloc == "hugepage" and __name__ == "__main__":
        reexec_with_hugepage_malloc("evals.bench_step", sys.argv[1:] if argv is None else argv)

    names = [n for n in args.cases.split(",") if n]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    dtypes = [d for d in args.dtypes.split(",") if d]
    bad = sorted(set(dtypes) - {"float32", "bfloat16"})
    if bad:
        parser.error(f"unknown dtype(s) {bad}; choose float32 and/or bfloat16")
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be >= 1")
    if args.scan_unroll is not None and args.scan_unroll < 0:
        parser.error("--scan-unroll must be >= 0 (0 = auto: every layer up to depth 16, rolled above)")

    torch_ok, torch_note = (False, "PyTorch comparison skipped (--no-torch)") if args.no_torch else _import_torch(args.torch_path)
    print(f"jax {jax.__version__} on {jax.default_backend()} ({platform.processor() or platform.machine()}); "
          f"{torch_note}; {malloc_note()}")
    matmul = matmul_gflops()
    print(f"dense f32 matmul [1024x1024]·[1024x1024]: {matmul:.0f} GFLOP/s (re-measured after every case: %mm)", flush=True)

    rows = []
    for dtype in dtypes:
        for name in names:
            rows.append(run_case(name, CASES[name], dtype=dtype, steps=args.steps, rounds=args.rounds, torch_ok=torch_ok,
                                 scan_unroll=args.scan_unroll))
            print(f"  {name} {dtype}: {rows[-1]['tokens_per_s']:.0f} tokens/s", flush=True)
    print()
    print_table(rows)

    compiles = []
    for depth in (int(d) for d in args.compile_depths.split(",") if d):
        for dtype in dtypes:
            compiles.append(compile_time(depth, dtype))
    if compiles:
        print("\ncompile time of the train step (cpu-tiny E-SPA, lower + compile):")
        for c in compiles:
            print(f"  depth {c['depth']:>3} {c['dtype']:<8} {c['compile_s']:6.2f} s wall, {c['compile_cpu_s']:6.2f} s CPU")

    result = dict(
        jax_version=jax.__version__, backend=jax.default_backend(), torch=torch_note, malloc=malloc_note(),
        xla_flags=os.environ.get("XLA_FLAGS", ""), matmul_gflops=matmul,
        steps=args.steps, rounds=args.rounds, rows=rows, compile=compiles,
    )
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
