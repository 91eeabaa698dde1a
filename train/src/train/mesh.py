"""The device mesh ("data", "model"): parsing `DxM`, building it, checking it fits.

`parse_mesh` is imported by `train.main` before JAX starts (it decides how many host devices to
ask XLA for), so this module imports JAX only inside the functions that need it.
"""

from __future__ import annotations

import re

MESH_AXES = ("data", "model")


def parse_mesh(spec: str) -> tuple[int, int]:
    """Parses a mesh flag such as `"4x8"`.

    **Arguments:**

    - `spec`: `"DxM"` with D the "data" axis size and M the "model" axis size.

    **Returns:**

    `(D, M)` as positive ints; raises `ValueError` naming the flag and the fix otherwise.
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(spec))
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(f"--mesh={spec!r} is not of the form DxM with positive sizes; pass e.g. --mesh=1x1 or --mesh=4x8.")
    return int(match.group(1)), int(match.group(2))


def make_mesh(data: int, model: int):
    """Builds a `jax.sharding.Mesh` over all global devices with Auto axis types.

    **Arguments:**

    - `data`, `model`: axis sizes; their product must equal the number of devices.

    **Returns:**

    The mesh with axes `("data", "model")`.
    """
    import jax

    available = jax.device_count()
    if data * model != available:
        raise ValueError(
            f"--mesh={data}x{model} needs {data * model} devices but {available} are available "
            f"({jax.devices()[0].platform}); pass a mesh whose D*M equals {available}."
        )
    return jax.make_mesh((data, model), MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * 2)


def check_batch_fits(global_batch_size: int, data: int, process_count: int) -> None:
    """Raises a clear `ValueError` when the batch cannot be split over the data axis and processes."""
    if global_batch_size % data:
        raise ValueError(
            f"--batch-size={global_batch_size} is not divisible by the mesh's data axis ({data}); "
            f"pass a batch size that is a multiple of {data}."
        )
    if global_batch_size % process_count:
        raise ValueError(
            f"--batch-size={global_batch_size} is not divisible by the {process_count} processes; "
            f"pass a multiple of {process_count}."
        )
