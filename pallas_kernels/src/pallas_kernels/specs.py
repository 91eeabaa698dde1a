"""BlockSpecs and launch parameters for the two memory layouts.

GPU kernels read `[B, T, H, D]` directly; TPU kernels read `[B, H, T, D]` (Mosaic tiles the last two
dims). Row statistics are `[B, H, T]` on GPU and `[B, H, T, 1]` on TPU. Grids are `(B, H, blocks)` for
the per-tile kernels and `(Bb, Hb, num_q_blocks, num_k_blocks)` for the bias gradient.
"""

from __future__ import annotations

from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

try:  # deprecated from jax 0.11 in favour of Mosaic GPU; `dispatch.triton_status` falls back when it is gone
    from jax.experimental.pallas import triton as plgpu
except ImportError:  # pragma: no cover - depends on the installed jax
    plgpu = None

from pallas_kernels.config import FlashConfig


def seq_spec(cfg: FlashConfig, block: int | None, head_dim: int) -> pl.BlockSpec:
    """A `[t, D]` slice of q/k/v/o for grid `(b, h, i)`: tile `i` of size `block`, or all T if `block` is None."""
    size = cfg.seq_len if block is None else block
    if cfg.backend == "gpu":
        return pl.BlockSpec((None, size, None, head_dim), lambda b, h, i: (b, 0 if block is None else i, h, 0))
    return pl.BlockSpec((None, None, size, head_dim), lambda b, h, i: (b, h, 0 if block is None else i, 0))


def rows_spec(cfg: FlashConfig, block: int | None, batch: int = 0, heads: int = 0) -> pl.BlockSpec:
    """Row statistics (lse, δ, row scale) for grid `(b, h, i)`. `batch` / `heads` = 1 selects a broadcast axis."""
    size = cfg.seq_len if block is None else block

    def index(b, h, i):
        return (0 if batch == 1 else b, 0 if heads == 1 else h, 0 if block is None else i)

    if cfg.backend == "gpu":
        return pl.BlockSpec((None, None, size), index)
    return pl.BlockSpec((None, None, size, 1), lambda b, h, i: (*index(b, h, i), 0))


def bias_spec(cfg: FlashConfig, rows: int | None, cols: int | None) -> pl.BlockSpec:
    """Explicit bias `[Bb, Hb, T, T]` for grid `(b, h, i)`: a row tile (`rows`) or a column tile (`cols`)."""
    shape = (None, None, cfg.seq_len if rows is None else rows, cfg.seq_len if cols is None else cols)

    def index(b, h, i):
        return (
            0 if cfg.bias_batch == 1 else b,
            0 if cfg.bias_heads == 1 else h,
            0 if rows is None else i,
            0 if cols is None else i,
        )

    return pl.BlockSpec(shape, index)


def spa_tables_spec(cfg: FlashConfig) -> pl.BlockSpec:
    """The generated bias's tables, whole in every program: E-SPA's `[8]` coefficients (a small operand on GPU,
    scalar memory on TPU) or U-SPA's `[4, T]` vectors."""
    if cfg.bias_mode == "uspa":
        return pl.BlockSpec((4, cfg.seq_len), lambda *_: (0, 0))
    if cfg.backend == "gpu":
        return pl.BlockSpec((8,), lambda *_: (0,))
    return pl.BlockSpec(memory_space=pltpu.SMEM)


def all_heads_spec(cfg: FlashConfig, batch: int, heads: int, block: int, head_dim: int, axis: int) -> pl.BlockSpec:
    """Every batch and head of one tile, for grid `(bb, hb, i, j)`; the tile index is grid axis `axis` (2 or 3)."""
    if cfg.backend == "gpu":
        return pl.BlockSpec((batch, block, heads, head_dim), lambda bb, hb, i, j: (0, (i, j)[axis - 2], 0, 0))
    return pl.BlockSpec((batch, heads, block, head_dim), lambda bb, hb, i, j: (0, 0, (i, j)[axis - 2], 0))


def all_heads_rows_spec(cfg: FlashConfig, batch: int, heads: int) -> pl.BlockSpec:
    """Row statistics of every batch and head for query tile `i` of grid `(bb, hb, i, j)`."""
    if cfg.backend == "gpu":
        return pl.BlockSpec((batch, heads, cfg.block_q), lambda bb, hb, i, j: (0, 0, i))
    return pl.BlockSpec((batch, heads, cfg.block_q, 1), lambda bb, hb, i, j: (0, 0, i, 0))


def launch_kwargs(cfg: FlashConfig, num_grid_axes: int, reduction_axes: tuple[int, ...] = ()) -> dict:
    """`compiler_params` (always passed explicitly, since defaults moved between jax versions) and `interpret`."""
    if cfg.backend == "gpu":
        return {
            "compiler_params": plgpu.CompilerParams(num_warps=cfg.num_warps, num_stages=cfg.num_stages),
            "interpret": cfg.interpret,
        }
    semantics = tuple(
        pltpu.ARBITRARY if axis in reduction_axes else pltpu.PARALLEL for axis in range(num_grid_axes)
    )
    kwargs = {"compiler_params": pltpu.CompilerParams(dimension_semantics=semantics)}
    if cfg.interpret:
        kwargs["interpret"] = pltpu.InterpretParams()
    return kwargs
