"""Sharding as data: a `PartitionSpec` per parameter for a ("data", "model") mesh.

FSDP: one dimension of every matrix is sharded over "data"; tensor parallelism: heads and the MLP hidden
dimension over "model". A dimension that an axis does not divide is left unsharded (never an error).
"""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax
from jax.sharding import PartitionSpec as P

from skipless_models.config import ModelConfig
from skipless_models.param_groups import leaf_field

# Axis per dimension; block leaves carry the leading depth axis (never sharded).
_TEMPLATES = {
    "embed": (None, "data"),  # [V, D]
    "pos_embed": (None, "data"),  # [T, D]
    "head": ("data", "model"),  # [D, V]
    "w_qkv": (None, "data", "model", None, None),  # [L, D, H, 3, K]
    "w_o": (None, "model", None, "data"),  # [L, H, K, D]
    "w_in": (None, "data", "model"),  # [L, D, F]
    "b_in": (None, "model"),  # [L, F]
    "w_out": (None, "model", "data"),  # [L, F, D]
}


def mesh_axis_sizes(mesh) -> dict[str, int]:
    """Axis sizes of a `jax.sharding.Mesh`, a mapping {name: size}, or a tuple (data, model)."""
    if mesh is None:
        return {}
    if hasattr(mesh, "shape") and isinstance(mesh.shape, Mapping):
        return dict(mesh.shape)
    if isinstance(mesh, Mapping):
        return dict(mesh)
    sizes = tuple(mesh)
    if len(sizes) != 2:
        raise ValueError(f"mesh shape {sizes} must be (data, model), e.g. (4, 8)")
    return {"data": int(sizes[0]), "model": int(sizes[1])}


def _spec(template, shape, sizes) -> P:
    axes = []
    for axis, dim in zip(template, shape):
        if axis is None or (sizes and (axis not in sizes or dim % sizes[axis])):
            axes.append(None)
        else:
            axes.append(axis)
    return P(*axes)


def partition_specs(model: eqx.Module, mesh=None):
    """A `PartitionSpec` per array leaf.

    **Arguments:**
    - `model`: a `Transformer`.
    - `mesh`: optional `Mesh`, {axis: size} or (data, model); dimensions it does not divide (and axes it
      lacks) fall back to replication. Without it the specs assume every dimension divides.

    **Returns:** a pytree of `PartitionSpec` with the structure of `eqx.filter(model, eqx.is_array)`.
    """
    sizes = mesh_axis_sizes(mesh)

    def spec(path, leaf):
        template = _TEMPLATES.get(leaf_field(path))
        if template is None or len(template) != leaf.ndim:
            return P()
        return _spec(template, leaf.shape, sizes)

    return jax.tree_util.tree_map_with_path(spec, eqx.filter(model, eqx.is_array))


def check_mesh_compatible(config: ModelConfig, mesh_shape) -> list[str]:
    """Checks that a ("data", "model") mesh can hold the model; says which dimensions stay replicated.

    Tensor parallelism shards heads and the MLP hidden dimension over "model", each where the axis
    divides it; a dimension it does not divide is replicated over "model" (its work repeated on every
    device of that axis). A "model" axis that divides neither (so it would shard nothing a block
    computes) is refused.

    **Arguments:** `config`; `mesh_shape` as (data, model), {axis: size} or a `Mesh`.

    **Returns:** one note per replicated dimension (empty when everything divides). Raises a
    `ValueError` naming the sizes and the fix when the mesh cannot serve the model.
    """
    sizes = mesh_axis_sizes(mesh_shape)
    for name, size in sizes.items():
        if size < 1:
            raise ValueError(f"mesh axis {name!r} has size {size}; sizes must be >= 1")
    model_size = sizes.get("model", 1)
    if model_size == 1:
        return []
    heads_split = config.heads % model_size == 0
    mlp_split = config.use_mlp and config.mlp_width % model_size == 0
    if not heads_split and not mlp_split:
        mlp = f" nor mlp_width={config.mlp_width}" if config.use_mlp else " (and the model has no MLP)"
        raise ValueError(
            f"the 'model' mesh axis ({model_size}) divides neither heads={config.heads}{mlp}, so it "
            "would shard nothing; choose a model axis that divides the heads or the MLP width"
        )
    notes = []
    if not heads_split:
        notes.append(f"heads={config.heads} do not divide over the 'model' axis ({model_size}): attention is "
                     "replicated over it (MLP and head still sharded)")
    if config.use_mlp and not mlp_split:
        notes.append(f"mlp_width={config.mlp_width} does not divide over the 'model' axis ({model_size}): "
                     "the MLP is replicated over it")
    return notes
