"""Peak host memory of building a model and running one train step, on CPU.

    python -m evals.bench_memory [--depth 72] [--width 128] [--seq-len 2048] [--attention espa] [--out FILE]

Builds the model, the trainer's optimiser (`train.optim.make_optimizer`, per-group rules) and one jitted, donated
step (gradient of the loss with respect to every array leaf, as `train.step` takes it), then reports: the process's peak resident memory (`ru_maxrss`) after the imports,
after the initialisation and after the step; the bytes of the model's array leaves and its largest leaf; and XLA's
own account of the compiled step (arguments, outputs, temporaries). Only APIs that every version of the model
package has are used, so the same script measures an older checkout (put its `src` folders first on PYTHONPATH; the
command line is parsed by `train.cli_parse`, so that checkout's `train` must have it).
"""

from __future__ import annotations

import dataclasses
import json
import resource
import time
from typing import Annotated, Literal

import tyro
from sigprop import ATTENTION_KINDS

from evals.bench_cli import options_or_exit

AttentionName = Literal[ATTENTION_KINDS]  # type: ignore[valid-type]


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def measure(depth: int, width: int, heads: int, seq_len: int, attention: str, batch: int, remat: bool) -> dict:
    """**Returns:** a JSON-ready dict of the measurements (MiB)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    import skipless_models
    from train.config import TrainConfig
    from train.optim import make_optimizer

    after_import = _peak_mib()
    config = skipless_models.ModelConfig(
        vocab_size=4096, width=width, depth=depth, heads=heads, mlp_width=4 * width, seq_len=seq_len,
        block="vanilla", attention=attention, mlp_activation="tat_leaky_relu", attention_impl="xla", remat=remat,
    )
    start = time.perf_counter()
    model = skipless_models.build_model(config, key=jax.random.key(0), verbose=False)
    params, static = eqx.partition(model, eqx.is_array)
    labels = skipless_models.param_groups(model)
    optimizer = make_optimizer(TrainConfig(model=config), labels)
    opt_state = optimizer.init(params)
    jax.block_until_ready((params, opt_state))
    init_s = time.perf_counter() - start
    after_init = _peak_mib()
    leaves = jax.tree.leaves(params)
    largest = max(leaves, key=lambda x: x.size)

    def step(params, opt_state, tokens):
        loss, grads = jax.value_and_grad(lambda p: skipless_models.loss_fn(eqx.combine(p, static), tokens)[0])(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    tokens = jnp.zeros((batch, seq_len + 1), jnp.int32)
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, opt_state, tokens).compile()
    analysis = compiled.memory_analysis()
    start = time.perf_counter()
    params, opt_state, loss = compiled(params, opt_state, tokens)
    loss.block_until_ready()
    step_s = time.perf_counter() - start
    mib = 1024.0**2
    return dict(
        depth=depth, width=width, heads=heads, seq_len=seq_len, attention=attention, batch=batch, remat=remat,
        jax_version=jax.__version__, loss=float(loss),
        peak_rss_after_import_mib=after_import, peak_rss_after_init_mib=after_init, peak_rss_after_step_mib=_peak_mib(),
        param_mib=sum(x.size * x.dtype.itemsize for x in leaves) / mib,
        largest_leaf_shape=list(largest.shape), largest_leaf_mib=largest.size * largest.dtype.itemsize / mib,
        step_argument_mib=analysis.argument_size_in_bytes / mib, step_output_mib=analysis.output_size_in_bytes / mib,
        step_temp_mib=analysis.temp_size_in_bytes / mib, init_s=init_s, step_s=step_s,
    )


@dataclasses.dataclass(frozen=True)
class BenchMemoryOptions:
    """Options of `python -m evals.bench_memory` (each field is a flag)."""

    depth: int = 72
    """layers"""
    width: int = 128
    """model width D (the MLP is 4 D wide)"""
    heads: int = 4
    """attention heads"""
    seq_len: int = 2048
    """sequence length T"""
    attention: AttentionName = "espa"  # type: ignore[valid-type]
    """attention kind"""
    batch: int = 1
    """sequences per step"""
    remat: Annotated[bool, tyro.conf.FlagConversionOff] = True
    """recompute each block in the backward pass (keeps activations out of the way)"""
    out: str | None = None
    """JSON output file (none: print only)"""


def parse_options(argv: list[str]) -> BenchMemoryOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one."""
    from train.cli_parse import UsageError, parse

    args = parse(BenchMemoryOptions, argv, prog="python -m evals.bench_memory", description=__doc__.split("\n")[0])
    if min(args.depth, args.width, args.heads, args.seq_len, args.batch) < 1:
        raise UsageError("--depth, --width, --heads, --seq-len and --batch must be positive")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = options_or_exit(parse_options, argv)
    result = measure(args.depth, args.width, args.heads, args.seq_len, args.attention, args.batch, args.remat)
    for name, value in result.items():
        print(f"{name:<28} {value:.1f}" if isinstance(value, float) else f"{name:<28} {value}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
