"""MLP nonlinearities: GELU (tanh form, as in `sigprop`'s kernel map), ReLU and TAT's scaled leaky ReLU."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def tat_leaky_relu(x: Float[Array, "..."], alpha: float) -> Float[Array, "..."]:
    """TAT leaky ReLU `√(2/(1+α²)) · max(x, αx)`: unit second moment on N(0, 1) inputs."""
    scale = (2.0 / (1.0 + alpha * alpha)) ** 0.5
    return scale * jnp.where(x >= 0, x, alpha * x)


def activation(name: str, x: Float[Array, "..."], alpha: float | None = None) -> Float[Array, "..."]:
    """Apply the activation `name` ("gelu", "relu", "tat_leaky_relu" with slope `alpha`)."""
    if name == "gelu":
        return jax.nn.gelu(x, approximate=True)
    if name == "relu":
        return jax.nn.relu(x)
    if name == "tat_leaky_relu":
        return tat_leaky_relu(x, alpha)
    raise ValueError(f"unknown activation {name!r}; choose gelu, relu or tat_leaky_relu")
