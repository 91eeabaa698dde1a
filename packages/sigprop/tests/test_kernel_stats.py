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


def test_residual_prediction_matches_a_wide_random_residual_network():
    # Independent oracle for predict_residual_kernels: explicit wide norm-free residual networks x ← a x + b f(x)
    # (Gaussian fan-in weights). The prediction is an expectation over the weights (the cross terms x·f(x) vanish
    # only on average), so the empirical kernel is averaged over independent networks.
    seq_len, width, depth, b, draws = 8, 512, 4, 0.6, 48
    a = np.sqrt(1 - b * b)
    rng = np.random.default_rng(7)
    gaussian = lambda: rng.standard_normal((width, width)) / np.sqrt(width)
    alpha = sigprop.tat_slope(depth, 0.5)
    layers = sigprop.spa_layers("espa", depth, seq_len, gamma_final=0.3)
    kernel_map = sigprop.mlp_kernel_map("tat_leaky_relu", alpha=alpha)
    predicted = sigprop.predict_residual_kernels([l.attention for l in layers], kernel_map, b)
    empirical = np.zeros((depth, 2, seq_len, seq_len))
    for draw in range(draws):
        x = _orthogonal_inputs(seq_len, width, seed=draw)
        for l, layer in enumerate(layers):
            x = a * x + b * (layer.attention @ x) @ gaussian()
            empirical[l, 0] += x @ x.T / width / draws
            h = x @ gaussian()
            h = sigprop.tat_scale(alpha) * np.maximum(h, alpha * h)
            x = a * x + b * h @ gaussian()
            empirical[l, 1] += x @ x.T / width / draws
    want = np.stack([[p["after_attention"], p["after_mlp"]] for p in predicted])
    # 48 draws at D = 512 leave a standard error of ~0.015 per entry; the vanilla prediction is 0.1+ away
    np.testing.assert_allclose(empirical, want, atol=0.06)
    assert np.abs(empirical - want).mean() < 0.015
    vanilla = sigprop.predict_kernels(layers, kernel_map)[-1]["after_mlp"]
    final = sigprop.mean_offdiag(sigprop.cosine_from_kernel(predicted[-1]["after_mlp"]))
    # the shortcut keeps the kernel closer to the input's than the vanilla network does
    assert final < sigprop.mean_offdiag(sigprop.cosine_from_kernel(vanilla)) - 0.05


def test_residual_branch_weight_hits_the_budget_and_shrinks_with_depth():
    alpha_of = lambda depth: sigprop.tat_slope(depth, 0.5)
    target = sigprop.residual_target_cosine("espa", 32, gamma_final=0.2, rho_final=0.3)
    np.testing.assert_allclose(target, sigprop.mean_offdiag(sigprop.exponential_kernel(32, 0.2)))
    assert sigprop.residual_target_cosine("uspa", 32, gamma_final=0.2, rho_final=0.3) == 0.3
    weights = []
    for depth in (4, 16, 64):
        mats = [sigprop.uniform_causal_attention(32)] * depth
        kernel_map = sigprop.mlp_kernel_map("tat_leaky_relu", alpha=alpha_of(depth))
        b = sigprop.residual_branch_weight(mats, kernel_map, target)
        final = sigprop.predict_residual_kernels(mats, kernel_map, b)[-1]["after_mlp"]
        assert abs(sigprop.mean_offdiag(sigprop.cosine_from_kernel(final)) - target) < 1e-4
        weights.append(b)
    assert weights[0] > weights[1] > weights[2] > 0
    # a gentle branch needs no down-weighting: identity attention, linear MLP keep Σ = I
    assert sigprop.residual_branch_weight([np.eye(8)] * 4, None, 0.5) == 1.0
