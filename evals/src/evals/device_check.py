"""One prepared check of the GPU path: compiled-kernel tests, an attention benchmark and a short bf16 training A/B.

    python -m evals.device_check --out DIR           # on a CUDA machine: under 8 minutes on one H100 / H200
    python -m evals.device_check --out DIR --smoke   # the same code paths on CPU at tiny sizes (interpret mode)

Run it from the repository root. On a machine where the workspace is not installed but jax (with CUDA), equinox,
optax, jaxtyping, numpy, pytest and tyro are, put the members' source folders on the path:

    PYTHONPATH=packages/sigprop/src:packages/models/src:pallas_kernels/src:train/src:evals/src \\
        python3 -m evals.device_check --out DIR

1. **Compiled-kernel tests**: `pytest pallas_kernels/tests/test_compiled_gpu.py` in a subprocess (JUnit XML and
   log kept). `gpu_verified` is true only when every test ran and passed: the condition for adding "gpu" to
   `pallas_kernels.VERIFIED_COMPILED_BACKENDS` (done by hand, never by this script).
2. **Attention, forward + backward, bf16**, T ∈ {1024, 2048, 4096, 8192}, head dim 64 and 128, B·T = 16384 tokens,
   8 heads: the kernel generating the E-SPA bias in-kernel (`pallas_generated_espa`), the XLA path with the bias
   materialised (`xla_custom_vjp_bias`) and bias-free cuDNN attention (`jax_dpa_cudnn`, the speed ceiling).
   Targets at T = 2048: generated kernel ≥ 2× the XLA path and ≥ 0.7× cuDNN.
3. **Training**: a wt103-36l-shaped vanilla E-SPA model (36 layers, D 512, T 512, V 32768), bf16 compute, about 100
   AdamW steps on a fixed synthetic token stream, once through the kernel and once through the XLA path from the
   same initialisation and batches: the losses must agree; tokens/s and model FLOP/s utilisation against the
   chip's dense bf16 peak.

Writes `DIR/device_check.json` (everything, rewritten after each step so a run cut short keeps what it measured)
and `DIR/summary.txt`. Exit 0 when every step ran (whatever the results), 1 when a step crashed, 2 on bad input.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ElementTree

from train.cli_parse import parse
from evals.one_line import parse_command_line

REPO = pathlib.Path(__file__).resolve().parents[3]
COMPILED_TESTS = "pallas_kernels/tests/test_compiled_gpu.py"
BENCH_METHODS = ("pallas_generated_espa", "xla_custom_vjp_bias", "jax_dpa_cudnn")
TARGET_T = 2048
TARGET_VS_XLA, TARGET_VS_CUDNN = 2.0, 0.7
RESULT_FILE, SUMMARY_FILE = "device_check.json", "summary.txt"


# ----- sizes --------------------------------------------------------------------------------------------------
def plan(smoke: bool) -> dict:
    """The sizes of every step: the real check, or tiny ones that run the same code on CPU."""
    if smoke:
        return dict(seq_lens=[64], head_dims=[16], tokens=128, heads=2, repeats=2, train_steps=3, train_batch=2,
                    tests_timeout_s=300)
    return dict(seq_lens=[1024, 2048, 4096, 8192], head_dims=[64, 128], tokens=16384, heads=8, repeats=10,
                train_steps=100, train_batch=32, tests_timeout_s=240)


def train_config(smoke: bool):
    import skipless_models

    if smoke:
        return skipless_models.ModelConfig(vocab_size=64, width=32, depth=2, heads=2, seq_len=32,
                                           compute_dtype="bfloat16")
    return skipless_models.preset("wt103-36l", compute_dtype="bfloat16")


# ----- 1. compiled tests ----------------------------------------------------------------------------------------
def run_compiled_tests(out: pathlib.Path, timeout_s: int, smoke: bool) -> dict:
    """pytest on the compiled-kernel tests in a subprocess. **Returns:** counts, failures, `gpu_verified`."""
    xml, log = out / "compiled_tests.xml", out / "compiled_tests.log"
    cmd = [sys.executable, "-m", "pytest", str(REPO / COMPILED_TESTS), "-q", "-p", "no:cacheprovider",
           f"--junitxml={xml}", "-o", "addopts=--import-mode=importlib -ra"]
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
        log.write_text(proc.stdout + proc.stderr)
        returncode = proc.returncode
    except subprocess.TimeoutExpired as err:
        log.write_text(f"timed out after {timeout_s} s\n{err.stdout or ''}{err.stderr or ''}")
        returncode = None
    result = dict(command=" ".join(cmd[1:]), returncode=returncode, seconds=time.perf_counter() - start,
                  **junit_counts(xml))
    result["gpu_verified"] = bool(
        not smoke and returncode == 0 and result["tests"] > 0
        and result["failures"] == result["errors"] == result["skipped"] == 0
    )
    return result


def junit_counts(xml: pathlib.Path) -> dict:
    """Counts and failing test names from pytest's JUnit XML (zeros when there is none)."""
    counts = dict(tests=0, failures=0, errors=0, skipped=0, failed=[])
    if not xml.is_file():
        return counts
    root = ElementTree.parse(xml).getroot()
    for suite in root.iter("testsuite"):
        for key in ("tests", "failures", "errors", "skipped"):
            counts[key] += int(suite.get(key, 0))
    for case in root.iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            message = (bad.get("message") or "").splitlines()[:1]
            counts["failed"].append(f"{case.get('name')}: {message[0][:200] if message else ''}")
    return counts


# ----- 2. attention benchmark -----------------------------------------------------------------------------------
def run_attention_bench(sizes: dict, deadline: float) -> dict:
    """Forward + backward of each method at each size (bf16), until `deadline` (time.perf_counter)."""
    import jax.numpy as jnp
    from pallas_kernels.dispatch import pallas_backend

    from evals import bench_attention

    backend, interpret = pallas_backend()
    rows = []
    for head_dim in sizes["head_dims"]:
        for seq_len in sizes["seq_lens"]:
            methods = bench_attention._methods(seq_len, backend, interpret)
            batch = max(1, sizes["tokens"] // seq_len)
            for name in BENCH_METHODS:
                if time.perf_counter() > deadline:
                    rows.append(dict(method=name, seq_len=seq_len, head_dim=head_dim, skipped="out of time"))
                    continue
                row = bench_attention.bench_one(name, methods[name], seq_len, head_dim, batch, sizes["heads"],
                                                jnp.bfloat16, sizes["repeats"], forward=False, memory=False)
                rows.append(row)
                print(f"  {name:24s} T={seq_len:5d} d={head_dim:3d} fwd+bwd "
                      f"{row.get('fwd_bwd_ms', float('nan')):9.3f} ms {row.get('error', '')}", flush=True)
    return dict(backend=backend, interpret=interpret, rows=rows, targets=bench_targets(rows))


def bench_targets(rows: list[dict]) -> dict:
    """At T = 2048 per head dim: generated kernel vs the XLA path (speed-up) and vs cuDNN (fraction of its speed)."""
    out = {}
    timed = {(r["method"], r["seq_len"], r["head_dim"]): r.get("fwd_bwd_ms") for r in rows}
    for head_dim in sorted({r["head_dim"] for r in rows}):
        ours = timed.get(("pallas_generated_espa", TARGET_T, head_dim))
        xla = timed.get(("xla_custom_vjp_bias", TARGET_T, head_dim))
        cudnn = timed.get(("jax_dpa_cudnn", TARGET_T, head_dim))
        if ours is None:
            continue
        entry = {}
        if xla is not None:
            entry["speedup_vs_xla"] = xla / ours
            entry["met_vs_xla"] = xla / ours >= TARGET_VS_XLA
        if cudnn is not None:
            entry["speed_vs_cudnn"] = cudnn / ours
            entry["met_vs_cudnn"] = cudnn / ours >= TARGET_VS_CUDNN
        out[f"d{head_dim}"] = entry
    return out


# ----- 3. training A/B ------------------------------------------------------------------------------------------
def synthetic_batches(vocab: int, seq_len: int, batch: int, steps: int, seed: int = 0):
    """Token batches `[batch, seq_len + 1]` of a fixed Markov source: the next token is a fixed permutation of the
    previous one with probability 3/4, else uniform; the same for every caller with the same arguments."""
    import numpy as np

    rng = np.random.default_rng(seed)
    successor = rng.permutation(vocab)
    for _ in range(steps):
        tokens = np.empty((batch, seq_len + 1), np.int32)
        tokens[:, 0] = rng.integers(0, vocab, batch)
        follow = rng.random((batch, seq_len)) < 0.75
        noise = rng.integers(0, vocab, (batch, seq_len))
        for t in range(seq_len):
            tokens[:, t + 1] = np.where(follow[:, t], successor[tokens[:, t]], noise[:, t])
        yield tokens


def train_run(config, impl: str, steps: int, batch: int) -> dict:
    """`steps` AdamW steps of `config` through attention `impl`. **Returns:** losses and timing."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import skipless_models

    cfg = config.replace(attention_impl=impl)
    model = skipless_models.build_model(cfg, key=jax.random.key(0), verbose=False)
    params, static = eqx.partition(model, eqx.is_array)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(3e-4, b2=0.95, weight_decay=0.1))
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, tokens):
        loss, grads = jax.value_and_grad(lambda p: skipless_models.loss_fn(eqx.combine(p, static), tokens)[0])(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    batches = [jnp.asarray(b) for b in synthetic_batches(cfg.vocab_size, cfg.seq_len, batch, steps)]
    start = time.perf_counter()
    params, opt_state, loss = step(params, opt_state, batches[0])
    losses = [loss]
    loss.block_until_ready()
    compile_s = time.perf_counter() - start
    warm = min(5, steps - 1)
    for index, tokens in enumerate(batches[1:], start=1):
        if index == warm:
            jax.block_until_ready(params)
            timed_from = time.perf_counter()
        params, opt_state, loss = step(params, opt_state, tokens)
        losses.append(loss)
    jax.block_until_ready(params)
    timed_steps = steps - warm
    seconds = (time.perf_counter() - timed_from) / timed_steps if timed_steps > 0 and steps > 1 else float("nan")
    tokens_per_s = batch * cfg.seq_len / seconds
    flops = skipless_models.model_flops_per_token(cfg) * tokens_per_s
    return dict(impl=skipless_models.resolve_impl(impl), losses=[float(x) for x in losses], compile_s=compile_s,
                step_ms=1e3 * seconds, tokens_per_s=tokens_per_s, model_tflops=flops / 1e12,
                finite=bool(np.all(np.isfinite([float(x) for x in losses]))))


def run_training(smoke: bool, steps: int, batch: int) -> dict:
    """The same model trained through the kernel and through the XLA path; agreement and utilisation."""
    config = train_config(smoke)
    runs = {impl: train_run(config, impl, steps, batch) for impl in ("pallas", "xla")}
    kernel, xla = runs["pallas"]["losses"], runs["xla"]["losses"]
    first = abs(kernel[0] - xla[0]) / abs(xla[0])
    tail = min(10, len(xla))
    last = abs(statistics.fmean(kernel[-tail:]) - statistics.fmean(xla[-tail:])) / abs(statistics.fmean(xla[-tail:]))
    peak = _peak_flops()
    for run in runs.values():
        run["mfu"] = None if peak is None else run["model_tflops"] * 1e12 / peak
    return dict(
        config=config.to_dict(), steps=steps, batch=batch, runs=runs, peak_tflops=None if peak is None else peak / 1e12,
        first_loss_rel_diff=first, last_losses_rel_diff=last,
        losses_agree=bool(first <= 1e-2 and last <= 2e-2 and runs["pallas"]["finite"] and runs["xla"]["finite"]),
    )


def _peak_flops() -> float | None:
    try:
        from train.diagnostics import peak_flops_per_second
    except ImportError:
        return None
    return peak_flops_per_second(None)


# ----- driver ---------------------------------------------------------------------------------------------------
def summary_text(result: dict) -> str:
    """A short human-readable account of `result`."""
    lines = [f"device check ({'CPU smoke run' if result['smoke'] else 'GPU'}): {result['environment']}"]
    tests = result.get("compiled_tests")
    if tests:
        lines.append(f"compiled tests: {tests['tests']} run, {tests['failures']} failed, {tests['errors']} errors, "
                     f"{tests['skipped']} skipped (exit {tests['returncode']}); gpu_verified={tests['gpu_verified']}")
        lines += [f"  FAILED {name}" for name in tests["failed"][:10]]
    bench = result.get("attention")
    if bench:
        lines.append("attention fwd+bwd ms (bf16): " + "; ".join(
            f"{r['method']} T={r['seq_len']} d={r['head_dim']}: "
            + (f"{r['fwd_bwd_ms']:.3f}" if "fwd_bwd_ms" in r else r.get("error", r.get("skipped", "?"))[:60])
            for r in bench["rows"]))
        for dim, t in bench["targets"].items():
            parts = []
            if "speedup_vs_xla" in t:
                parts.append(f"{t['speedup_vs_xla']:.2f}x the XLA path (target {TARGET_VS_XLA}x: "
                             f"{'met' if t['met_vs_xla'] else 'NOT met'})")
            if "speed_vs_cudnn" in t:
                parts.append(f"{t['speed_vs_cudnn']:.2f}x cuDNN's speed (target {TARGET_VS_CUDNN}x: "
                             f"{'met' if t['met_vs_cudnn'] else 'NOT met'})")
            lines.append(f"  T={TARGET_T} {dim}: generated kernel " + ", ".join(parts))
    train = result.get("training")
    if train:
        for impl, run in train["runs"].items():
            mfu = "n/a" if run["mfu"] is None else f"{100 * run['mfu']:.1f}%"
            lines.append(f"training via {impl} ({run['impl']}): loss {run['losses'][0]:.4f} -> {run['losses'][-1]:.4f}, "
                         f"{run['step_ms']:.1f} ms/step, {run['tokens_per_s']:.0f} tokens/s, "
                         f"{run['model_tflops']:.1f} model TFLOP/s, MFU {mfu}, compile {run['compile_s']:.1f} s")
        lines.append(f"  losses agree: {train['losses_agree']} (first step {train['first_loss_rel_diff']:.2e}, "
                     f"last 10 steps {train['last_losses_rel_diff']:.2e} relative)")
    for step, error in result.get("errors", {}).items():
        lines.append(f"{step} CRASHED: {error}")
    return "\n".join(lines) + "\n"


def _write(out: pathlib.Path, result: dict) -> None:
    (out / RESULT_FILE).write_text(json.dumps(result, indent=1) + "\n")
    (out / SUMMARY_FILE).write_text(summary_text(result))


@dataclasses.dataclass(frozen=True)
class DeviceCheckOptions:
    """Options of `python -m evals.device_check` (each field is a flag)."""

    out: str
    """folder for device_check.json, summary.txt and the test log"""
    smoke: bool = False
    """tiny sizes on CPU (kernels in interpret mode)"""
    budget_s: float = 420.0
    """seconds after which remaining benchmark sizes are skipped (the whole check must fit 8 min)"""
    skip: str = ""
    """comma list of steps to leave out: tests, attention, training"""


def parse_options(argv: list[str]) -> DeviceCheckOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one."""
    return parse(DeviceCheckOptions, argv, prog="python -m evals.device_check", description=__doc__.split("\n")[0])


def main(argv: list[str] | None = None) -> int:
    args = parse_command_line(parse_options, argv)
    if args is None:
        return 2
    out = pathlib.Path(args.out)
    skip = set(filter(None, args.skip.split(",")))
    unknown = sorted(skip - {"tests", "attention", "training"})
    if unknown:
        print(f"error: --skip {unknown} unknown; choose from tests, attention, training", file=sys.stderr)
        return 2
    if (out / RESULT_FILE).exists():
        print(f"error: {out / RESULT_FILE} exists; pass a new --out folder (nothing was overwritten)", file=sys.stderr)
        return 2
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the test subprocess shares the GPU
    import jax

    backend = jax.default_backend()
    if backend != "gpu" and not args.smoke:
        print(f"error: no CUDA device (jax backend {backend!r}); run on a GPU machine, or pass --smoke for the CPU "
              "dry run", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    sizes = plan(args.smoke)
    device = jax.devices()[0]
    result = dict(smoke=args.smoke, plan=sizes, errors={}, seconds=0.0, environment=(
        f"{device.device_kind} ({backend}), jax {jax.__version__}, Python {platform.python_version()}"))
    start = time.perf_counter()
    steps = [
        ("compiled_tests", "tests", lambda: run_compiled_tests(out, sizes["tests_timeout_s"], args.smoke)),
        ("attention", "attention", lambda: run_attention_bench(sizes, start + args.budget_s)),
        ("training", "training", lambda: run_training(args.smoke, sizes["train_steps"], sizes["train_batch"])),
    ]
    for key, name, fn in steps:
        if name in skip:
            continue
        print(f"[{time.perf_counter() - start:6.1f} s] {name}", flush=True)
        try:
            result[key] = fn()
        except Exception as err:  # keep the other steps' results; the traceback goes to the log
            traceback.print_exc()
            result["errors"][key] = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        result["seconds"] = time.perf_counter() - start
        _write(out, result)
    print(summary_text(result), end="")
    print(f"wrote {out / RESULT_FILE} and {out / SUMMARY_FILE} in {result['seconds']:.0f} s")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
