"""Abstract restore targets: shapes, dtypes and shardings without data."""

from typing import Any

import jax


def abstract_arrays(arrays: Any, shardings: Any = None) -> Any:
    """Describes a pytree of arrays as `jax.ShapeDtypeStruct`s carrying a sharding.

    Orbax restores each leaf straight onto the sharding of its abstract target, so the
    same checkpoint can be read onto a mesh of any shape.

    **Arguments:**

    - `arrays`: pytree whose leaves are arrays or `jax.ShapeDtypeStruct`s (e.g. the output of
        `jax.eval_shape`); `None` leaves are kept as `None`.
    - `shardings`: optional pytree of `jax.sharding.Sharding` with the same structure; when
        omitted each leaf keeps its own `.sharding` (or none, for plain shape structs).

    **Returns:**

    A pytree of `jax.ShapeDtypeStruct` with the structure of `arrays`.
    """
    if shardings is None:
        return jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
            arrays,
        )
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), arrays, shardings
    )
