"""Optimiser groups: a label for every array leaf of a model."""

from __future__ import annotations

import equinox as eqx
import jax

GROUPS = ("matrix", "vector", "embedding", "head", "gain")

_LABEL_BY_FIELD = {
    "embed": "embedding",
    "pos_embed": "embedding",
    "head": "head",
    "w_qkv": "matrix",
    "w_o": "matrix",
    "w_in": "matrix",
    "w_out": "matrix",
    "b_in": "vector",
    "b_out": "vector",
    "gain": "vector",  # norm gains
    "bias": "vector",  # norm biases
    "skip_alpha": "gain",
    "skip_beta": "gain",
}


def leaf_field(path) -> str:
    """The attribute name that holds a leaf (last `GetAttrKey` on its path)."""
    for entry in reversed(path):
        if isinstance(entry, jax.tree_util.GetAttrKey):
            return entry.name
    raise ValueError(f"cannot name the leaf at {jax.tree_util.keystr(path)}")


def param_groups(model: eqx.Module):
    """Label every array leaf for the optimiser.

    Labels: "matrix" (dense weights; the only group with weight decay), "vector" (biases, norm gains),
    "embedding", "head", "gain" (Value-SkipInit α, β; their own learning rate). Every array leaf is trainable:
    SPA's fixed bias and scale are generated from schedule numbers held in a static field
    (`Transformer.spa_levels`), so nothing needs freezing or masking.

    **Arguments:** `model`: a `Transformer`.
    **Returns:** a pytree of str with the structure of `eqx.filter(model, eqx.is_array)`.
    """

    def label(path, _):
        name = leaf_field(path)
        if name not in _LABEL_BY_FIELD:
            raise ValueError(f"no optimiser group for parameter {jax.tree_util.keystr(path)}")
        return _LABEL_BY_FIELD[name]

    return jax.tree_util.tree_map_with_path(label, eqx.filter(model, eqx.is_array))
