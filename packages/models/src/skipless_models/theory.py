"""What signal-propagation theory (`sigprop`, float64) says about a configured model at initialisation.

The model never re-derives theory: SPA buffers, the TAT slope and predicted kernels all come from here,
and everything here comes from `sigprop`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import sigprop

from skipless_models.config import ModelConfig


def tat_alpha(config: ModelConfig) -> float | None:
    """TAT leaky-ReLU slope for `depth` nonlinearities and η = `tat_eta` (None for other activations)."""
    if config.mlp_activation != "tat_leaky_relu":
        return None
    return float(sigprop.tat_slope(config.depth, config.resolved_knobs()["tat_eta"]))


@functools.lru_cache(maxsize=16)
def _spa_layers(kind, depth, seq_len, gamma_final, rho_final, causal, budget, alpha):
    return sigprop.spa_layers(
        kind, depth, seq_len, gamma_final=gamma_final, rho_final=rho_final, causal=causal, budget=budget,
        mlp_activation="tat_leaky_relu", mlp_alpha=alpha,
    )


def spa_layers(config: ModelConfig) -> list:
    """`sigprop.SPALayer` records (attention A_l, bias, scale, target kernels) for an SPA config."""
    if not config.is_spa:
        raise ValueError(f"attention={config.attention!r} has no SPA layers; use 'espa' or 'uspa'")
    knobs = config.resolved_knobs()
    return _spa_layers(
        config.attention, config.depth, config.seq_len, knobs["gamma_final"], knobs["rho_final"],
        config.causal, config.kernel_budget, tat_alpha(config) if config.kernel_budget == "joint" else None,
    )


def spa_buffers(config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Stacked SPA buffers: bias `[L, T, T]` (log A_l; masked entries set to −1e30) and scale `[L, T]`."""
    layers = spa_layers(config)
    bias = np.stack([x.bias for x in layers])
    bias = np.where(np.isfinite(bias), bias, -1e30).astype(np.float32)
    scale = np.stack([x.scale for x in layers]).astype(np.float32)
    return bias, scale


def attention_at_init(config: ModelConfig) -> list[np.ndarray] | None:
    """Per-layer input-independent attention matrices `[T, T]` at init, or None when theory has none
    (standard attention with W_Q ≠ 0)."""
    if config.is_spa:
        return [x.attention for x in spa_layers(config)]
    if config.attention == "value_skipinit":
        return [np.eye(config.seq_len)] * config.depth
    if config.resolved_init != "sigprop":
        return None
    return [sigprop.uniform_causal_attention(config.seq_len)] * config.depth


def theory_applies(config: ModelConfig) -> bool:
    """Theory predicts the kernel of skipless networks with scale-preserving init and value-independent
    attention at init."""
    return (
        config.block in ("vanilla", "skipless_ln")
        and config.resolved_init in ("sigprop", "fan_in")
        and attention_at_init(config) is not None
        and config.causal
    )


def predicted_kernels(config: ModelConfig, kernel_in: np.ndarray | None = None) -> list[dict[str, np.ndarray]] | None:
    """The theory's kernel after each attention and MLP sub-block (`[T, T]` float64 per entry).

    For "skipless_ln" the kernel is normalised to unit diagonal before each sub-block (the LayerNorm).

    **Arguments:** `config`; `kernel_in` `[T, T]` input kernel (default the identity).
    **Returns:** per layer `{"after_attention", "after_mlp"}`, or None where theory does not apply
    (blocks with skips, GPT-2 init, standard attention with W_Q ≠ 0, non-causal attention).
    """
    if not theory_applies(config):
        return None
    mats = attention_at_init(config)
    kernel_map = (
        sigprop.mlp_kernel_map(config.mlp_activation, alpha=tat_alpha(config)) if config.use_mlp else None
    )
    if config.block == "vanilla":
        return sigprop.predict_kernels(mats, kernel_map, kernel_in)
    kernel = np.eye(config.seq_len) if kernel_in is None else np.asarray(kernel_in, np.float64)
    out = []
    for a in mats:
        after_attention = sigprop.predict_kernels([a], None, sigprop.cosine_from_kernel(kernel))[0]["after_attention"]
        kernel = after_attention
        if kernel_map is not None:
            kernel = kernel_map(sigprop.cosine_from_kernel(after_attention))
        out.append({"after_attention": after_attention, "after_mlp": kernel})
    return out


def predicted_final_cosine(config: ModelConfig) -> float:
    """The theory's mean off-diagonal cosine after the last layer on Σ_0 = I (NaN where theory does not
    apply, see `predicted_kernels`)."""
    predicted = predicted_kernels(config)
    if predicted is None:
        return math.nan
    return sigprop.mean_offdiag(sigprop.cosine_from_kernel(predicted[-1]["after_mlp"]))
