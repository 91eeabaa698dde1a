"""The training state and its shardings, built straight onto the mesh.

The model is split into `params` (array leaves, trained and checkpointed) and `static` (everything
else, closed over by the step). Shardings are data: a `PartitionSpec` per parameter from
`skipless_models.partition_specs`, mirrored onto the optimiser leaves that shadow a parameter.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from jaxtyping import Array, Int, PRNGKeyArray

import skipless_models
from skipless_models import ModelConfig


class TrainState(NamedTuple):
    """Everything that changes during training (all leaves are arrays; checkpointed as is).

    **Fields:** `params` (array leaves of the model, `None` elsewhere), `opt_state` (Optax state),
    `step` (int32 scalar: optimiser steps taken).
    """

    params: Any
    opt_state: Any
    step: Int[Array, ""]


@dataclasses.dataclass(frozen=True)
class ModelSetup:
    """What the step needs besides the state: the non-array half of the model and per-leaf data.

    **Fields:** `static` (non-array half, `eqx.combine(params, static)` rebuilds the model),
    `labels` (optimiser group per parameter), `param_specs` (`PartitionSpec` per parameter),
    `abstract_params` (`jax.ShapeDtypeStruct` per parameter).
    """

    static: Any
    labels: Any
    param_specs: Any
    abstract_params: Any


def describe_model(config: ModelConfig, mesh: Mesh, key: PRNGKeyArray) -> ModelSetup:
    """Traces `build_model` without allocating parameters and records labels and specs.

    **Arguments:**

    - `config`: the model configuration.
    - `mesh`: the ("data", "model") mesh; dimensions it does not divide stay replicated.
    - `key`: the initialisation key (only its shape matters here).

    **Returns:** a `ModelSetup`.
    """
    found: dict[str, Any] = {}

    def trace(k):
        model = skipless_models.build_model(config, key=k, verbose=False)
        found["static"] = eqx.filter(model, eqx.is_array, inverse=True)
        found["labels"] = skipless_models.param_groups(model)
        found["specs"] = skipless_models.partition_specs(model, mesh)
        return eqx.filter(model, eqx.is_array)

    abstract_params = jax.eval_shape(trace, key)
    return ModelSetup(found["static"], found["labels"], found["specs"], abstract_params)


def state_shardings(setup: ModelSetup, optimizer: optax.GradientTransformation, mesh: Mesh) -> TrainState:
    """**Returns:** a `TrainState` of `NamedSharding`s: parameters per their specs, optimiser
    moments like their parameters, every other optimiser leaf and the step replicated."""
    param_shardings = jax.tree.map(lambda spec: NamedSharding(mesh, spec), setup.param_specs, is_leaf=_is_spec)
    replicated = NamedSharding(mesh, P())
    # An optimiser leaf that mirrors a parameter (Adam's mu/nu, momentum) sits at a key path ending
    # in that parameter's key path, with the same shape: give it the parameter's sharding.
    by_path = {
        tuple(path): (shape.shape, sharding)
        for (path, shape), sharding in zip(
            jax.tree_util.tree_flatten_with_path(setup.abstract_params)[0], jax.tree.leaves(param_shardings)
        )
    }

    def mirror(path, leaf):
        for start in range(len(path)):
            match = by_path.get(tuple(path[start:]))
            if match is not None and match[0] == leaf.shape:
                return match[1]
        return replicated

    abstract_opt_state = jax.eval_shape(optimizer.init, setup.abstract_params)
    opt_shardings = jax.tree_util.tree_map_with_path(mirror, abstract_opt_state)
    return TrainState(param_shardings, opt_shardings, replicated)


def init_state(
    config: ModelConfig, setup: ModelSetup, optimizer: optax.GradientTransformation, shardings: TrainState, key: PRNGKeyArray
) -> TrainState:
    """Initialises parameters on the host, places each leaf straight onto its sharding, then the optimiser.

    The orthogonal inits need a float64 QR, which runs on the host. Inside a sharded `jit` that host
    call was pinned to device 0 and its result broadcast to every device; with 32 host devices on a
    small CPU the other devices waited in that broadcast past XLA CPU's collective timeout. Here the
    model is built op by op on the host CPU, and each device receives only its own shard of each
    leaf (`jax.make_array_from_callback`, which also serves multi-process meshes: every process
    builds the same numbers from the same key and keeps its own shards). Random draws do not depend
    on the mesh, so every mesh shape starts from the same numbers.
    """
    host = jax.local_devices(backend="cpu")[0]
    with jax.default_device(host):
        model = skipless_models.build_model(config, key=jax.device_put(key, host), verbose=False)
    params = jax.tree.map(_place, eqx.filter(model, eqx.is_array), shardings.params)
    del model
    opt_state = jax.jit(optimizer.init, out_shardings=shardings.opt_state)(params)
    step = jax.device_put(jnp.zeros((), jnp.int32), shardings.step)
    return TrainState(params, opt_state, step)


def _place(leaf: Array, sharding: NamedSharding) -> Array:
    host_leaf = np.asarray(leaf)
    return jax.make_array_from_callback(host_leaf.shape, sharding, lambda index: host_leaf[index])


def abstract_state(setup: ModelSetup, optimizer: optax.GradientTransformation, shardings: TrainState) -> TrainState:
    """**Returns:** the `TrainState` as `jax.ShapeDtypeStruct`s carrying `shardings` (a restore target)."""
    shapes = TrainState(
        setup.abstract_params,
        jax.eval_shape(optimizer.init, setup.abstract_params),
        jax.ShapeDtypeStruct((), jnp.int32),
    )
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings)


def _is_spec(x: Any) -> bool:
    return isinstance(x, P)

