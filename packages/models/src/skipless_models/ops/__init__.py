"""The operations a model's modules compute with, chosen once when the model is built.

The modules write the maths against an `Ops` record: `PLAIN_OPS` (plain JAX, differentiable in forward and reverse
mode; the default off CPU and the oracle of the others in tests) or `CPU_OPS` (the same forward values with
hand-written backward passes that XLA CPU runs faster; custom VJPs, so reverse mode only). `select_ops("auto")`
is the one place that asks which backend runs: CPU gets `CPU_OPS`, everything else `PLAIN_OPS`.

Forward mode (`jax.jvp`, `jax.linearize`, `jax.jacfwd`) needs the plain operations: `model.with_ops("plain")`
gives the same model (the same parameters) computing with them. The CPU operations do not define JVPs: a function
has either a custom JVP or a custom VJP, and the CPU speed-ups are all in the backward pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

from skipless_models.ops import cpu, plain
from skipless_models.ops.cpu_head_loss import CPU_CHUNK_LOGITS, head_cross_entropy

OPS_CHOICES = ("auto", "plain", "cpu")


@dataclasses.dataclass(frozen=True)
class Ops:
    """The operations behind the modules (hashable: a model holds it as a static field).

    **Fields:**
    - `name`: "plain" or "cpu".
    - `matmul(x_NxD, w_DxF)`: 2-D product.
    - `split_qkv(qkv_BxTxHx3xK) -> (q, k, v)`: the fused projection's three slices.
    - `normalise(x, gain, bias, centre)`: LayerNorm (`centre`) / RMSNorm over the last axis.
    - `attention(q, k, v, *, spa, causal)`: softmax attention on the XLA path (SPA bias generated from `spa`).
    - `head_loss(x_BxTxD, head_DxV, targets_BxT, mask_BxT)`: `(mean_loss, aux)` of the vocabulary head.
    - `forward_mode`: whether `jax.jvp` works through every operation.
    """

    name: str
    matmul: Callable
    split_qkv: Callable
    normalise: Callable
    attention: Callable
    head_loss: Callable
    forward_mode: bool


PLAIN_OPS = Ops(
    name="plain", matmul=plain.matmul, split_qkv=plain.split_qkv, normalise=plain.normalise,
    attention=plain.attention, head_loss=plain.head_loss, forward_mode=True,
)
CPU_OPS = Ops(
    name="cpu", matmul=cpu.matmul, split_qkv=cpu.split_qkv, normalise=cpu.normalise,
    attention=cpu.attention, head_loss=head_cross_entropy, forward_mode=False,
)


def select_ops(ops: str | Ops = "auto") -> Ops:
    """**Arguments:** `ops`: "auto" (`CPU_OPS` on the CPU backend, else `PLAIN_OPS`), "plain", "cpu" or an `Ops`.
    **Returns:** the `Ops` record."""
    if isinstance(ops, Ops):
        return ops
    if ops not in OPS_CHOICES:
        raise ValueError(f"ops must be one of {OPS_CHOICES} or an Ops record, got {ops!r}")
    if ops == "auto":
        ops = _backend_default()
    return PLAIN_OPS if ops == "plain" else CPU_OPS


def _backend_default() -> str:
    return "cpu" if jax.default_backend() == "cpu" else "plain"


__all__ = ["CPU_CHUNK_LOGITS", "CPU_OPS", "OPS_CHOICES", "Ops", "PLAIN_OPS", "head_cross_entropy", "select_ops"]
