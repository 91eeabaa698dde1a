"""The model variants the theory covers, each declared once as a type.

Everything that lists attention kinds, SPA kinds, kernel budgets or MLP activations (the model's config,
the theory, the command lines, the suites) derives its list from these with `typing.get_args`. They live
here, in the numpy-only theory package, because the theory is the lowest layer that has to know them:
`skipless_models`, `pallas_kernels`, `train` and `evals` all import from it, and it imports none of them.

Adding an attention kind: add it to `AttentionKind` (and to `SpaKind` if it is a signal-preserving
attention with a bias and row scale), give the theory its attention matrix at initialisation
(`sigprop.network.attention_at_init`), and the model its module (`skipless_models.attention`).
"""

from __future__ import annotations

from typing import Literal, get_args

AttentionKind = Literal["standard", "value_skipinit", "uspa", "espa"]
"""Self-attention: softmax(QKᵀ/√d) ("standard"), (αI + βA)V with α=1, β=0 at init ("value_skipinit"),
or fixed signal-preserving attention with uniform ("uspa") or exponential ("espa") target kernels."""

SpaKind = Literal["uspa", "espa"]
"""The attention kinds whose bias B_l and row scale d_l come from a target kernel (a subset of `AttentionKind`)."""

KernelBudget = Literal["attention", "joint"]
"""SPA targets as specified with the MLP C-maps on top ("attention"), or attention targets chosen so that
attention followed by the MLP C-map reaches the intended kernel path ("joint")."""

MlpActivation = Literal["gelu", "relu", "tat_leaky_relu"]
"""The MLP's nonlinearity; "tat_leaky_relu" has slope `sigprop.tat_slope(depth, tat_eta)`."""

ATTENTION_KINDS: tuple[str, ...] = get_args(AttentionKind)
SPA_KINDS: tuple[str, ...] = get_args(SpaKind)
KERNEL_BUDGETS: tuple[str, ...] = get_args(KernelBudget)
MLP_ACTIVATIONS: tuple[str, ...] = get_args(MlpActivation)

assert set(SPA_KINDS) <= set(ATTENTION_KINDS), "every SPA kind is an attention kind"
