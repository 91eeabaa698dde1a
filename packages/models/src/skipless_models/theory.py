"""What signal-propagation theory (`sigprop`, float64) says about a configured model at initialisation.

The model never re-derives theory: SPA schedules, the TAT slope and predicted kernels all come from here,
and everything here comes from `sigprop`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np
import sigprop

from skipless_models.config import ModelConfig


def tat_alpha(config: ModelConfig) -> float | None:
    """TAT leaky-ReLU slope for `depth` nonlinearities and η = `tat_eta` (None for other activations)."""
    if config.mlp_activation != "tat_leaky_relu":
        return None
    return float(sigprop.tat_slope(config.depth, config.resolved_knobs()["tat_eta"]))


def _spa_request(config: ModelConfig) -> tuple:
    if not config.is_spa:
        raise ValueError(f"attention={config.attention!r} has no SPA layers; use 'espa' or 'uspa'")
    knobs = config.resolved_knobs()
    return (
        config.attention, config.depth, config.seq_len, knobs["gamma_final"], knobs["rho_final"],
        config.causal, config.kernel_budget, tat_alpha(config) if config.kernel_budget == "joint" else None,
    )


def _sigprop_kwargs(kind, depth, seq_len, gamma_final, rho_final, causal, budget, alpha) -> dict:
    return dict(kind=kind, depth=depth, seq_len=seq_len, gamma_final=gamma_final, rho_final=rho_final, causal=causal,
                budget=budget, mlp_activation="tat_leaky_relu", mlp_alpha=alpha)


@functools.lru_cache(maxsize=64)
def _spa_levels(*request) -> tuple[float, ...]:
    return tuple(float(x) for x in sigprop.spa_levels(**_sigprop_kwargs(*request)))


def spa_levels(config: ModelConfig) -> tuple[float, ...]:
    """The SPA schedule a model keeps: γ_0 = inf, γ_1, …, γ_L (E-SPA) or ρ_0 = 0, …, ρ_L (U-SPA), float64.

    Only the "joint" kernel budget depends on `config.seq_len` (its bisection matches the predicted kernel at that
    length); the resulting numbers then serve every length."""
    return _spa_levels(*_spa_request(config))


def spa_layers(config: ModelConfig) -> list:
    """`sigprop.SPALayer` records (attention A_l, bias, scale, target kernels; `[T, T]` float64 each, at
    `config.seq_len`) for an SPA config: the theory, for diagnostics and tests, never held by a model."""
    return sigprop.spa_layers(**_sigprop_kwargs(*_spa_request(config)))


def _attention_matrices(config: ModelConfig) -> Iterator[np.ndarray] | None:
    """One `[T, T]` matrix per layer (`sigprop.attention_matrices`, made when asked for); None where attention at
    init depends on the input (standard attention with W_Q ≠ 0)."""
    if config.attention == "standard" and config.resolved_init != "sigprop":
        return None
    levels = spa_levels(config) if config.is_spa else None
    return sigprop.attention_matrices(config.attention, config.depth, config.seq_len, levels=levels, causal=config.causal)


def attention_at_init(config: ModelConfig) -> list[np.ndarray] | None:
    """Per-layer input-independent attention matrices `[T, T]` at init, or None when theory has none
    (standard attention with W_Q ≠ 0)."""
    mats = _attention_matrices(config)
    return None if mats is None else list(mats)


def _mlp_kernel_map(config: ModelConfig):
    return sigprop.mlp_kernel_map(config.mlp_activation, alpha=tat_alpha(config)) if config.use_mlp else None


@functools.lru_cache(maxsize=64)
def residual_branch_weight(config: ModelConfig) -> float:
    """Branch weight b of an "nf_residual" model (`sigprop.residual_branch_weight`): the largest b ≤ 1 whose
    predicted final mean cosine stays within the skipless methods' final target (`sigprop.residual_target_cosine`)."""
    if config.block != "nf_residual":
        raise ValueError(f"block={config.block!r} has no residual branch weight; use block='nf_residual'")
    mats = _attention_matrices(config)
    if mats is None:
        raise ValueError("nf_residual needs value-independent attention at init (init='sigprop' or 'auto')")
    knobs = config.resolved_knobs()
    target = sigprop.residual_target_cosine(config.attention, config.seq_len, gamma_final=knobs["gamma_final"],
                                            rho_final=knobs["rho_final"])
    return sigprop.residual_branch_weight(list(mats), _mlp_kernel_map(config), target)


def theory_applies(config: ModelConfig) -> bool:
    """Theory predicts the kernel of skipless or norm-free residual networks with scale-preserving init and
    value-independent attention at init."""
    value_independent = config.is_spa or config.attention == "value_skipinit" or config.resolved_init == "sigprop"
    return (
        config.block in ("vanilla", "skipless_ln", "nf_residual")
        and config.resolved_init in ("sigprop", "fan_in")
        and value_independent
        and config.causal
    )


def _predictions(config: ModelConfig, kernel_in: np.ndarray | None) -> Iterator[dict[str, np.ndarray]]:
    kernel_map = _mlp_kernel_map(config)
    if config.block == "nf_residual":
        return iter(sigprop.predict_residual_kernels(
            list(_attention_matrices(config)), kernel_map, residual_branch_weight(config), kernel_in))
    return sigprop.iter_predicted_kernels(
        _attention_matrices(config), kernel_map, kernel_in, normalise=config.block == "skipless_ln"
    )


def predicted_kernels(config: ModelConfig, kernel_in: np.ndarray | None = None) -> list[dict[str, np.ndarray]] | None:
    """The theory's kernel after each attention and MLP sub-block (`[T, T]` float64 per entry).

    For "skipless_ln" the kernel is normalised to unit diagonal before each sub-block (the LayerNorm); for
    "nf_residual" each sub-block maps Σ → a²Σ + b²F(Σ) (`sigprop.predict_residual_kernels`).

    **Arguments:** `config`; `kernel_in` `[T, T]` input kernel (default the identity).
    **Returns:** per layer `{"after_attention", "after_mlp"}`, or None where theory does not apply
    (blocks with skips, GPT-2 init, standard attention with W_Q ≠ 0, non-causal attention).
    """
    if not theory_applies(config):
        return None
    return list(_predictions(config, kernel_in))


def predicted_final_cosine(config: ModelConfig) -> float:
    """The theory's mean off-diagonal cosine after the last layer on Σ_0 = I (NaN where theory does not
    apply, see `predicted_kernels`). Keeps one layer's `[T, T]` kernels at a time."""
    if not theory_applies(config):
        return math.nan
    last = None
    for last in _predictions(config, None):
        pass
    return sigprop.mean_offdiag(sigprop.cosine_from_kernel(last["after_mlp"]))
