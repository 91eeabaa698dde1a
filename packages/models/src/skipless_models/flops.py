"""Model FLOPs per token (for MFU), PaLM convention."""

from __future__ import annotations

from skipless_models.config import ModelConfig


def matmul_params(config: ModelConfig) -> int:
    """Parameters that take part in matmuls: Q/K/V/O, MLP, vocabulary head (embedding lookups excluded)."""
    d, f = config.width, config.mlp_width
    per_layer = 4 * d * d + (2 * d * f if config.use_mlp else 0)
    return config.depth * per_layer + d * config.vocab_size


def model_flops_per_token(config: ModelConfig, seq_len: int | None = None) -> float:
    """Training FLOPs per token, forward + backward: `6·N + 12·L·D·T`.

    N = `matmul_params(config)`; the attention term counts QKᵀ and AV over the full T×T square
    (PaLM's convention, causal masking not discounted). `seq_len` defaults to `config.seq_len`.
    """
    t = config.seq_len if seq_len is None else seq_len
    return float(6 * matmul_params(config) + 12 * config.depth * config.width * t)
