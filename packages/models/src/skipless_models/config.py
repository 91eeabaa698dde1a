"""`ModelConfig`: the one source of truth for a transformer's shape and its skipless variant.

Every variant of the model (Pre-LN baseline, vanilla E-SPA, ...) is a value of this frozen dataclass;
`build_model(config, key=...)` turns it into an Equinox module.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args

from pallas_kernels.dispatch import IMPLS as ATTENTION_IMPLS
from pallas_kernels.dispatch import AttentionImpl
from sigprop.kinds import (
    ATTENTION_KINDS as ATTENTIONS,
    KERNEL_BUDGETS as BUDGETS,
    MLP_ACTIVATIONS as ACTIVATIONS,
    SPA_KINDS as SPA_ATTENTIONS,
    AttentionKind,
    KernelBudget,
    MlpActivation,
)

ResidualBlock = Literal["preln", "postln"]
"""Blocks with a skip connection: "preln" x + f(norm x), "postln" norm(x + f x)."""
SkiplessBlock = Literal["skipless_ln", "vanilla"]
"""Blocks without one: "skipless_ln" f(norm x), "vanilla" f x (no skips, no normalisation)."""
NormFreeResidualBlock = Literal["nf_residual"]
"""The norm-free residual block: "nf_residual" a·x + b·f x, a² + b² = 1, no normalisation (b from the kernel budget,
`theory.residual_branch_weight`; init "sigprop" under "auto"). Not counted in `has_skips` (the GPT-2-init rule)."""
Block = Literal[ResidualBlock, SkiplessBlock, NormFreeResidualBlock]
"""How a block wires its sub-blocks f (nested Literals flatten: `get_args(Block)` lists every block)."""
Norm = Literal["layernorm", "rmsnorm"]
Init = Literal["auto", "gpt2", "fan_in", "sigprop"]
"""The initialisation scheme; "auto" is resolved by `ModelConfig.resolved_init` (and written resolved)."""
Position = Literal["none", "rope", "learned"]
ComputeDtype = Literal["float32", "bfloat16"]

BLOCKS: tuple[str, ...] = get_args(Block)
RESIDUAL_BLOCKS: tuple[str, ...] = get_args(ResidualBlock)
NORMS: tuple[str, ...] = get_args(Norm)
INITS: tuple[str, ...] = get_args(Init)
POSITIONS: tuple[str, ...] = get_args(Position)
COMPUTE_DTYPES: tuple[str, ...] = get_args(ComputeDtype)
# scan_unroll="auto" (0) unrolls every layer up to this depth and rolls the loop above it.
AUTO_UNROLL_MAX_DEPTH = 16
# Fields that change how the model is computed, not what: a resumed run may change them, and config.json keeps
# them as given ("auto" / 0 are resolved where the step is built, per machine). "format_version" (not a field:
# `to_dict` adds it) says how checkpoints store the model; `check_checkpoint_format` rules on it instead.
EXECUTION_FIELDS = ("attention_impl", "remat", "scan_unroll", "format_version")
# What `to_dict` writes as "format_version" (config.json records it next to every checkpoint). Version 1 (no
# field) stored each SPA layer's bias and row scale as `[L, T, T]` / `[L, T]` arrays in the parameters;
# version 2 keeps only the schedule numbers (a static field) and generates both where attention runs; version 3
# has the same parameters, and the trainer's optimiser state lost the (empty) stage that froze those SPA arrays.
MODEL_FORMAT_VERSION = 3
# Why each older format cannot be restored by this code (one line each, for `check_checkpoint_format`).
_OLD_FORMATS = {
    1: "SPA bias stored as [L, T, T] parameters, and every model's trees holding those fields",
    2: "its optimiser state holds the stage that froze stored SPA arrays, which no model has since format 2",
}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shape and variant of a decoder-only transformer (each field's text is its `--help`).

    Values whose meaning comes from a default elsewhere (`mlp_width` None, `init` "auto", `tat_eta`,
    `gamma_final`, `rho_final` None) are written out by `resolved()`, which `to_dict()` (config.json) uses,
    so a saved run keeps its meaning when a default changes.
    """

    vocab_size: int = 256
    """vocabulary size V (the trainer sets it to its tokenizer's)"""
    width: int = 64
    """model width D"""
    depth: int = 4
    """number of blocks L"""
    heads: int = 4
    """attention heads H (must divide width)"""
    mlp_width: int | None = None
    """MLP hidden width F (None: 4·width)"""
    seq_len: int = 128
    """training length T: learned position embeddings exist up to it and the "joint" budget is solved at it;
    SPA attention itself is generated at whatever length a batch has"""
    block: Block = "vanilla"
    """preln: x + f(norm x); postln: norm(x + f x); skipless_ln: f(norm x); vanilla: f x (no skips, no norm)"""
    norm: Norm = "layernorm"
    """normalisation of the blocks that have one (ignored by vanilla)"""
    attention: AttentionKind = "espa"
    """standard: softmax(QKᵀ/√d); value_skipinit: (αI + βA)V, α=1, β=0 at init; uspa / espa: fixed SPA bias
    B_l and row rescaling d_l from sigprop"""
    causal: bool = True
    """decoder (true) or encoder (false) attention; non-causal E-SPA is refused (no closed form)"""
    mlp_activation: MlpActivation = "tat_leaky_relu"
    """MLP nonlinearity (tat_leaky_relu: slope sigprop.tat_slope(depth, tat_eta))"""
    use_mlp: bool = True
    """false drops the MLP sub-blocks (attention-only stacks, for signal-propagation checks)"""
    init: Init = "auto"
    """gpt2: N(0, 0.02), residual projections / √(2L); fan_in: N(0, 1/fan_in); sigprop: W_Q = 0, orthogonal
    W_V/W_O, scaled-orthogonal MLP, zero biases; auto: gpt2 with skips, fan_in for skipless standard
    attention, sigprop for the three methods"""
    tat_eta: float | None = None
    """TAT η = C_f(0) in (0, 1) (None: sigprop.DEFAULT_ETA, capped at 90% of what ReLU reaches at this depth)"""
    gamma_final: float | None = None
    """E-SPA γ_L > 0 (None: sigprop.DEFAULT_GAMMA_FINAL)"""
    rho_final: float | None = None
    """U-SPA ρ_L in (0, 1) (None: sigprop.DEFAULT_RHO_FINAL)"""
    kernel_budget: KernelBudget = "attention"
    """attention: SPA targets as specified, MLP C-maps on top; joint: attention targets chosen so attention
    followed by the MLP C-map reaches the intended kernel path"""
    position: Position = "none"
    """none, rope (on Q and K only, neutral at init) or learned (additive embedding)"""
    value_skipinit_per_head: bool = False
    """one Value-SkipInit (α, β) per head instead of per layer"""
    wk_init_scale: float = 1.0
    """std of W_K is wk_init_scale/√D under sigprop init"""
    attention_impl: AttentionImpl = "auto"
    """xla: materialised, hand-written backward; pallas: the fused kernel; auto: Pallas on a GPU/TPU whose
    compiled kernels are verified, else XLA (how, not what: may change on resume)"""
    compute_dtype: ComputeDtype = "float32"
    """activations' dtype (parameters stay float32; softmax and loss in float32)"""
    remat: bool = False
    """recompute each block's activations in the backward pass (jax.checkpoint): memory for compute"""
    scan_unroll: int = 0
    """layers per iteration of the scan over blocks; 0 = auto: every layer unrolled up to 16 layers, a rolled
    loop above (compile time flat in depth; unrolled steps 15-35% faster on a 2-core CPU; same numbers)"""

    def __post_init__(self):
        if self.mlp_width is None:
            object.__setattr__(self, "mlp_width", 4 * self.width)
        _validate(self)

    # ----- derived values -------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def resolved_init(self) -> str:
        """The init scheme actually used ("auto" resolved)."""
        if self.init != "auto":
            return self.init
        if self.has_skips:
            return "gpt2"
        if self.attention == "standard" and self.block != "nf_residual":
            return "fan_in"
        return "sigprop"

    @property
    def resolved_scan_unroll(self) -> int:
        """Layers per scan iteration actually used (`scan_unroll` with 0 = "auto" resolved, capped at depth)."""
        if self.scan_unroll == 0:
            return self.depth if self.depth <= AUTO_UNROLL_MAX_DEPTH else 1
        return min(self.scan_unroll, self.depth)

    @property
    def has_skips(self) -> bool:
        """Whether the blocks have a skip connection (`ResidualBlock`)."""
        return self.block in RESIDUAL_BLOCKS

    @property
    def is_spa(self) -> bool:
        return self.attention in SPA_ATTENTIONS

    def resolved_knobs(self) -> dict[str, float]:
        """η, γ_L, ρ_L with `None` replaced by sigprop's defaults."""
        import sigprop

        eta = self.tat_eta
        if eta is None:
            # sigprop's default, capped for shallow nets at 90% of what ReLU (α = 0) reaches at this depth
            relu_reach = float(sigprop.composed_cmap(0.0, 0.0, self.depth))
            eta = min(sigprop.DEFAULT_ETA, 0.9 * relu_reach)
        return dict(
            tat_eta=float(eta),
            gamma_final=float(sigprop.DEFAULT_GAMMA_FINAL if self.gamma_final is None else self.gamma_final),
            rho_final=float(sigprop.DEFAULT_RHO_FINAL if self.rho_final is None else self.rho_final),
        )

    def resolved(self) -> "ModelConfig":
        """This config with every value whose meaning lives in a default elsewhere written out: `init` ("auto"),
        `tat_eta`, `gamma_final`, `rho_final` (None). The same model; `mlp_width` is resolved at construction.
        `attention_impl` and `scan_unroll` (`EXECUTION_FIELDS`) stay as given: they choose how, per machine."""
        return dataclasses.replace(self, init=self.resolved_init, **self.resolved_knobs())

    @property
    def unresolved_fields(self) -> tuple[str, ...]:
        """The fields `resolved()` would write out (empty for a resolved config)."""
        done = self.resolved()
        return tuple(f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(done, f.name))

    # ----- (de)serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The resolved fields (`resolved()`), plus "format_version" (`MODEL_FORMAT_VERSION`) for whoever restores
        its checkpoints."""
        return {**dataclasses.asdict(self.resolved()), "format_version": MODEL_FORMAT_VERSION}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """The config a dict describes; "format_version" is read by `check_checkpoint_format`, not kept."""
        d = {k: v for k, v in d.items() if k != "format_version"}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"ModelConfig: unknown field(s) {unknown}; valid fields are {sorted(names)}")
        return cls(**d)

    def replace(self, **kw: Any) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(kw) - names)
        if unknown:
            raise ValueError(f"ModelConfig.replace: unknown field(s) {unknown}; valid fields are {sorted(names)}")
        if "width" in kw and "mlp_width" not in kw and self.mlp_width == 4 * self.width:
            kw["mlp_width"] = None  # keep the 4·D default tied to the new width
        return dataclasses.replace(self, **kw)


def _choice(cfg: ModelConfig, name: str, options: tuple[str, ...]) -> None:
    value = getattr(cfg, name)
    if value not in options:
        raise ValueError(f"ModelConfig.{name}={value!r} is not valid; choose one of {list(options)}")


def _positive(cfg: ModelConfig, name: str) -> None:
    value = getattr(cfg, name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"ModelConfig.{name}={value!r} must be a positive integer")


def _validate(cfg: ModelConfig) -> None:
    for name in ("vocab_size", "width", "depth", "heads", "mlp_width", "seq_len"):
        _positive(cfg, name)
    if not isinstance(cfg.scan_unroll, int) or isinstance(cfg.scan_unroll, bool) or cfg.scan_unroll < 0:
        raise ValueError(f"ModelConfig.scan_unroll={cfg.scan_unroll!r} must be an integer >= 0 (0 = auto)")
    _choice(cfg, "block", BLOCKS)
    _choice(cfg, "norm", NORMS)
    _choice(cfg, "attention", ATTENTIONS)
    _choice(cfg, "mlp_activation", ACTIVATIONS)
    _choice(cfg, "init", INITS)
    _choice(cfg, "kernel_budget", BUDGETS)
    _choice(cfg, "position", POSITIONS)
    _choice(cfg, "attention_impl", ATTENTION_IMPLS)
    _choice(cfg, "compute_dtype", COMPUTE_DTYPES)
    if cfg.width % cfg.heads:
        raise ValueError(
            f"ModelConfig: width={cfg.width} is not divisible by heads={cfg.heads}; pick heads dividing width"
        )
    if cfg.position == "rope" and cfg.head_dim % 2:
        raise ValueError(f"ModelConfig: rope needs an even head_dim, got {cfg.head_dim}; change width or heads")
    if cfg.tat_eta is not None and not 0.0 < cfg.tat_eta < 1.0:
        raise ValueError(f"ModelConfig.tat_eta={cfg.tat_eta} must lie in (0, 1)")
    if cfg.gamma_final is not None and not cfg.gamma_final > 0.0:
        raise ValueError(f"ModelConfig.gamma_final={cfg.gamma_final} must be > 0")
    if cfg.rho_final is not None and not 0.0 < cfg.rho_final < 1.0:
        raise ValueError(f"ModelConfig.rho_final={cfg.rho_final} must lie in (0, 1)")
    if cfg.wk_init_scale < 0:
        raise ValueError(f"ModelConfig.wk_init_scale={cfg.wk_init_scale} must be >= 0")
    if cfg.attention == "espa" and not cfg.causal:
        raise ValueError(
            "ModelConfig: non-causal E-SPA has no closed form (the symmetric square root of its kernel is not "
            "generated); use causal=True, or attention='uspa' for an encoder"
        )
    if cfg.kernel_budget == "joint" and cfg.is_spa and not cfg.use_mlp:
        raise ValueError("ModelConfig: kernel_budget='joint' needs MLP blocks; use kernel_budget='attention'")
    if cfg.kernel_budget == "joint" and cfg.is_spa and cfg.mlp_activation != "tat_leaky_relu":
        raise ValueError(
            "ModelConfig: kernel_budget='joint' is defined for mlp_activation='tat_leaky_relu' only; "
            "set mlp_activation='tat_leaky_relu' or kernel_budget='attention'"
        )


def model_format_version(model_dict: dict[str, Any]) -> int:
    """The format version a saved `ModelConfig.to_dict()` records (1 when it has none: written before versions)."""
    version = model_dict.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"model format_version={version!r} is not a positive integer; the run's config.json is damaged")
    return version


def check_checkpoint_format(model_dict: dict[str, Any]) -> None:
    """Raise a one-line ValueError when checkpoints saved with this model config cannot be restored by this code.

    Call it on the "model" entry of a run's config.json before restoring its checkpoints. Format 1 (no
    "format_version") is refused for every variant: SPA models stored their `[L, T, T]` bias and `[L, T]` scale as
    parameters, and every model's parameter and optimiser trees had those attention fields (`None` without SPA),
    so no format-1 tree matches a later model. Format 2 is refused too: the trainer's optimiser state then had one
    more (empty) stage, so its checkpoints do not restore onto this code's state.
    """
    version = model_format_version(model_dict)
    if version > MODEL_FORMAT_VERSION:
        raise ValueError(
            f"checkpoint written with model format {version}, newer than this code's format {MODEL_FORMAT_VERSION}; "
            "update skipless to restore it"
        )
    if version < MODEL_FORMAT_VERSION:
        raise ValueError(
            f"checkpoint written with model format {version} ({_OLD_FORMATS[version]}); this code reads format "
            f"{MODEL_FORMAT_VERSION} (SPA bias generated, not stored; every array leaf a parameter): retrain the run, "
            f"or restore it with a skipless checkout from before model format {version + 1}"
        )
