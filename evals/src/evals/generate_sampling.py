"""Next-token choice from logits: greedy, temperature, top-k and top-p (nucleus) sampling, traceable under `jit`."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

_REMOVED = -jnp.inf


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How the next token is chosen. `temperature` 0 = greedy (argmax); `top_k` 0 = no top-k cut; `top_p` 1 = no
    nucleus cut. Cuts apply to the temperature-scaled distribution: top-k first, then top-p."""

    temperature: float = 1.0
    """softmax temperature; 0 = greedy"""
    top_k: int = 0
    """sample among the k most probable tokens (0 = off)"""
    top_p: float = 1.0
    """sample among the most probable tokens holding this probability (1 = off)"""

    def __post_init__(self):
        if not self.temperature >= 0:
            raise ValueError(f"--temperature={self.temperature} must be >= 0 (0 = greedy)")
        if not (isinstance(self.top_k, int) and self.top_k >= 0):
            raise ValueError(f"--top-k={self.top_k} must be an integer >= 0 (0 = off)")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"--top-p={self.top_p} must lie in (0, 1] (1 = off)")


def filtered_logits(logits_BxV: Float[Array, "B V"], sampling: Sampling) -> Float[Array, "B V"]:
    """Temperature-scaled logits with the tokens outside the top-k / top-p sets at −inf (temperature > 0).

    Top-p keeps the smallest set of most probable tokens whose probability reaches `top_p` (the most probable token
    always; ties at the boundary ordered by token id). **Returns:** float32 `[B, V]`.
    """
    logits = logits_BxV.astype(jnp.float32) / sampling.temperature
    vocab = logits.shape[-1]
    if 0 < sampling.top_k < vocab:
        kth = jax.lax.top_k(logits, sampling.top_k)[0][:, -1:]
        logits = jnp.where(logits >= kth, logits, _REMOVED)
    if sampling.top_p < 1.0:
        order = jnp.argsort(-logits, axis=-1, stable=True)
        sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # probability of the more probable tokens
        keep_sorted = before < sampling.top_p
        keep = jnp.zeros_like(keep_sorted).at[jnp.arange(logits.shape[0])[:, None], order].set(keep_sorted)
        logits = jnp.where(keep, logits, _REMOVED)
    return logits


def next_token(logits_BxV: Float[Array, "B V"], key: PRNGKeyArray, sampling: Sampling) -> Int[Array, " B"]:
    """One token per row: argmax when `sampling.temperature` is 0, else a draw from `filtered_logits`."""
    if sampling.temperature == 0:
        return jnp.argmax(logits_BxV, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, filtered_logits(logits_BxV, sampling), axis=-1).astype(jnp.int32)
