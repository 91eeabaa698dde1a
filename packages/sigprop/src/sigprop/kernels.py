"""Target kernels, SPA attention matrices and empirical kernel statistics (float64 numpy).

A sequence's kernel is Σ = X Xᵀ / d (T×T): its diagonal holds the squared per-position norms, its normalised
off-diagonal entries the cosine similarity between tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _check_seq_len(seq_len: int) -> None:
    if int(seq_len) != seq_len or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")


def exponential_kernel(seq_len: int, gamma: float) -> np.ndarray:
    """E-SPA target Σ[i, j] = exp(−γ |i − j|); `gamma = inf` gives the identity.

    **Arguments:** `seq_len` T, `gamma` ≥ 0. **Returns:** `[T, T]` float64.
    """
    _check_seq_len(seq_len)
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0 (inf allowed), got {gamma!r}")
    if np.isinf(gamma):
        return np.eye(seq_len)
    idx = np.arange(seq_len)
    return np.exp(-float(gamma) * np.abs(idx[:, None] - idx[None, :]))


def uniform_kernel(seq_len: int, rho: float) -> np.ndarray:
    """U-SPA target Σ = (1 − ρ) I + ρ 11ᵀ.

    **Arguments:** `seq_len` T, `rho` in [0, 1). **Returns:** `[T, T]` float64.
    """
    _check_seq_len(seq_len)
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"rho must lie in [0, 1), got {rho!r}")
    return (1.0 - rho) * np.eye(seq_len) + rho * np.ones((seq_len, seq_len))


def _symmetric_sqrt(kernel: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(kernel)
    if w.min() <= 0:
        raise ValueError("kernel is not positive definite: its symmetric square root does not exist")
    return (v * np.sqrt(w)) @ v.T


def _cholesky(kernel: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(kernel)
    except np.linalg.LinAlgError as err:
        raise ValueError("kernel is not positive definite: no Cholesky factor (pick a slower schedule)") from err


def spa_matrix(kernel_in: np.ndarray, kernel_out: np.ndarray, *, causal: bool = True) -> np.ndarray:
    """The attention matrix A with A Σ_in Aᵀ = Σ_out.

    Causal: A = L_out L_in⁻¹ with Cholesky factors, so A is lower triangular. Non-causal (encoder):
    A = Σ_out^{1/2} Σ_in^{-1/2} with symmetric square roots.

    **Arguments:** `kernel_in`, `kernel_out`: `[T, T]` positive definite. **Returns:** `[T, T]` float64.
    """
    kernel_in = np.asarray(kernel_in, np.float64)
    kernel_out = np.asarray(kernel_out, np.float64)
    if kernel_in.shape != kernel_out.shape or kernel_in.ndim != 2 or kernel_in.shape[0] != kernel_in.shape[1]:
        raise ValueError(f"kernels must be square and of equal shape, got {kernel_in.shape} and {kernel_out.shape}")
    root = _cholesky if causal else _symmetric_sqrt
    root_in, root_out = root(kernel_in), root(kernel_out)
    # A root_in = root_out  <=>  root_inᵀ Aᵀ = root_outᵀ
    a = np.linalg.solve(root_in.T, root_out.T).T
    if causal:
        a = np.tril(a)
    return a


def attention_to_bias_scale(attention: np.ndarray, *, causal: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Write a non-negative attention matrix as diag(scale) · softmax(bias).

    **Arguments:** `attention`: `[T, T]`, entrywise ≥ 0 (lower triangular when `causal`).
    **Returns:** `(bias, scale)`: bias `[T, T]` = log A (−inf strictly above the diagonal when causal), scale `[T]`
    the row sums (the location-dependent rescaling).
    """
    a = np.asarray(attention, np.float64)
    t = a.shape[0]
    allowed = np.tril(np.ones((t, t), bool)) if causal else np.ones((t, t), bool)
    tol = 1e-12 * np.abs(a).max(initial=1.0)
    if (a[allowed] < -tol).any():
        worst = a[allowed].min()
        raise ValueError(
            f"attention matrix has negative entries (min {worst:.3g}): softmax cannot realise it; "
            "use a slower kernel schedule"
        )
    if causal and np.abs(a[~allowed]).max(initial=0.0) > tol:
        raise ValueError("attention matrix is not lower triangular, so it is not causal")
    with np.errstate(divide="ignore"):
        bias = np.where(allowed, np.log(np.clip(a, 0.0, None)), -np.inf)
    scale = np.where(allowed, np.clip(a, 0.0, None), 0.0).sum(axis=1)
    return bias, scale


@dataclass(frozen=True)
class KernelStats:
    """Empirical kernel statistics of a batch of sequences.

    - `kernel`: `[T, T]` mean over the batch of X Xᵀ / d.
    - `cosine`: `[T, T]` normalised kernel.
    - `mean_offdiag_cosine`: mean of the cosine over pairs i ≠ j.
    - `cosine_by_distance`: `[T]`, entry k = mean cosine between positions i and i − k.
    - `norms`: `[T]` per-position RMS norm √Σ_ii.
    """

    kernel: np.ndarray
    cosine: np.ndarray
    mean_offdiag_cosine: float
    cosine_by_distance: np.ndarray
    norms: np.ndarray


def cosine_from_kernel(kernel: np.ndarray) -> np.ndarray:
    """Normalise a kernel (or a batch of kernels, `[..., T, T]`) to cosine similarities."""
    kernel = np.asarray(kernel, np.float64)
    diag = np.sqrt(np.clip(np.diagonal(kernel, axis1=-2, axis2=-1), 1e-300, None))
    return kernel / (diag[..., :, None] * diag[..., None, :])


def mean_offdiag(matrix: np.ndarray) -> float:
    """Mean of the off-diagonal entries of a square matrix (0 for T = 1)."""
    t = matrix.shape[-1]
    if t == 1:
        return 0.0
    return float((matrix.sum() - np.trace(matrix)) / (t * (t - 1)))


def cosine_by_distance(cosine: np.ndarray) -> np.ndarray:
    """Entry k: mean of cosine[i, i − k] over valid i. **Returns:** `[T]`."""
    t = cosine.shape[-1]
    return np.array([np.diagonal(cosine, offset=-k).mean() for k in range(t)])


def orthogonal_inputs(batch: int, seq_len: int, width: int, seed: int = 0) -> np.ndarray:
    """Inputs whose kernel is the identity exactly, X_b X_bᵀ / d = I for every sequence b (the theory's Σ_0).

    Each sequence is √d times the transposed Q of a QR of a `[d, T]` standard normal draw (`numpy.random.default_rng
    (seed)`, sequence after sequence). **Arguments:** `batch` B, `seq_len` T, `width` d (needs T ≤ d), `seed`.
    **Returns:** `[B, T, d]` float64.
    """
    if seq_len > width:
        raise ValueError(f"orthogonal inputs need seq_len <= width (got {seq_len} > {width})")
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((batch, width, seq_len)))[0]  # orthonormal columns
    return np.sqrt(width) * np.swapaxes(q, 1, 2)


def empirical_kernel(x: np.ndarray) -> np.ndarray:
    """Σ = X Xᵀ / d averaged over the batch. **Arguments:** `x` `[T, d]` or `[B, T, d]` (any float dtype; computed in
    float64). **Returns:** `[T, T]` float64."""
    x = np.asarray(x, np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"expected [T, d] or [B, T, d] representations, got shape {x.shape}")
    return np.einsum("btd,bsd->ts", x, x) / (x.shape[0] * x.shape[2])


def kernel_stats(x: np.ndarray) -> KernelStats:
    """Kernel statistics of representations.

    **Arguments:** `x`: `[T, d]` or `[B, T, d]` (any float dtype; computed in float64).
    **Returns:** a `KernelStats`.
    """
    kernel = empirical_kernel(x)
    cos = cosine_from_kernel(kernel)
    return KernelStats(
        kernel=kernel,
        cosine=cos,
        mean_offdiag_cosine=mean_offdiag(cos),
        cosine_by_distance=cosine_by_distance(cos),
        norms=np.sqrt(np.diagonal(kernel)),
    )
