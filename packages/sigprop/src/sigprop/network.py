"""Whole-network predictions at initialisation, and the project's default signal-propagation knobs.

Default knobs [our choice, not the paper's]: the predicted kernel after the last layer (SPA targets composed with the
TAT MLP kernel maps, on Σ_0 = I) should keep a mean off-diagonal cosine of about 0.6–0.85. Measured in a small
independent implementation (depth 16, T = 128): with η = 0.9, γ_L = 0.005 the final cosine was 0.994 and vanilla
E-SPA barely trained; with η = 0.5, γ_L = 0.2 it was 0.78 and it trained far better. The TAT / third-party E-SPA
values stay available as `TAT_PRESET`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from sigprop.kernels import cosine_from_kernel, mean_offdiag
from sigprop.kinds import ATTENTION_KINDS, SPA_KINDS, MLP_ACTIVATIONS as _ACTIVATIONS
from sigprop.spa import predict_kernels, spa_attention, spa_levels
from sigprop.tat import mlp_kernel_map, tat_slope

DEFAULT_ETA = 0.5
DEFAULT_GAMMA_FINAL = 0.2
DEFAULT_RHO_FINAL = 0.3
TAT_PRESET = {"eta": 0.9, "gamma_final": 0.005, "rho_final": 0.8}

MLP_ACTIVATIONS = (*_ACTIVATIONS, "none")  # "none": attention-only blocks


def uniform_causal_attention(seq_len: int) -> np.ndarray:
    """Attention of standard causal softmax attention with zero logits: A[i, j] = 1/(i+1) for j ≤ i."""
    a = np.tril(np.ones((seq_len, seq_len)))
    return a / a.sum(axis=1, keepdims=True)


def attention_matrices(
    attention: str, depth: int, seq_len: int, *, levels: Sequence[float] | None = None, causal: bool = True
) -> Iterator[np.ndarray]:
    """Per-layer attention matrices at initialisation (W_Q = 0), `[T, T]` float64 each, made one layer at a time.

    "standard" is uniform causal attention, "value_skipinit" the identity (α = 1, β = 0), SPA kinds their A_l from
    the schedule `levels` (γ_0 = inf, …, γ_L or ρ_0 = 0, …, ρ_L: `spa_levels`; its length sets the depth).
    """
    if attention in SPA_KINDS:
        if levels is None:
            raise ValueError(f"{attention} attention needs its schedule levels (sigprop.spa_levels)")
        for l in range(1, len(levels)):
            yield spa_attention(attention, seq_len, float(levels[l - 1]), float(levels[l]), causal=causal)
        return
    if attention == "standard":
        uniform = uniform_causal_attention(seq_len)
        yield from (uniform for _ in range(depth))
        return
    if attention == "value_skipinit":
        yield from (np.eye(seq_len) for _ in range(depth))
        return
    raise ValueError(f"unknown attention {attention!r}: use one of {ATTENTION_KINDS}")


def attention_at_init(
    attention: str,
    depth: int,
    seq_len: int,
    *,
    gamma_final: float = DEFAULT_GAMMA_FINAL,
    rho_final: float = DEFAULT_RHO_FINAL,
    budget: str = "attention",
    mlp_activation: str = "tat_leaky_relu",
    mlp_alpha: float | None = None,
) -> list[np.ndarray]:
    """Per-layer attention matrices at initialisation (W_Q = 0), `depth` × `[T, T]`.

    "standard" is uniform causal attention, "value_skipinit" the identity (α = 1, β = 0), SPA kinds their A_l.
    """
    levels = None
    if attention in SPA_KINDS:
        levels = spa_levels(
            attention,
            depth,
            seq_len,
            gamma_final=gamma_final,
            rho_final=rho_final,
            budget=budget,
            mlp_activation=mlp_activation if mlp_activation != "none" else "linear",
            mlp_alpha=mlp_alpha,
        )
    return list(attention_matrices(attention, depth, seq_len, levels=levels))


def predicted_final_cosine(
    attention: str,
    depth: int,
    seq_len: int,
    *,
    mlp_activation: str = "tat_leaky_relu",
    eta: float = DEFAULT_ETA,
    gamma_final: float = DEFAULT_GAMMA_FINAL,
    rho_final: float = DEFAULT_RHO_FINAL,
    budget: str = "attention",
) -> float:
    """Mean off-diagonal cosine of the predicted kernel after the last layer of a vanilla network.

    **Arguments:** the attention kind, `depth` (= number of MLP blocks, which sets the TAT slope), `seq_len`, the MLP
    activation ("none" for attention-only stacks) and the signal-propagation knobs.
    **Returns:** a float in [−1, 1].
    """
    if mlp_activation not in MLP_ACTIVATIONS:
        raise ValueError(f"unknown MLP activation {mlp_activation!r}: use one of {MLP_ACTIVATIONS}")
    alpha = tat_slope(depth, eta) if mlp_activation == "tat_leaky_relu" else None
    mats = attention_at_init(
        attention,
        depth,
        seq_len,
        gamma_final=gamma_final,
        rho_final=rho_final,
        budget=budget,
        mlp_activation=mlp_activation,
        mlp_alpha=alpha,
    )
    kernel_map = None if mlp_activation == "none" else mlp_kernel_map(mlp_activation, alpha=alpha)
    predicted = predict_kernels(mats, kernel_map)
    return mean_offdiag(cosine_from_kernel(predicted[-1]["after_mlp"]))
