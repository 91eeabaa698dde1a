"""Decoding speed and exactness: cached (`skipless_models.decode`) against the uncached full forward pass.

    python -m evals.generate_bench [--preset cpu-tiny] [--batch 1] [--prompt 16] [--rounds 3] [--out FILE]

At the preset's shape (initialised weights plus N(0, 0.01²) noise, so that W_Q ≠ 0 and Value-SkipInit β ≠ 0; speed does not
depend on the values): for each attention kind, the largest |logit difference| between decoding the whole context
one position at a time with the cache and one full forward pass; then, for the preset's own attention, greedy
generation of `T − prompt` tokens after a `--prompt`-token prompt, timed (best of `--rounds`, after a warm-up that
compiles) with the cache (`evals.generate.generate_tokens`) and without (each step a full forward pass over the
context padded to T, one compiled shape; causal, so the padding is unseen). Prints a table, writes JSON.
"""

from __future__ import annotations

import dataclasses
import sys
import time

from skipless_models.presets import PresetName
from train.cli_parse import UsageError, parse
from evals.one_line import parse_command_line


def _perturbed(config, seed=0):
    import jax

    import skipless_models

    model = skipless_models.build_model(config, key=jax.random.key(seed), verbose=False)
    leaves, tree = jax.tree.flatten(model)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    return jax.tree.unflatten(tree, [x + 0.01 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def max_logit_gap(model, tokens) -> tuple[float, float]:
    """**Returns:** (max |cached − full| logit over every position of `tokens` `[B, T]`, max |full logit|)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from skipless_models.decode import decode_step, init_cache

    @eqx.filter_jit
    def both(model, tokens):
        b, t = tokens.shape

        def step(cache, s):
            logits, cache = decode_step(model, cache, jax.lax.dynamic_slice_in_dim(tokens, s, 1, 1),
                                        jnp.full((b, 1), s))
            return cache, logits[:, 0]

        _, cached = jax.lax.scan(step, init_cache(model, b, t), jnp.arange(t))
        return model(tokens), jnp.swapaxes(cached, 0, 1)

    full, cached = both(model, tokens)
    return float(jnp.max(jnp.abs(full - cached))), float(jnp.max(jnp.abs(full)))


def uncached_tokens(model, prompts, length: int, context: int):
    """Greedy decoding where every step runs the full forward pass over the context (padded to `context`)."""
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np

    @eqx.filter_jit
    def next_tokens(model, window, last):
        logits = model(window)
        return jnp.argmax(jnp.take_along_axis(logits, last[:, None, None], axis=1)[:, 0], axis=-1).astype(jnp.int32)

    window = np.zeros((len(prompts), context), np.int32)
    ends = np.asarray([len(p) for p in prompts])
    for row, p in enumerate(prompts):
        window[row, :len(p)] = p
    out = []
    for s in range(length):
        token = np.asarray(next_tokens(model, jnp.asarray(window), jnp.asarray(ends + s - 1)))
        out.append(token)
        if s + 1 < length:
            window[np.arange(len(prompts)), ends + s] = token
    return np.stack(out, axis=1)


@dataclasses.dataclass(frozen=True)
class GenerateBenchOptions:
    """Options of `python -m evals.generate_bench` (each field is a flag)."""

    preset: PresetName = "cpu-tiny"
    """the model shape (a skipless_models preset)"""
    batch: int = 1
    """prompts decoded together"""
    prompt: int = 16
    """prompt tokens (the rest of the preset's context is generated)"""
    rounds: int = 3
    """timed rounds after the warm-up (the best is reported)"""
    out: str = "generate_bench.json"
    """the JSON report to write"""


def parse_options(argv: list[str]) -> GenerateBenchOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one."""
    options = parse(GenerateBenchOptions, argv, prog="python -m evals.generate_bench",
                    description=__doc__.split("\n")[0])
    for name in ("batch", "prompt", "rounds"):
        if getattr(options, name) < 1:
            raise UsageError(f"--{name}={getattr(options, name)} must be a positive integer")
    return options


def main(argv: list[str] | None = None) -> int:
    from train.xla_env import avoid_cpu_eigen_pool_hang

    avoid_cpu_eigen_pool_hang()
    args = parse_command_line(parse_options, argv)
    if args is None:
        return 2
    import jax
    import numpy as np

    import skipless_models
    from skipless_models.config import ATTENTIONS

    from evals.bench_report import write_report
    from evals.generate import generate_tokens
    from evals.generate_sampling import Sampling

    base = skipless_models.preset(args.preset).replace(attention_impl="xla")
    if args.prompt >= base.seq_len:
        print(f"error: --prompt={args.prompt} leaves nothing to generate in {args.preset}'s context of "
              f"{base.seq_len} tokens; pass --prompt {base.seq_len - 1} or less", file=sys.stderr)
        return 2
    t, length = base.seq_len, base.seq_len - args.prompt
    tokens = jax.random.randint(jax.random.key(5), (args.batch, t), 0, base.vocab_size)
    gaps = {}
    for kind in ATTENTIONS:
        gap, scale = max_logit_gap(_perturbed(base.replace(attention=kind)), tokens)
        gaps[kind] = dict(max_abs_logit_diff=gap, max_abs_logit=scale)
    model = _perturbed(base)
    prompts = [np.asarray(row[:args.prompt]) for row in np.asarray(tokens)]
    timings = {}
    for name, run in (("cached", lambda: generate_tokens(model, prompts, length, Sampling(0.0), 0)),
                      ("uncached", lambda: uncached_tokens(model, prompts, length, t))):
        produced = run()  # compiles
        best = min(_timed(run) for _ in range(args.rounds))
        timings[name] = dict(seconds=best, tokens_per_s=args.batch * length / best, tokens=produced.tolist())
    same = timings["cached"].pop("tokens") == timings["uncached"].pop("tokens")
    report = dict(preset=args.preset, attention=base.attention, depth=base.depth, width=base.width, context=t,
                  batch=args.batch, prompt=args.prompt, new_tokens=length, jax=jax.__version__,
                  logit_gap=gaps, timings=timings, same_greedy_tokens=same,
                  speedup=timings["cached"]["tokens_per_s"] / timings["uncached"]["tokens_per_s"])
    print(f"{'attention':16s} {'max |Δlogit|':>13s} {'max |logit|':>12s} {'relative':>9s}")
    for kind, row in gaps.items():
        relative = row['max_abs_logit_diff'] / row['max_abs_logit']
        print(f"{kind:16s} {row['max_abs_logit_diff']:13.2e} {row['max_abs_logit']:12.2f} {relative:9.1e}")
    print(f"{args.preset} {base.attention}, batch {args.batch}, {args.prompt} prompt + {length} new tokens: cached "
          f"{timings['cached']['tokens_per_s']:,.0f} tokens/s, uncached {timings['uncached']['tokens_per_s']:,.0f} "
          f"tokens/s ({report['speedup']:.1f}x); same greedy tokens: {same}")
    write_report(args.out, report)
    return 0


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
