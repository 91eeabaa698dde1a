"""Signal-preserving attention (SPA) layers: A_l = L_l L_{l−1}⁻¹ realised as diag(d_l) · softmax(B_l).

Per layer the attention at initialisation (W_Q = 0) maps the target kernel Σ_{l−1} to Σ_l exactly:
A_l Σ_{l−1} A_lᵀ = Σ_l [derived]. Kernel budgets:

- "attention" (the paper's construction): the SPA targets are the kernels after each attention sub-block; the MLP
  C-maps then act on top of them, so the whole network's kernel is more degenerate than the targets.
- "joint" (our construction): the attention schedule is made slower (larger γ_L for E-SPA, smaller ρ_L for U-SPA),
  found by bisection, so that the predicted kernel of the whole network — attention targets composed with the
  MLP kernel maps — has the same mean off-diagonal cosine after the last layer as the requested schedule's final
  target. It matches that one number, not every entry: an MLP lifts every correlation through its C-map, which a
  non-negative causal attention cannot undo entry by entry. Not realisable (ValueError) when the MLPs alone already
  exceed the requested final cosine.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from sigprop.espa import espa_log_bias, espa_row_scale
from sigprop.uspa import uspa_attention, uspa_row_scale
from sigprop.kernels import (
    attention_to_bias_scale,
    cosine_from_kernel,
    exponential_kernel,
    mean_offdiag,
    spa_matrix,
    uniform_kernel,
)
from sigprop.kinds import KERNEL_BUDGETS, SPA_KINDS
from sigprop.schedules import check_espa_gammas, espa_gammas, uspa_rhos
from sigprop.tat import KernelMap, mlp_kernel_map

BUDGETS = KERNEL_BUDGETS


@dataclass(frozen=True)
class SPALayer:
    """One SPA layer at initialisation (float64).

    - `attention`: `[T, T]` A_l, with A_l `kernel_in` A_lᵀ = `kernel`.
    - `bias`: `[T, T]` log A_l (−inf strictly above the diagonal when causal).
    - `scale`: `[T]` location-dependent rescaling d_l (row sums of A_l).
    - `kernel_in`, `kernel`: `[T, T]` target kernels Σ_{l−1} and Σ_l.
    - `gamma_prev`, `gamma`: E-SPA decay rates (None for U-SPA), so kernels can regenerate the bias.
    - `rho_prev`, `rho`: U-SPA correlations (None for E-SPA), likewise.
    """

    attention: np.ndarray
    bias: np.ndarray
    scale: np.ndarray
    kernel_in: np.ndarray
    kernel: np.ndarray
    gamma_prev: float | None = None
    gamma: float | None = None
    rho_prev: float | None = None
    rho: float | None = None


def _levels(kind: str, depth: int, gamma_final: float, rho_final: float, gammas=None) -> np.ndarray:
    """γ_0..γ_L (E-SPA) or ρ_0..ρ_L (U-SPA)."""
    if kind == "espa":
        return espa_gammas(depth, gamma_final) if gammas is None else check_espa_gammas(gammas)
    return uspa_rhos(depth, rho_final)


def _target_kernel(kind: str, seq_len: int, level: float) -> np.ndarray:
    return exponential_kernel(seq_len, level) if kind == "espa" else uniform_kernel(seq_len, level)


def spa_attention(kind: str, seq_len: int, prev: float, level: float, *, causal: bool = True) -> np.ndarray:
    """One SPA layer's attention A_l at initialisation, from its two schedule numbers (level[l−1], level[l]).

    Closed forms for causal E-SPA (exp of `espa_log_bias`) and U-SPA (both masks); non-causal E-SPA has none, and
    is solved numerically from the two target kernels (`spa_matrix`). **Returns:** `[T, T]` float64.
    """
    if kind == "espa" and causal:
        return np.exp(espa_log_bias(seq_len, prev, level))
    if kind == "uspa":
        return uspa_attention(seq_len, prev, level, causal=causal)
    if kind != "espa":
        raise ValueError(f"unknown SPA kind {kind!r}: use one of {SPA_KINDS}")
    kernels = (_target_kernel(kind, seq_len, prev), _target_kernel(kind, seq_len, level))
    return spa_matrix(*kernels, causal=causal)


def _layer_attention(kind, seq_len, prev, level, causal):
    """(attention, bias, scale) of one layer."""
    attention = spa_attention(kind, seq_len, prev, level, causal=causal)
    if kind == "espa" and causal:
        return attention, espa_log_bias(seq_len, prev, level), espa_row_scale(seq_len, prev, level)
    if kind == "uspa":
        with np.errstate(divide="ignore"):
            bias = np.log(attention)
        return attention, bias, uspa_row_scale(seq_len, prev, level, causal=causal)
    bias, scale = attention_to_bias_scale(attention, causal=causal)
    return attention, bias, scale


def _build_layers(kind: str, seq_len: int, levels: np.ndarray, causal: bool) -> list[SPALayer]:
    kernels = [_target_kernel(kind, seq_len, x) for x in levels]
    layers = []
    for l in range(1, len(levels)):
        prev, level = float(levels[l - 1]), float(levels[l])
        attention, bias, scale = _layer_attention(kind, seq_len, prev, level, causal)
        espa = kind == "espa"
        layers.append(
            SPALayer(
                attention=attention,
                bias=bias,
                scale=scale,
                kernel_in=kernels[l - 1],
                kernel=kernels[l],
                gamma_prev=prev if espa else None,
                gamma=level if espa else None,
                rho_prev=None if espa else prev,
                rho=None if espa else level,
            )
        )
    return layers


def iter_predicted_kernels(
    attentions: Iterable[np.ndarray] | Iterable[SPALayer],
    mlp_kernel_map: KernelMap | None = None,
    kernel_in: np.ndarray | None = None,
    *,
    normalise: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
    """The theory's prediction of a skipless network's kernel, one layer at a time (each attention matrix is read
    when its layer comes, so a generator of matrices keeps one `[T, T]` matrix alive).

    Attention with value-independent matrix A (W_Q = 0) and orthogonal W_V, W_O maps Σ → A Σ Aᵀ; an MLP block with
    scale-preserving weights maps Σ entrywise through its activation's kernel map; a normalisation before each
    sub-block (`normalise`, skipless+LN) turns Σ into its cosine (unit diagonal) first.

    **Arguments:**
    - `attentions`: per layer an `[T, T]` attention matrix (or `SPALayer`s).
    - `mlp_kernel_map`: the MLP's kernel map (see `sigprop.mlp_kernel_map`), None for attention-only stacks.
    - `kernel_in`: `[T, T]` input kernel, default the identity (orthogonal inputs).
    - `normalise`: normalise the kernel before each sub-block.

    **Yields:** per layer a dict with `after_attention` and `after_mlp` (`[T, T]` float64).
    """
    kernel = None if kernel_in is None else np.asarray(kernel_in, np.float64)
    for x in attentions:
        a = x.attention if isinstance(x, SPALayer) else np.asarray(x, np.float64)
        kernel = np.eye(a.shape[0]) if kernel is None else kernel
        if normalise:
            kernel = cosine_from_kernel(kernel)
        after_attention = a @ kernel @ a.T
        kernel = after_attention
        if mlp_kernel_map is not None:
            kernel = mlp_kernel_map(cosine_from_kernel(after_attention) if normalise else after_attention)
        yield {"after_attention": after_attention, "after_mlp": kernel}


def predict_kernels(
    attentions: Iterable[np.ndarray] | Iterable[SPALayer],
    mlp_kernel_map: KernelMap | None = None,
    kernel_in: np.ndarray | None = None,
    *,
    normalise: bool = False,
) -> list[dict[str, np.ndarray]]:
    """`iter_predicted_kernels` as a list (every layer's `[T, T]` kernels at once)."""
    return list(iter_predicted_kernels(attentions, mlp_kernel_map, kernel_in, normalise=normalise))


def final_mean_cosine(predicted: list[dict[str, np.ndarray]]) -> float:
    """Mean off-diagonal cosine of the last predicted kernel."""
    return mean_offdiag(cosine_from_kernel(predicted[-1]["after_mlp"]))


def _joint_final_level(kind, depth, seq_len, gamma_final, rho_final, causal, kernel_map) -> float:
    """The final γ_L (E-SPA) or ρ_L (U-SPA) of the "joint" budget, found by bisection (see the module docs)."""
    wanted = mean_offdiag(cosine_from_kernel(_target_kernel(kind, seq_len, _levels(kind, depth, gamma_final, rho_final)[-1])))

    def cosine_for(param: float) -> float:
        levels = _levels(kind, depth, param if kind == "espa" else gamma_final, param if kind == "uspa" else rho_final)
        layers = _build_layers(kind, seq_len, levels, causal)
        return final_mean_cosine(predict_kernels(layers, kernel_map))

    mlp_only = final_mean_cosine(predict_kernels([np.eye(seq_len)] * depth, kernel_map))
    if mlp_only >= wanted:
        raise ValueError(
            f"joint kernel budget not realisable: the MLPs alone reach mean cosine {mlp_only:.3f} >= the target "
            f"{wanted:.3f}; lower tat_eta (more linear MLPs) or use a more degraded final kernel"
        )
    # E-SPA: larger γ_L = slower attention; U-SPA: smaller ρ_L = slower attention. Bisect in a monotone coordinate.
    if kind == "espa":
        lo, hi = np.log(gamma_final), np.log(10.0)
        to_param = np.exp
    else:
        lo, hi = 0.0, rho_final
        to_param = float
    if kind == "espa" and cosine_for(float(np.exp(hi))) > wanted:
        raise ValueError("joint kernel budget not realisable within γ_L <= 10; lower tat_eta")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        too_correlated = cosine_for(float(to_param(mid))) > wanted
        if kind == "espa":
            lo, hi = (mid, hi) if too_correlated else (lo, mid)
        else:
            lo, hi = (lo, mid) if too_correlated else (mid, hi)
        if abs(hi - lo) < 1e-7:
            break
    return float(to_param(0.5 * (lo + hi)))


def _check_request(kind: str, budget: str, gammas) -> None:
    if kind not in SPA_KINDS:
        raise ValueError(f"unknown SPA kind {kind!r}: use one of {SPA_KINDS}")
    if budget not in BUDGETS:
        raise ValueError(f"unknown kernel budget {budget!r}: use one of {BUDGETS}")
    if budget == "joint" and gammas is not None:
        raise ValueError("budget='joint' chooses the schedule itself: pass gamma_final, not gammas")


def spa_levels(
    kind: str,
    depth: int,
    seq_len: int,
    *,
    gamma_final: float = 0.005,
    rho_final: float = 0.8,
    gammas: np.ndarray | None = None,
    causal: bool = True,
    budget: str = "attention",
    mlp_activation: str = "tat_leaky_relu",
    mlp_alpha: float | None = None,
) -> np.ndarray:
    """The per-layer schedule numbers that determine every SPA layer: γ_0 = inf, γ_1, …, γ_L (E-SPA) or
    ρ_0 = 0, ρ_1, …, ρ_L (U-SPA). Layer l's attention is a closed-form function of (level[l−1], level[l]) and the
    positions, at any sequence length (see `sigprop.espa`, `sigprop.uspa`).

    **Arguments:** as `spa_layers`; `seq_len` matters only for budget="joint" (the bisection matches the predicted
    kernel at that length).

    **Returns:** `[L + 1]` float64.
    """
    _check_request(kind, budget, gammas)
    if budget == "joint":
        kernel_map = mlp_kernel_map(mlp_activation, alpha=mlp_alpha)
        final = _joint_final_level(kind, depth, seq_len, gamma_final, rho_final, causal, kernel_map)
        gamma_final, rho_final = (final, rho_final) if kind == "espa" else (gamma_final, final)
    return _levels(kind, depth, gamma_final, rho_final, gammas)


def spa_layers(
    kind: str,
    depth: int,
    seq_len: int,
    *,
    gamma_final: float = 0.005,
    rho_final: float = 0.8,
    gammas: np.ndarray | None = None,
    causal: bool = True,
    budget: str = "attention",
    mlp_activation: str = "tat_leaky_relu",
    mlp_alpha: float | None = None,
) -> list[SPALayer]:
    """SPA attention layers for a depth-L network.

    **Arguments:**
    - `kind`: "espa" (Σ_l[i,j] = exp(−γ_l|i−j|)) or "uspa" (Σ_l = (1−ρ_l) I + ρ_l 11ᵀ).
    - `depth` L, `seq_len` T.
    - `gamma_final` (E-SPA γ_L; default 0.005 as in a third-party E-SPA), `rho_final` (U-SPA ρ_L; our default 0.8),
      or an explicit E-SPA schedule `gammas` (γ_0 = inf, strictly decreasing).
    - `causal`: Cholesky factors (decoder); False uses symmetric square roots (encoder).
    - `budget`: "attention" or "joint" (see the module docs); "joint" needs the MLP's `mlp_activation`
      and, for "tat_leaky_relu", its slope `mlp_alpha`.

    **Returns:** `depth` `SPALayer` records.
    """
    levels = spa_levels(
        kind, depth, seq_len, gamma_final=gamma_final, rho_final=rho_final, gammas=gammas, causal=causal,
        budget=budget, mlp_activation=mlp_activation, mlp_alpha=mlp_alpha,
    )
    return _build_layers(kind, seq_len, levels, causal)
