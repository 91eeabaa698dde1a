"""Static description of one fused-attention call: tiling, bias source, backend.

Everything here is a Python constant baked into the kernels; traced values (the arrays and the SPA tables:
E-SPA coefficients, U-SPA vectors) are kernel operands.
"""

from __future__ import annotations

import dataclasses

BIAS_MODES = ("none", "array", "espa", "uspa")
BACKENDS = ("gpu", "tpu")


@dataclasses.dataclass(frozen=True)
class FlashConfig:
    """Static parameters shared by the forward and backward kernels.

    - `block_q`, `block_k`: query / key tile sizes; `seq_len` (padded) is a multiple of both.
    - `kv_len`: the true sequence length (keys at or past it are masked when not causal).
    - `sm_scale`: logit scale; `causal`: mask keys after the query.
    - `bias_mode`: "none", "array" (explicit `[Bb, Hb, T, T]` bias), "espa" (generated from its `[8]`
      coefficients) or "uspa" (generated from its `[4, T]` vectors); both generated modes bring their row scale.
    - `bias_batch`, `bias_heads`: the explicit bias's leading sizes (1 = broadcast).
    - `has_row_scale`: an explicit `[Br, Hr, T]` row scale is given (generated biases bring their own).
    - `row_scale_batch`, `row_scale_heads`: its leading sizes (1 = broadcast).
    - `backend`: "gpu" (Triton-style, layout `[B, T, H, D]`) or "tpu" (Mosaic, layout `[B, H, T, D]`).
    - `interpret`: run the kernels in the backend's interpret mode (CPU testing).
    - `num_warps`, `num_stages`: Triton launch parameters (GPU only).
    - `backward_block_q`, `backward_block_k`: tiles of the backward kernels (0 = the forward tiles); they
      hold more operands per tile (q, k, v, dO and a bias tile), so large head dims need smaller ones.
    """

    block_q: int
    block_k: int
    seq_len: int
    kv_len: int
    sm_scale: float
    causal: bool
    bias_mode: str
    bias_batch: int = 1
    bias_heads: int = 1
    has_row_scale: bool = False
    row_scale_batch: int = 1
    row_scale_heads: int = 1
    backend: str = "gpu"
    interpret: bool = False
    num_warps: int = 4
    num_stages: int = 2
    backward_block_q: int = 0
    backward_block_k: int = 0

    def __post_init__(self):
        if self.bias_mode not in BIAS_MODES:
            raise ValueError(f"bias_mode must be one of {BIAS_MODES}, got {self.bias_mode!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.seq_len % self.block_q or self.seq_len % self.block_k:
            raise ValueError(
                f"padded seq_len {self.seq_len} must be a multiple of block_q={self.block_q} and block_k={self.block_k}"
            )

    def for_backward(self) -> "FlashConfig":
        """The same call with the backward tiles as its tiles."""
        return dataclasses.replace(
            self,
            block_q=self.backward_block_q or self.block_q,
            block_k=self.backward_block_k or self.block_k,
            backward_block_q=0,
            backward_block_k=0,
        )

    @property
    def num_q_blocks(self) -> int:
        return self.seq_len // self.block_q

    @property
    def num_k_blocks(self) -> int:
        return self.seq_len // self.block_k

    @property
    def generated(self) -> bool:
        """The bias and row scale come from SPA tables (E-SPA or U-SPA), not from arrays."""
        return self.bias_mode in ("espa", "uspa")

    @property
    def masks_padding(self) -> bool:
        """Padded keys need an explicit mask only without causality (causal rows never see them)."""
        return (not self.causal) and self.kv_len < self.seq_len
