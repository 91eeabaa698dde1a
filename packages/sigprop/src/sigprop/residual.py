"""Norm-free residual networks: x ← a·x + b·f(x) with a² + b² = 1, the branch weight b set by the kernel budget.

At initialisation the branch f (attention with W_Q = 0 and orthogonal W_V, W_O; or an MLP with zero-mean output
weights) is uncorrelated with its input in expectation over the output weights, so the cross terms of the kernel
vanish and a sub-block maps

    Σ → a² Σ + b² F(Σ)          (F = A Σ Aᵀ for attention, the activation's kernel map for an MLP).

With a² + b² = 1 a sub-block keeps the diagonal wherever F does. The rule for b [our choice, DKS/TAT-style shortcut
weighting]: one b for every sub-block of the network, the largest b ≤ 1 for which the predicted kernel after the
last layer (on Σ_0 = I) has a mean off-diagonal cosine no higher than the skipless methods' final target (the
"joint" budget's value: the mean cosine of the final SPA target kernel). Shallow or gentle branches get b = 1;
deep nets get b ≈ c/√L, the depth dependence of stable residual nets.
"""

from __future__ import annotations

import numpy as np

from sigprop.kernels import cosine_from_kernel, exponential_kernel, mean_offdiag
from sigprop.tat import KernelMap


def residual_target_cosine(attention: str, seq_len: int, *, gamma_final: float, rho_final: float) -> float:
    """The whole-network budget b is solved for: the mean off-diagonal cosine of the skipless methods' final target.

    U-SPA: ρ_L (its final target (1 − ρ_L) I + ρ_L 11ᵀ); every other attention kind: E-SPA's final target
    exp(−γ_L |i − j|) at `seq_len` (the one budget the paper's construction defines by position).
    """
    if attention == "uspa":
        return float(rho_final)
    return mean_offdiag(exponential_kernel(seq_len, gamma_final))


def predict_residual_kernels(
    attentions: list[np.ndarray],
    mlp_kernel_map: KernelMap | None,
    branch_weight: float,
    kernel_in: np.ndarray | None = None,
) -> list[dict[str, np.ndarray]]:
    """The theory's kernel of a norm-free residual network, layer by layer.

    **Arguments:** `attentions`: per layer the `[T, T]` attention at init; `mlp_kernel_map` (None: no MLP
    sub-blocks); `branch_weight` b in [0, 1] (shortcut a = √(1 − b²)); `kernel_in` `[T, T]` (default I).
    **Returns:** per layer `{"after_attention", "after_mlp"}` (`[T, T]` float64).
    """
    if not 0.0 <= branch_weight <= 1.0:
        raise ValueError(f"branch_weight={branch_weight} must lie in [0, 1]")
    b2 = float(branch_weight) ** 2
    a2 = 1.0 - b2
    mats = [np.asarray(a, np.float64) for a in attentions]
    if not mats:
        return []
    kernel = np.eye(mats[0].shape[0]) if kernel_in is None else np.asarray(kernel_in, np.float64)
    out = []
    for a in mats:
        after_attention = a2 * kernel + b2 * (a @ kernel @ a.T)
        kernel = after_attention
        if mlp_kernel_map is not None:
            kernel = a2 * after_attention + b2 * mlp_kernel_map(after_attention)
        out.append({"after_attention": after_attention, "after_mlp": kernel})
    return out


def _final_cosine(attentions, mlp_kernel_map, branch_weight: float) -> float:
    last = predict_residual_kernels(attentions, mlp_kernel_map, branch_weight)[-1]["after_mlp"]
    return mean_offdiag(cosine_from_kernel(last))


def residual_branch_weight(
    attentions: list[np.ndarray], mlp_kernel_map: KernelMap | None, target_cosine: float, *, tol: float = 1e-6
) -> float:
    """The branch weight b of the module docstring: the largest b ≤ 1 whose predicted final mean cosine ≤ target.

    **Arguments:** per-layer attention at init, the MLP kernel map (or None), the target mean cosine in (0, 1).
    **Returns:** b in (0, 1] (bisection on b; the final cosine grows with b from 0 at b = 0).
    """
    if not 0.0 < target_cosine < 1.0:
        raise ValueError(f"target_cosine={target_cosine} must lie in (0, 1)")
    if _final_cosine(attentions, mlp_kernel_map, 1.0) <= target_cosine:
        return 1.0
    lo, hi = 0.0, 1.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _final_cosine(attentions, mlp_kernel_map, mid) <= target_cosine else (lo, mid)
    return lo
