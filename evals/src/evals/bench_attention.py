"""Benchmark biased causal attention: XLA reference vs the fused Pallas kernels vs plain attention.

    python -m evals.bench_attention [--seq-lens 512,1024,...] [--head-dims 64,128] [--out FILE]

Rows: the XLA reference with a materialised E-SPA bias and row scale (autodiff backward), the same
through `attention_xla` (hand-written backward) with the bias passed in, and generating it per call from the
layer's numbers (`xla_generated_espa`: the `impl="xla"` path models use); the Pallas kernel with that bias
passed as an explicit `[T, T]` array; the Pallas kernel generating the E-SPA (or U-SPA) bias itself; the Pallas
kernel without bias; `jax.nn.dot_product_attention` (causal, no bias; XLA and, where available, cuDNN). For each: forward and
forward+backward time (median over repeats) and the compiled program's memory (arguments + outputs +
temporaries, from XLA's memory analysis). Prints a table and writes JSON.

On a machine without GPU/TPU the Pallas rows run in interpret mode at one tiny size only (so the script
keeps working everywhere); the timings then say nothing about kernels. Selecting only XLA rows keeps
the requested sizes, e.g. on CPU at the cpu-tiny attention shape:

    python -m evals.bench_attention --methods xla_reference_bias,xla_custom_vjp_bias --seq-lens 128 \
        --head-dims 32 --heads 4 --tokens 2048 --dtype float32 --repeats 50
"""

from __future__ import annotations

import dataclasses
import json
import platform
import statistics
import time
from typing import Literal

import jax
import jax.numpy as jnp

from pallas_kernels import SpaSpec, attention_reference, attention_xla, fused_attention, spa_log_bias, spa_row_scale
from pallas_kernels.dispatch import pallas_backend
from train.cli_parse import UsageError, parse

from evals.bench_cli import comma_list, options_or_exit

GAMMAS = (0.02, 0.01)  # (γ_{l−1}, γ_l): a deep layer of the default schedule's order of magnitude
RHOS = (0.28, 0.3)  # (ρ_{l−1}, ρ_l): likewise for U-SPA


def _methods(seq_len: int, backend: str, interpret: bool):
    """name -> attention function of (q, k, v)."""
    espa, uspa = SpaSpec.from_levels("espa", *GAMMAS), SpaSpec.from_levels("uspa", *RHOS)
    bias = spa_log_bias(espa, seq_len)
    scale = spa_row_scale(espa, seq_len)
    kernel = dict(backend=backend, interpret=interpret)
    return {
        "xla_reference_bias": lambda q, k, v: attention_reference(q, k, v, bias=bias, row_scale=scale),
        "xla_custom_vjp_bias": lambda q, k, v: attention_xla(q, k, v, bias=bias, row_scale=scale),
        "xla_generated_espa": lambda q, k, v: attention_xla(q, k, v, spa=espa),
        "pallas_explicit_bias": lambda q, k, v: fused_attention(q, k, v, bias=bias, row_scale=scale, **kernel),
        "pallas_generated_espa": lambda q, k, v: fused_attention(q, k, v, spa=espa, **kernel),
        "pallas_generated_uspa": lambda q, k, v: fused_attention(q, k, v, spa=uspa, **kernel),
        "pallas_no_bias": lambda q, k, v: fused_attention(q, k, v, **kernel),
        "jax_dot_product_attention": lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True),
        "jax_dpa_cudnn": lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="cudnn"),
    }


def _fwd_bwd(fn):
    def loss(q, k, v):
        return jnp.sum(fn(q, k, v).astype(jnp.float32))

    return jax.grad(loss, argnums=(0, 1, 2))


def _time(fn, args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile + warm up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _memory_bytes(fn, args) -> int | None:
    try:
        stats = fn.lower(*args).compile().memory_analysis()
    except Exception:  # some backends do not report it
        return None
    if stats is None:
        return None
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes)


def bench_one(name, fn, seq_len, head_dim, batch, heads, dtype, repeats, *, forward: bool = True,
              memory: bool = True) -> dict:
    """Time one method at one size (fwd+bwd; the forward alone and the programs' memory unless turned off: each
    costs compiles). **Returns:** a result row (times in ms, memory in MiB)."""
    keys = jax.random.split(jax.random.key(seq_len * 1000 + head_dim), 3)
    q, k, v = (jax.random.normal(key, (batch, seq_len, heads, head_dim), dtype) for key in keys)
    row = {"method": name, "seq_len": seq_len, "head_dim": head_dim, "batch": batch, "heads": heads, "dtype": str(jnp.dtype(dtype))}
    try:
        fwd = jax.jit(fn)
        both = jax.jit(_fwd_bwd(fn))
        if forward:
            row["fwd_ms"] = 1e3 * _time(fwd, (q, k, v), repeats)
        row["fwd_bwd_ms"] = 1e3 * _time(both, (q, k, v), repeats)
        for key, f in (("fwd_mib", fwd), ("fwd_bwd_mib", both)) if memory else ():
            if key == "fwd_mib" and not forward:
                continue
            mem = _memory_bytes(f, (q, k, v))
            row[key] = None if mem is None else mem / 2**20
    except Exception as err:  # e.g. out of memory for the materialised reference at long T
        row["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    return row


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


@dataclasses.dataclass(frozen=True)
class BenchAttentionOptions:
    """Options of `python -m evals.bench_attention` (each field is a flag)."""

    seq_lens: str = "512,1024,2048,4096,8192"
    """comma list of sequence lengths T"""
    head_dims: str = "64,128"
    """comma list of head dimensions"""
    tokens: int = 16384
    """batch = max(1, tokens // T)"""
    heads: int = 8
    """attention heads"""
    dtype: Literal["bfloat16", "float32"] = "bfloat16"
    """dtype of q, k and v"""
    repeats: int = 10
    """timed calls per row (the median is reported)"""
    methods: str = ""
    """comma-separated subset of method names (empty: all)"""
    out: str = "bench_attention.json"
    """JSON output file"""


def _positive_ints(flag: str, text: str) -> list[int]:
    items = comma_list(text)
    if not items or not all(item.isdigit() and int(item) >= 1 for item in items):
        raise UsageError(f"--{flag} {text!r}: give a comma list of positive integers")
    return [int(item) for item in items]


def parse_options(argv: list[str]) -> BenchAttentionOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one."""
    args = parse(BenchAttentionOptions, argv, prog="python -m evals.bench_attention",
                 description=__doc__.splitlines()[0])
    _positive_ints("seq-lens", args.seq_lens)
    _positive_ints("head-dims", args.head_dims)
    for name in ("tokens", "heads", "repeats"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name}={getattr(args, name)} must be a positive integer")
    known = sorted(_methods(8, *pallas_backend()))
    unknown = sorted(set(comma_list(args.methods)) - set(known))
    if unknown:
        raise UsageError(f"unknown method(s) {unknown}; choose from {known}")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = options_or_exit(parse_options, argv)
    backend, interpret = pallas_backend()
    seq_lens = _positive_ints("seq-lens", args.seq_lens)
    head_dims = _positive_ints("head-dims", args.head_dims)
    heads, tokens, repeats = args.heads, args.tokens, args.repeats
    wanted = set(comma_list(args.methods))
    xla_only = bool(wanted) and all(name.startswith("xla_") for name in wanted)
    if interpret and not xla_only:
        # No accelerator: one tiny size so every path still runs (interpret mode is for correctness only).
        seq_lens, head_dims, heads, tokens, repeats = [64], [16], 2, 128, 2
        print("no GPU/TPU: Pallas kernels run in interpret mode at a tiny size; timings are not kernel timings")
    dtype = jnp.dtype(args.dtype)

    rows = []
    for head_dim in head_dims:
        for seq_len in seq_lens:
            batch = max(1, tokens // seq_len)
            for name, fn in _methods(seq_len, backend, interpret).items():
                if wanted and name not in wanted:
                    continue
                row = bench_one(name, fn, seq_len, head_dim, batch, heads, dtype, repeats)
                rows.append(row)
                _write(args.out, rows)  # after every row, so a run cut short keeps what it measured
                print(
                    f"{name:26s} T={seq_len:5d} d={head_dim:3d} B={batch:3d} H={heads:2d} "
                    f"fwd {_fmt(row.get('fwd_ms'), '9.3f')} ms  fwd+bwd {_fmt(row.get('fwd_bwd_ms'), '9.3f')} ms  "
                    f"mem fwd {_fmt(row.get('fwd_mib'), '9.1f')} MiB  fwd+bwd {_fmt(row.get('fwd_bwd_mib'), '9.1f')} MiB"
                    + (f"  {row['error']}" if "error" in row else ""),
                    flush=True,
                )
    _write(args.out, rows)
    _print_table(rows)
    print(f"wrote {args.out}")
    return rows


def _write(path: str, rows: list[dict]) -> None:
    meta = {
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "interpret": pallas_backend()[1],
        "gammas": GAMMAS,
        "rhos": RHOS,
    }
    with open(path, "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=1)


def _print_table(rows: list[dict]) -> None:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    sizes = list(dict.fromkeys((r["head_dim"], r["seq_len"]) for r in rows))
    print("\nfwd+bwd ms (fwd ms) [fwd+bwd MiB]")
    print(f"{'d':>4s} {'T':>6s} " + " ".join(f"{m[:24]:>30s}" for m in methods))
    for d, t in sizes:
        cells = []
        for m in methods:
            r = next((r for r in rows if r["method"] == m and r["head_dim"] == d and r["seq_len"] == t), None)
            if r is None or "error" in r:
                cells.append(f"{'error' if r else '-':>30s}")
            else:
                cells.append(f"{_fmt(r['fwd_bwd_ms'], '.2f')} ({_fmt(r.get('fwd_ms'), '.2f')}) [{_fmt(r.get('fwd_bwd_mib'), '.0f')}]".rjust(30))
        print(f"{d:4d} {t:6d} " + " ".join(cells))


if __name__ == "__main__":
    main()
