"""TAT slopes and kernel maps against Monte-Carlo and quadrature oracles."""

import numpy as np
import pytest

import sigprop


def _mc_cmap(c: float, alpha: float, rng: np.random.Generator, n: int = 400_000) -> float:
    z1, z2 = rng.standard_normal((2, n))
    u, v = z1, c * z1 + np.sqrt(max(1 - c * c, 0.0)) * z2
    phi = lambda x: np.maximum(x, alpha * x)  # noqa: E731 (scale cancels in a C-map)
    return float(np.mean(phi(u) * phi(v)) / np.sqrt(np.mean(phi(u) ** 2) * np.mean(phi(v) ** 2)))


@pytest.mark.parametrize("n,eta", [(6, 0.7), (18, 0.9), (12, 0.5)])
def test_tat_slope_matches_monte_carlo(n, eta):
    alpha = sigprop.tat_slope(n, eta)
    rng = np.random.default_rng(0)
    c = 0.0
    for _ in range(n):
        c = _mc_cmap(c, alpha, rng)
    assert abs(c - eta) < 0.01


@pytest.mark.parametrize("n,expected", [(18, 0.146), (36, 0.351), (72, 0.508)])
def test_tat_slope_reference_values(n, expected):
    assert abs(sigprop.tat_slope(n, 0.9) - expected) < 1e-3


def test_tat_scale_preserves_second_moment():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(1_000_000) * 1.7
    for alpha in (0.0, 0.3, 0.8):
        y = sigprop.tat_scale(alpha) * np.maximum(x, alpha * x)
        assert abs(np.mean(y**2) / np.mean(x**2) - 1) < 0.01


def test_cmap_endpoints_and_monotonicity():
    c = np.linspace(-1, 1, 201)
    for alpha in (0.0, 0.2, 0.7):
        out = sigprop.leaky_relu_cmap(c, alpha)
        assert abs(out[-1] - 1) < 1e-12
        assert (np.diff(out) > 0).all()
        assert (out >= c - 1e-12).all()  # an MLP never decorrelates
    np.testing.assert_allclose(sigprop.leaky_relu_cmap(c, 1.0), c)


def test_closed_form_kernel_maps_match_quadrature():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 40))
    kernel = x @ x.T / 40
    for alpha in (0.0, 0.35):
        scale = sigprop.tat_scale(alpha)
        quad = sigprop.quadrature_kernel_map(lambda v: scale * np.maximum(v, alpha * v), order=96)(kernel)
        closed = sigprop.leaky_relu_kernel_map(alpha)(kernel)
        np.testing.assert_allclose(closed, quad, atol=5e-3)
    relu_quad = sigprop.quadrature_kernel_map(lambda v: np.maximum(v, 0), order=96)(kernel)
    np.testing.assert_allclose(sigprop.mlp_kernel_map("relu")(kernel), relu_quad, atol=5e-3)


def test_gelu_kernel_map_matches_monte_carlo():
    kernel = np.array([[1.0, 0.3], [0.3, 2.0]])
    rng = np.random.default_rng(3)
    z = rng.multivariate_normal(np.zeros(2), kernel, size=1_000_000)
    g = sigprop.gelu(z)
    mc = g.T @ g / len(g)
    np.testing.assert_allclose(sigprop.mlp_kernel_map("gelu")(kernel), mc, atol=5e-3)
