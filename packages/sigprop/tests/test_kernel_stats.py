"""Empirical kernel statistics, rank collapse of uniform attention, and E-SPA keeping its target."""

import numpy as np
import pytest

import sigprop


def _orthogonal_inputs(seq_len: int, width: int, seed: int = 0) -> np.ndarray:
    return sigprop.orthogonal_inputs(1, seq_len, width, seed)[0]


def test_orthogonal_inputs_have_the_identity_kernel_in_every_sequence():
    x = sigprop.orthogonal_inputs(3, 5, 8, seed=2)
    assert x.shape == (3, 5, 8) and x.dtype == np.float64
    for b in range(3):  # rows orthogonal with squared norm d: X Xᵀ / d = I
        np.testing.assert_allclose(x[b] @ x[b].T / 8, np.eye(5), atol=1e-12)
    assert not np.allclose(x[0], x[1])  # independent sequences
    np.testing.assert_array_equal(x, sigprop.orthogonal_inputs(3, 5, 8, seed=2))
    with pytest.raises(ValueError, match="seq_len <= width"):
        sigprop.orthogonal_inputs(1, 9, 8)


def test_kernel_stats_against_direct_loops():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 8))
    stats = sigprop.kernel_stats(x)
    np.testing.assert_array_equal(sigprop.empirical_kernel(x), stats.kernel)
    t = 5
    kernel = np.zeros((t, t))
    for b in range(3):
        for i in range(t):
            for j in range(t):
                kernel[i, j] += np.dot(x[b, i], x[b, j]) / 8 / 3
    np.testing.assert_allclose(stats.kernel, kernel, atol=1e-12)
    cos = kernel / np.sqrt(np.outer(np.diag(kernel), np.diag(kernel)))
    off = [cos[i, j] for i in range(t) for j in range(t) if i != j]
    assert abs(stats.mean_offdiag_cosine - np.mean(off)) < 1e-12
    for k in range(t):
        assert abs(stats.cosine_by_distance[k] - np.mean([cos[i, i - k] for i in range(k, t)])) < 1e-12
    np.testing.assert_allclose(stats.norms, np.sqrt(np.diag(kernel)))


def test_uniform_attention_collapses_while_espa_keeps_its_target():
    seq_len, width, depth = 32, 256, 12
    x0 = _orthogonal_inputs(seq_len, width)
    np.testing.assert_allclose(sigprop.kernel_stats(x0).kernel, np.eye(seq_len), atol=1e-10)

    uniform = sigprop.uniform_causal_attention(seq_len)
    # One layer: token i averages i + 1 orthogonal vectors, so its norm shrinks like 1/sqrt(i + 1).
    np.testing.assert_allclose(sigprop.kernel_stats(uniform @ x0).norms, 1 / np.sqrt(np.arange(1, seq_len + 1)), atol=1e-10)
    x = x0
    for _ in range(depth):
        x = uniform @ x
    collapsed = sigprop.kernel_stats(x)
    assert collapsed.mean_offdiag_cosine > 0.99

    layers = sigprop.spa_layers("espa", depth, seq_len, gamma_final=0.05)
    x = x0
    for layer in layers:
        x = layer.attention @ x
    kept = sigprop.kernel_stats(x)
    np.testing.assert_allclose(kept.kernel, layers[-1].kernel, atol=1e-10)
    assert kept.mean_offdiag_cosine < 0.7
    np.testing.assert_allclose(kept.norms, 1.0, atol=1e-10)


def test_predicted_kernels_match_a_wide_random_network():
    # Independent oracle for predict_kernels: an explicit wide vanilla network (Gaussian fan-in weights, which
    # preserve the second moment like scaled-orthogonal ones). Finite width adds O(1/sqrt(width)) noise.
    seq_len, width, depth = 8, 4096, 3
    rng = np.random.default_rng(5)
    alpha = sigprop.tat_slope(depth, 0.5)
    layers = sigprop.spa_layers("uspa", depth, seq_len, rho_final=0.5)
    x = _orthogonal_inputs(seq_len, width, seed=1)
    for layer in layers:
        x = layer.attention @ x
        h = x @ (rng.standard_normal((width, width)) / np.sqrt(width))
        h = sigprop.tat_scale(alpha) * np.maximum(h, alpha * h)
        x = h @ (rng.standard_normal((width, width)) / np.sqrt(width))
    predicted = sigprop.predict_kernels(layers, sigprop.mlp_kernel_map("tat_leaky_relu", alpha=alpha))
    empirical = sigprop.kernel_stats(x).cosine
    np.testing.assert_allclose(empirical, sigprop.cosine_from_kernel(predicted[-1]["after_mlp"]), atol=0.04)
    # The MLPs moved the kernel away from the attention-only target, and the prediction follows them.
    assert sigprop.mean_offdiag(empirical) > sigprop.mean_offdiag(layers[-1].kernel) + 0.1


def test_default_knobs_keep_the_final_kernel_in_the_intended_band():
    for attention in ("espa", "uspa"):
        cos = sigprop.predicted_final_cosine(attention, 16, 128)
        assert 0.6 <= cos <= 0.85, (attention, cos)
    tat = sigprop.predicted_final_cosine("espa", 16, 128, eta=0.9, gamma_final=0.005)
    assert tat > 0.95
    assert sigprop.predicted_final_cosine("standard", 16, 128) > 0.999
