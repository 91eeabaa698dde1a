"""Signal propagation at initialisation, summarised for a results table.

Feeds orthogonal inputs (Σ_0 = X Xᵀ / d = I exactly, the theory's starting kernel) through the blocks
of a freshly initialised model and compares the empirical kernel after every layer with the
theory's prediction (`skipless_models.predicted_kernels`, float64).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import numpy as np
import sigprop
import skipless_models
from skipless_models import ModelConfig


def init_signal_summary(config: ModelConfig, *, seed: int = 0, batch: int = 2) -> dict[str, float]:
    """Empirical vs predicted kernels of a model at init.

    **Arguments:** `config` (the run's model; T is capped at D so inputs can be orthogonal), `seed`
    (model initialisation seed), `batch` (sequences averaged).

    **Returns:** `final_cosine` (measured mean off-diagonal cosine after the last block),
    `predicted_final_cosine`, `max_kernel_error` / `mean_kernel_error` (max / mean over layers and
    entries of |Σ_empirical − Σ_predicted| after each block; NaN where theory does not apply) and
    `final_rms` (root mean square of the last block's outputs).
    """
    seq_len = min(config.seq_len, config.width)
    config = config.replace(seq_len=seq_len)
    model = skipless_models.build_model(config, key=jax.random.key(seed), verbose=False)
    inputs = sigprop.orthogonal_inputs(batch, seq_len, config.width, seed).astype(np.float32)
    outputs = np.asarray(_intermediates(model, inputs)["after_mlp"])  # [L, B, T, D]
    stats = [sigprop.kernel_stats(x) for x in outputs]
    kernels = np.stack([s.kernel for s in stats])
    final_cosine = stats[-1].mean_offdiag_cosine
    predicted = skipless_models.predicted_kernels(config)
    if predicted is None:
        error = mean_error = predicted_cosine = math.nan
    else:
        targets = np.stack([p["after_mlp"] for p in predicted])
        error = float(np.max(np.abs(kernels - targets)))
        mean_error = float(np.mean(np.abs(kernels - targets)))
        predicted_cosine = sigprop.mean_offdiag(sigprop.cosine_from_kernel(targets[-1]))
    return {
        "final_cosine": float(final_cosine),
        "predicted_final_cosine": float(predicted_cosine),
        "max_kernel_error": error,
        "mean_kernel_error": mean_error,
        "final_rms": float(np.sqrt(np.mean(np.diagonal(kernels[-1])))),
    }


@eqx.filter_jit
def _intermediates(model, inputs):
    return model.intermediates(inputs)
