"""TAT (tailored activation transformation) for leaky-ReLU MLPs, and kernel maps of MLP activations.

φ_α(x) = √(2 / (1 + α²)) · max(x, αx) keeps the second moment q of a Gaussian input, and its C-map is

    C_α(c) = c + (1 − α)² / (π (1 + α²)) · (√(1 − c²) − c · arccos c).

TAT picks α so that composing the C-maps of all N nonlinearities gives C_f(0) = η.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _check_eta(eta: float) -> None:
    if not 0.0 < eta < 1.0:
        raise ValueError(f"eta must lie in (0, 1), got {eta!r}")


def tat_scale(alpha: float) -> float:
    """Output scale √(2 / (1 + α²)) of the transformed leaky ReLU."""
    return float(np.sqrt(2.0 / (1.0 + alpha**2)))


def leaky_relu_cmap(c: np.ndarray | float, alpha: float) -> np.ndarray:
    """C-map of the scaled leaky ReLU with slope `alpha`; `c` in [−1, 1] (elementwise)."""
    c = np.clip(np.asarray(c, np.float64), -1.0, 1.0)
    coeff = (1.0 - alpha) ** 2 / (np.pi * (1.0 + alpha**2))
    return c + coeff * (np.sqrt(1.0 - c**2) - c * np.arccos(c))


def relu_cmap(c: np.ndarray | float) -> np.ndarray:
    """C-map of ReLU (the α = 0 case; scale does not change a C-map)."""
    return leaky_relu_cmap(c, 0.0)


def composed_cmap(c: np.ndarray | float, alpha: float, n_nonlinearities: int) -> np.ndarray:
    """C_α applied `n_nonlinearities` times."""
    out = np.asarray(c, np.float64)
    for _ in range(int(n_nonlinearities)):
        out = leaky_relu_cmap(out, alpha)
    return out


def tat_slope(n_nonlinearities: int, eta: float = 0.9, *, tol: float = 1e-12) -> float:
    """Leaky-ReLU slope α with C_f(0) = η after `n_nonlinearities` composed C-maps.

    C_f(0) decreases from its ReLU value (α = 0) to 0 (α = 1, linear), so bisection finds α.

    **Arguments:** `n_nonlinearities` N ≥ 1 (the number of MLP blocks), `eta` in (0, 1).
    **Returns:** α in [0, 1).
    """
    if int(n_nonlinearities) != n_nonlinearities or n_nonlinearities < 1:
        raise ValueError(f"n_nonlinearities must be a positive integer, got {n_nonlinearities!r}")
    _check_eta(eta)
    relu_value = float(composed_cmap(0.0, 0.0, n_nonlinearities))
    if eta > relu_value:
        raise ValueError(
            f"eta={eta} is out of reach with {n_nonlinearities} leaky-ReLU blocks: even ReLU gives C_f(0)="
            f"{relu_value:.4f}; choose eta below that"
        )
    lo, hi = 0.0, 1.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if composed_cmap(0.0, mid, n_nonlinearities) > eta:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# Kernel maps: how an MLP block with scale-preserving (scaled-orthogonal) weights acts on a kernel Σ entrywise:
# Σ'_ij = E[φ(u) φ(v)] with (u, v) ~ N(0, [[Σ_ii, Σ_ij], [Σ_ij, Σ_jj]]).
KernelMap = Callable[[np.ndarray], np.ndarray]


def _split_kernel(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = np.clip(np.diagonal(kernel), 1e-300, None)
    norm = np.sqrt(q[:, None] * q[None, :])
    return norm, np.clip(kernel / norm, -1.0, 1.0)


def leaky_relu_kernel_map(alpha: float, *, scaled: bool = True) -> KernelMap:
    """Kernel map of max(x, αx), times √(2/(1+α²)) when `scaled` (TAT); positively homogeneous, so exact."""

    def kernel_map(kernel: np.ndarray) -> np.ndarray:
        norm, c = _split_kernel(np.asarray(kernel, np.float64))
        moment = (1.0 + alpha**2) / 2.0
        value = leaky_relu_cmap(c, alpha) * moment
        if scaled:
            value = value / moment
        return norm * value

    return kernel_map


def quadrature_kernel_map(activation: Callable[[np.ndarray], np.ndarray], order: int = 48) -> KernelMap:
    """Kernel map of any activation by 2-D Gauss–Hermite quadrature (for non-homogeneous ones such as GELU)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    weights = weights / weights.sum()

    def kernel_map(kernel: np.ndarray) -> np.ndarray:
        kernel = np.asarray(kernel, np.float64)
        q = np.clip(np.diagonal(kernel), 1e-300, None)
        su = np.sqrt(q)[:, None]
        c = np.clip(kernel / np.sqrt(q[:, None] * q[None, :]), -1.0, 1.0)
        sv = np.sqrt(q)[None, :]
        out = np.zeros_like(kernel)
        # u = √q_i z1, v = √q_j (c z1 + √(1−c²) z2)
        for z1, w1 in zip(nodes, weights):
            phi_u = activation(su * z1)
            inner = np.zeros_like(kernel)
            root = np.sqrt(1.0 - c**2)
            for z2, w2 in zip(nodes, weights):
                inner += w2 * activation(sv * (c * z1 + root * z2))
            out += w1 * phi_u * inner
        return out

    return kernel_map


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form (the default of `jax.nn.gelu`), in float64 numpy."""
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def mlp_kernel_map(activation: str, *, alpha: float | None = None) -> KernelMap:
    """Kernel map by activation name: "tat_leaky_relu" (needs `alpha`), "relu", "gelu" or "linear"."""
    if activation == "tat_leaky_relu":
        if alpha is None:
            raise ValueError("tat_leaky_relu needs its slope alpha (see tat_slope)")
        return leaky_relu_kernel_map(alpha)
    if activation == "relu":
        return leaky_relu_kernel_map(0.0, scaled=False)
    if activation == "gelu":
        return quadrature_kernel_map(gelu)
    if activation == "linear":
        return lambda kernel: np.asarray(kernel, np.float64)
    raise ValueError(f"unknown activation {activation!r}: use tat_leaky_relu, relu, gelu or linear")
