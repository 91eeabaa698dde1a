"""Signal-propagation report: does a model propagate signal at initialisation?

    uv run python -m evals.signal_prop --attention espa --block vanilla --depth 24 --width 256 \
        --seq-len 128 --out DIR

Builds the model at init (every `ModelConfig` field is a flag), runs one batch and writes
- `DIR/signal_prop.json`: per layer, after the attention and after the MLP sub-block: max / mean
  |Σ_emp − Σ_target|, mean off-diagonal cosine (empirical and target), min / max per-position norm,
  representation RMS, attention entropy; plus the config and the predicted final-layer cosine.
  The target is the theory's prediction (`skipless_models.predicted_kernels`: SPA targets, MLP C-maps
  applied entrywise) from the input's own kernel; it is null where theory does not apply (blocks
  with skips, GPT-2 init, standard attention with W_Q ≠ 0).
- `DIR/signal_prop.png`: mean cosine vs depth (with the target), and kernel heat-maps at layers 1, L/2, L.

`--inputs orthogonal` feeds inputs with Σ_0 = I exactly (needs seq_len ≤ width), `--inputs tokens`
real token embeddings (bytes of `--text`, default WikiText-2 valid when present, else uniform random
tokens). `--mlp none` builds attention-only stacks. `--compare` runs standard, Value-SkipInit, U-SPA
and E-SPA attention with otherwise equal flags and overlays them (the paper's figure).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import sys
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import sigprop
import tyro
from sigprop import ATTENTION_KINDS, MLP_ACTIVATIONS

from train.cli_parse import flag_names, parse

COMPARE_ATTENTIONS = ATTENTION_KINDS
_DEFAULT_TEXT = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "wikitext-2" / "valid.txt"
# The report's model when no flag changes it: 24 layers, width 256, T 128 (a byte vocabulary).
_DEFAULT_SHAPE = dict(vocab_size=256, width=256, depth=24, heads=4, seq_len=128)


# ----- command line -----------------------------------------------------------------------------------
MlpChoice = Literal[(*MLP_ACTIVATIONS, "none", "unchanged")]  # type: ignore[valid-type]
@dataclasses.dataclass(frozen=True)
class SignalPropOptions:
    """Options of the report (the model's are `ModelConfig`'s fields)."""

    out: Path
    """output folder"""
    mlp: MlpChoice = "unchanged"
    """MLP activation, or 'none' for attention-only blocks (overrides --mlp-activation/--use-mlp; unchanged: as
    those say)"""
    inputs: Literal["orthogonal", "tokens"] = "orthogonal"
    """orthogonal: Σ_0 = I exactly (needs seq_len <= width); tokens: real token embeddings"""
    text: Path | None = None
    """text file for --inputs tokens (bytes as token ids)"""
    batch: int = 4
    """sequences per batch"""
    seed: int = 0
    """seed of the initialisation and the inputs"""
    compare: bool = False
    """run every attention kind with otherwise equal flags and overlay them"""
    no_plot: bool = False
    """skip the PNG"""


def parse_args(argv: list[str]):
    """**Returns:** `(ModelConfig, SignalPropOptions)`; a model field takes the report's default shape unless given.
    Raises `UsageError` (one line) for a bad command line."""
    from skipless_models import ModelConfig

    base = ModelConfig(**_DEFAULT_SHAPE)
    model, options = parse(functools.partial(_typed_command(ModelConfig), model=base), argv, prog="python -m evals.signal_prop",
                           description=__doc__.split("\n\n")[0])
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    given = {name: getattr(model, name) for name in flag_names(argv) if name in names}
    return base.replace(**given) if given else base, options


def _typed_command(model_type):
    """`(model, options) -> (model, options)`, annotated for tyro (the model's booleans take a value)."""
    def command(model, options):
        return model, options

    command.__annotations__ = {"model": Annotated[model_type, tyro.conf.FlagConversionOff], "options": SignalPropOptions}
    return command


def config_from_args(model, options: SignalPropOptions):
    """The report's `ModelConfig`: `model` with `--mlp` applied."""
    if options.mlp == "none":
        return model.replace(use_mlp=False)
    if options.mlp != "unchanged":
        return model.replace(mlp_activation=options.mlp, use_mlp=True)
    return model


# ----- inputs -------------------------------------------------------------------------------------------
def token_inputs(batch: int, seq_len: int, vocab_size: int, text: Path | None, seed: int) -> tuple[np.ndarray, str]:
    """`[B, T]` int32 token ids: bytes of a text file (mod vocab_size), else uniform random tokens."""
    rng = np.random.default_rng(seed)
    path = text if text is not None else _DEFAULT_TEXT
    if text is not None and not path.is_file():
        raise ValueError(f"--text {path} does not exist; pass an existing text file or drop --text")
    if path.is_file():
        data = np.frombuffer(path.read_bytes(), np.uint8).astype(np.int32) % vocab_size
        if data.size >= seq_len:
            starts = rng.integers(0, data.size - seq_len + 1, size=batch)
            return np.stack([data[s : s + seq_len] for s in starts]), f"bytes of {path.name}"
    return rng.integers(0, vocab_size, size=(batch, seq_len)).astype(np.int32), "uniform random tokens"


# ----- statistics ---------------------------------------------------------------------------------------
def _mean_offdiag_cosine(kernel: np.ndarray) -> float:
    return sigprop.mean_offdiag(sigprop.cosine_from_kernel(kernel))


def _attention_entropy(a_BxHxTxT: np.ndarray) -> float:
    """Mean row entropy (nats) of |A| normalised per row (SPA rows carry a scale; Value-SkipInit αI + βA)."""
    p = np.abs(np.asarray(a_BxHxTxT, np.float64))
    p = p / np.clip(p.sum(-1, keepdims=True), 1e-300, None)
    return float(-(p * np.log(np.clip(p, 1e-300, None))).sum(-1).mean())


def layer_records(x_BxTxD, stats: sigprop.KernelStats, target, where: str, layer: int, attention=None) -> dict:
    """One layer's report line from its representations and their `sigprop.kernel_stats`."""
    kernel, norms = stats.kernel, stats.norms
    rec = {
        "layer": layer,
        "where": where,
        "mean_offdiag_cosine": stats.mean_offdiag_cosine,
        "target_mean_offdiag_cosine": None if target is None else _mean_offdiag_cosine(target),
        "max_abs_err": None if target is None else float(np.abs(kernel - target).max()),
        "mean_abs_err": None if target is None else float(np.abs(kernel - target).mean()),
        "norm_min": float(norms.min()),
        "norm_max": float(norms.max()),
        "rms": float(np.sqrt(np.mean(np.square(np.asarray(x_BxTxD, np.float64))))),
        "attention_entropy": None if attention is None else _attention_entropy(attention),
    }
    return rec


def run_one(config, inputs: str, batch: int, seed: int, text: Path | None) -> dict:
    """Build `config` at init, run one batch and collect the per-layer report (plus kernels for plots)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import skipless_models as sm

    model = sm.build_model(config, key=jax.random.key(seed), verbose=True)
    if inputs == "orthogonal":
        if config.seq_len > config.width:
            raise ValueError(f"--inputs orthogonal needs seq_len <= width (got {config.seq_len} > {config.width}); "
                             "raise --width or use --inputs tokens")
        x = jnp.asarray(sigprop.orthogonal_inputs(batch, config.seq_len, config.width, seed), jnp.float32)
        source = "orthogonal (Σ_0 = I)"
    else:
        tokens, source = token_inputs(batch, config.seq_len, config.vocab_size, text, seed)
        x = jnp.asarray(tokens)
    out = eqx.filter_jit(lambda m, x: m.intermediates(x))(model, x)
    out = jax.tree.map(lambda a: np.asarray(a, np.float32), out)
    kernel_in = sigprop.kernel_stats(out["input"]).kernel
    predicted = sm.predicted_kernels(config, kernel_in=kernel_in)
    layers, kernels = [], {"after_attention": [], "after_mlp": []}
    for l in range(config.depth):
        for where in ("after_attention", "after_mlp"):
            if where == "after_mlp" and not config.use_mlp:
                continue
            target = None if predicted is None else predicted[l][where]
            att = out["attention"][l] if where == "after_attention" else None
            stats = sigprop.kernel_stats(out[where][l])
            layers.append(layer_records(out[where][l], stats, target, where, l + 1, att))
            kernels[where].append(stats.kernel)
    final_key = "after_mlp" if config.use_mlp else "after_attention"
    return {
        "config": config.to_dict(),
        "inputs": source,
        "batch": batch,
        "predicted_final_cosine": _finite_or_none(sm.predicted_final_cosine(config)),
        "input_mean_offdiag_cosine": _mean_offdiag_cosine(kernel_in),
        "layers": layers,
        "_kernels": kernels[final_key],
        "_targets": None if predicted is None else [p[final_key] for p in predicted],
    }


def _finite_or_none(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


# ----- plot ---------------------------------------------------------------------------------------------
def _label(run: dict) -> str:
    c = run["config"]
    return f"{c['block']}/{c['attention']}"


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = runs[-1] if len(runs) == 1 else next((r for r in runs if r["config"]["attention"] == "espa"), runs[-1])
    depth = main["config"]["depth"]
    picks = sorted({1, max(1, depth // 2), depth})
    fig, axes = plt.subplots(1, 1 + len(picks), figsize=(4.2 * (1 + len(picks)), 3.8))
    ax = axes[0]
    for run in runs:
        xs = [r["layer"] - (0.5 if r["where"] == "after_attention" and run["config"]["use_mlp"] else 0.0) for r in run["layers"]]
        line, = ax.plot(xs, [r["mean_offdiag_cosine"] for r in run["layers"]], label=_label(run))
        if run["layers"][0]["target_mean_offdiag_cosine"] is not None:
            ax.plot(xs, [r["target_mean_offdiag_cosine"] for r in run["layers"]], "--", color=line.get_color(), alpha=0.6)
    ax.set_xlabel("layer (half-steps: after attention)")
    ax.set_ylabel("mean off-diagonal cosine")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("cosine vs depth (dashed: theory)")
    ax.legend(fontsize=8)
    for ax, l in zip(axes[1:], picks):
        im = ax.imshow(sigprop.cosine_from_kernel(main["_kernels"][l - 1]), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(f"{_label(main)}: cosine, layer {l}")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----- entry point --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        model, args = parse_args(argv)
        base = config_from_args(model, args)
        configs = [base.replace(attention=a) for a in COMPARE_ATTENTIONS] if args.compare else [base]
        runs = [run_one(c, args.inputs, args.batch, args.seed, args.text) for c in configs]
    except ValueError as err:  # UsageError included
        print(f"signal_prop: error: {' '.join(str(err).split())}", file=sys.stderr)
        raise SystemExit(2) from None
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs]}
    if len(runs) == 1:
        report.update(report["runs"][0])
    (args.out / "signal_prop.json").write_text(json.dumps(report, indent=1))
    if not args.no_plot:
        plot(runs, args.out / "signal_prop.png")
    for run in report["runs"]:
        last = run["layers"][-1]
        err = "n/a" if last["max_abs_err"] is None else f"{max(r['max_abs_err'] for r in run['layers']):.2e}"
        print(
            f"{_label(run):28s} final mean cosine {last['mean_offdiag_cosine']:.4f} "
            f"(theory {last['target_mean_offdiag_cosine'] if last['target_mean_offdiag_cosine'] is None else round(last['target_mean_offdiag_cosine'], 4)}), "
            f"max |Σ_emp − Σ_target| {err}, RMS {last['rms']:.3f}"
        )
    print(f"wrote {args.out / 'signal_prop.json'}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
