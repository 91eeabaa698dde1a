"""Mean held-out loss over (a prefix of) the eval split."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import jax
from jax.sharding import NamedSharding

from .data_feed import eval_arrays


def evaluate(eval_step: Callable, params: Any, batches: Iterable, sharding: NamedSharding, limit: int) -> float:
    """Token-weighted mean next-token loss (nats per token).

    **Arguments:**

    - `eval_step`: from `train.step.make_eval_step`, returning (summed loss, token count).
    - `params`: the model's parameters.
    - `batches`: `skipless_data.eval_batches(...)` for this process.
    - `sharding`: batch sharding.
    - `limit`: the most batches (0 = the whole split).

    **Returns:** the mean loss over every masked-in target seen.
    """
    total, count = 0.0, 0.0
    for tokens, mask in eval_arrays(batches, sharding, limit):
        summed, n = jax.device_get(eval_step(params, tokens, mask))
        total, count = total + float(summed), count + float(n)
    return total / max(count, 1.0)
