"""Per-layer readouts for the metrics: Value-SkipInit α/β and model FLOP utilisation."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

# Dense bf16 peak per device in TFLOP/s, for the MFU estimate when --peak-tflops is not given.
_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "TPU v4": 275.0, "TPU v5 lite": 197.0, "TPU v5p": 459.0}


def gain_values(params: Any, labels: Any) -> dict[str, list[float]]:
    """Value-SkipInit gains per layer (mean over heads when per head).

    **Arguments:** `params` (parameter pytree, blocks stacked along depth), `labels` (optimiser groups).

    **Returns:** `{"skip_alpha": [L floats], "skip_beta": [L floats]}` (empty when the model has none).
    """
    found = {}
    for (path, leaf), label in zip(jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(labels)):
        if label != "gain":
            continue
        name = next(k.name for k in reversed(path) if isinstance(k, jax.tree_util.GetAttrKey))
        values = np.asarray(jax.device_get(leaf), np.float64)
        found[name] = values.reshape(values.shape[0], -1).mean(axis=1).tolist()
    return found


def peak_flops_per_second(peak_tflops: float | None) -> float | None:
    """Total peak FLOP/s of all devices: `peak_tflops` per device if given, else a known device's
    dense bf16 peak, else `None` (CPU: MFU is not reported)."""
    if peak_tflops is None:
        kind = jax.devices()[0].device_kind
        peak_tflops = next((v for k, v in _PEAK_TFLOPS.items() if k.lower() in kind.lower()), None)
    return None if peak_tflops is None else peak_tflops * 1e12 * jax.device_count()
