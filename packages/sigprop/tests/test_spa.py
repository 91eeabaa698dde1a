"""SPA matrices against the numerical float64 construction and the defining identity A Σ_{l−1} Aᵀ = Σ_l."""

import numpy as np
import pytest

import sigprop


def _softmax_rows(bias: np.ndarray) -> np.ndarray:
    shifted = bias - bias.max(axis=1, keepdims=True)
    w = np.exp(shifted)
    return w / w.sum(axis=1, keepdims=True)


def _cholesky_spa(kernel_in: np.ndarray, kernel_out: np.ndarray) -> np.ndarray:
    # Independent oracle: explicit inverse of the Cholesky factor.
    return np.linalg.cholesky(kernel_out) @ np.linalg.inv(np.linalg.cholesky(kernel_in))


@pytest.mark.parametrize("seq_len", [1, 2, 7, 33, 64])
@pytest.mark.parametrize("depth", [1, 3, 12])
def test_espa_closed_form_equals_cholesky(seq_len, depth):
    gammas = sigprop.espa_gammas(depth, 0.05)
    for layer, (g_prev, g) in enumerate(zip(gammas[:-1], gammas[1:])):
        k_in = np.exp(-g_prev * np.abs(np.subtract.outer(np.arange(seq_len), np.arange(seq_len)))) if np.isfinite(g_prev) else np.eye(seq_len)
        k_out = np.exp(-g * np.abs(np.subtract.outer(np.arange(seq_len), np.arange(seq_len))))
        expected = _cholesky_spa(k_in, k_out)
        closed = sigprop.espa_attention(seq_len, g_prev, g)
        np.testing.assert_allclose(closed, expected, atol=1e-12, rtol=0, err_msg=f"layer {layer}")
        scale = sigprop.espa_row_scale(seq_len, g_prev, g)
        np.testing.assert_allclose(scale, expected.sum(axis=1), atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", ["espa", "uspa"])
@pytest.mark.parametrize("depth", [1, 12, 72])
def test_attention_maps_target_kernels(kind, depth):
    seq_len = 40
    layers = sigprop.spa_layers(kind, depth, seq_len, gamma_final=0.005, rho_final=0.8)
    assert len(layers) == depth
    np.testing.assert_array_equal(layers[0].kernel_in, np.eye(seq_len))
    for l, layer in enumerate(layers):
        a = layer.attention
        np.testing.assert_allclose(a @ layer.kernel_in @ a.T, layer.kernel, atol=1e-10, rtol=0, err_msg=f"layer {l}")
        if l:
            np.testing.assert_array_equal(layer.kernel_in, layers[l - 1].kernel)
        assert (a >= 0).all(), "SPA attention must be entrywise non-negative"
        assert np.abs(np.triu(a, 1)).max() == 0.0, "SPA attention must be lower triangular (causal)"
        assert np.isneginf(layer.bias[np.triu_indices(seq_len, 1)]).all()
        np.testing.assert_allclose(layer.scale[:, None] * _softmax_rows(layer.bias), a, atol=1e-12, rtol=0)
    # The targets themselves: unit diagonal and the documented schedules.
    final = layers[-1].kernel
    np.testing.assert_allclose(np.diag(final), 1.0)
    if kind == "espa":
        np.testing.assert_allclose(final[5, 2], np.exp(-0.005 * 3), rtol=1e-12)
    else:
        np.testing.assert_allclose(final[5, 2], 0.8, rtol=1e-12)


def test_espa_bias_finite_at_long_context():
    gammas = sigprop.espa_gammas(12, 0.005)
    for l in (1, 12):
        bias = sigprop.espa_log_bias(8192, gammas[l - 1], gammas[l])
        lower = np.tril(np.ones((8192, 8192), bool))
        assert np.isfinite(bias[lower]).all()
        assert np.isneginf(bias[~lower]).all()
        # Far entries are tiny but not lost: the closed form's log decays linearly in the distance.
        c = sigprop.espa_coefficients(gammas[l - 1], gammas[l])
        np.testing.assert_allclose(bias[8191, 1], c.log_offdiag + c.log_decay * (8191 - 1 - 1), rtol=1e-12)


def test_espa_diagonal_is_constant_across_layers():
    # The schedule is chosen so that A_ii (i ≥ 1) is the same in every layer.
    layers = sigprop.spa_layers("espa", 10, 16, gamma_final=0.01)
    diags = [layer.attention[3, 3] for layer in layers]
    np.testing.assert_allclose(diags, diags[0], rtol=1e-12)
    np.testing.assert_allclose(diags[0], np.sqrt(-np.expm1(-0.02)) ** 0.1, rtol=1e-12)


def test_non_causal_variant_uses_symmetric_square_root():
    layers = sigprop.spa_layers("uspa", 4, 12, rho_final=0.6, causal=False)
    for layer in layers:
        a = layer.attention
        np.testing.assert_allclose(a @ layer.kernel_in @ a.T, layer.kernel, atol=1e-10)
        assert np.abs(np.triu(a, 1)).max() > 1e-3  # attends to the future
        np.testing.assert_allclose(layer.scale[:, None] * _softmax_rows(layer.bias), a, atol=1e-12)
    w, v = np.linalg.eigh(layers[0].kernel)
    np.testing.assert_allclose(layers[0].attention, (v * np.sqrt(w)) @ v.T, atol=1e-12)


@pytest.mark.parametrize("kind,knob", [("espa", {"gamma_final": 0.005}), ("uspa", {"rho_final": 0.8})])
def test_joint_budget_reaches_the_intended_final_cosine(kind, knob):
    depth, seq_len = 8, 32
    alpha = sigprop.tat_slope(depth, 0.5)
    intended = sigprop.spa_layers(kind, depth, seq_len, **knob)[-1].kernel
    wanted = sigprop.mean_offdiag(intended)
    joint = sigprop.spa_layers(kind, depth, seq_len, budget="joint", mlp_alpha=alpha, **knob)
    kernel_map = sigprop.mlp_kernel_map("tat_leaky_relu", alpha=alpha)
    whole = sigprop.predict_kernels(joint, kernel_map)
    assert abs(sigprop.final_mean_cosine(whole) - wanted) < 1e-5
    # Plain "attention" budget overshoots: the MLPs push the kernel further towards collapse.
    plain = sigprop.predict_kernels(sigprop.spa_layers(kind, depth, seq_len, **knob), kernel_map)
    assert sigprop.final_mean_cosine(plain) > wanted + 0.01


def test_joint_budget_unrealisable_is_a_clear_error():
    alpha = sigprop.tat_slope(18, 0.9)
    with pytest.raises(ValueError, match="not realisable"):
        sigprop.spa_layers("espa", 18, 16, gamma_final=0.5, budget="joint", mlp_alpha=alpha)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: sigprop.spa_layers("espa", 0, 8), "depth"),
        (lambda: sigprop.spa_layers("espa", 4, 0), "seq_len"),
        (lambda: sigprop.spa_layers("alibi", 4, 8), "unknown SPA kind"),
        (lambda: sigprop.spa_layers("uspa", 4, 8, rho_final=1.0), "rho"),
        (lambda: sigprop.spa_layers("uspa", 4, 8, rho_final=-0.1), "rho"),
        (lambda: sigprop.spa_layers("espa", 2, 8, gammas=[np.inf, 0.1, 0.2]), "decreasing"),
        (lambda: sigprop.spa_layers("espa", 2, 8, gammas=[1.0, 0.5, 0.2]), "inf"),
        (lambda: sigprop.espa_gammas(4, 0.0), "gamma_final"),
        (lambda: sigprop.espa_coefficients(0.1, 0.2), "γ_"),
        (lambda: sigprop.tat_slope(8, 1.0), "eta"),
        (lambda: sigprop.tat_slope(8, 0.0), "eta"),
        (lambda: sigprop.tat_slope(0, 0.5), "n_nonlinearities"),
        (lambda: sigprop.spa_layers("espa", 4, 8, budget="both"), "budget"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_explicit_gamma_schedule_is_used():
    gammas = np.array([np.inf, 1.0, 0.4, 0.1])
    layers = sigprop.spa_layers("espa", 3, 10, gammas=gammas)
    np.testing.assert_allclose(layers[-1].kernel[9, 0], np.exp(-0.1 * 9))
    assert [x.gamma for x in layers] == [1.0, 0.4, 0.1]


@pytest.mark.parametrize("kind, causal", [("espa", True), ("espa", False), ("uspa", True), ("uspa", False)])
def test_attention_matrices_stream_the_spa_layers_attention(kind, causal):
    """One layer at a time from the schedule numbers: the same A_l as the full `SPALayer` records."""
    depth, seq_len = 4, 12
    levels = sigprop.spa_levels(kind, depth, seq_len, causal=causal)
    layers = sigprop.spa_layers(kind, depth, seq_len, causal=causal)
    streamed = sigprop.attention_matrices(kind, depth, seq_len, levels=levels, causal=causal)
    assert not isinstance(streamed, list)
    for got, layer in zip(streamed, layers, strict=True):
        np.testing.assert_allclose(got, layer.attention, atol=1e-12)
        np.testing.assert_allclose(got @ layer.kernel_in @ got.T, layer.kernel, atol=1e-10)
    assert list(sigprop.attention_matrices("value_skipinit", 2, 3))[1].tolist() == np.eye(3).tolist()
    uniform = list(sigprop.attention_matrices("standard", 2, 3))
    np.testing.assert_allclose(uniform[0], [[1, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]])
    with pytest.raises(ValueError, match="schedule levels"):
        next(sigprop.attention_matrices(kind, depth, seq_len))


def test_predicted_kernels_with_a_norm_before_each_sub_block():
    """`normalise`: each sub-block reads the cosine of the kernel (what a LayerNorm makes of it), checked against
    explicit representations normalised per position and mixed by the attention (float64, exact at init)."""
    seq_len, width = 6, 64
    layers = sigprop.spa_layers("uspa", 3, seq_len, rho_final=0.6)
    x = sigprop.orthogonal_inputs(1, seq_len, width, seed=3)[0] * np.linspace(0.5, 2.0, seq_len)[:, None]
    predicted = sigprop.predict_kernels(layers, None, sigprop.empirical_kernel(x), normalise=True)
    for layer, want in zip(layers, predicted, strict=True):
        x = x / np.sqrt(np.mean(x**2, axis=1, keepdims=True))  # RMS-normalise each position (orthogonal rows)
        x = layer.attention @ x
        np.testing.assert_allclose(sigprop.empirical_kernel(x), want["after_attention"], atol=1e-10)
