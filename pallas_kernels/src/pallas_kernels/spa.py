"""SPA attention generated from two schedule numbers per layer, in JAX: the one implementation of the closed forms.

Layer l's attention at initialisation is A_l = L_l L_{l−1}⁻¹ (Cholesky factors of the target kernels), realised
as diag(d_l) · softmax(B_l) with B_l = log A_l. Both are closed-form functions of the query / key positions and
of the layer's pair of schedule numbers; `sigprop` (`sigprop.espa`, `sigprop.uspa`) derives them in float64 and is
the oracle this module is tested against. Everything here may be traced (the numbers arrive per layer inside
`jax.lax.scan`), nothing depends on a stored sequence length, and the same pieces serve the XLA path (which builds
one layer's `[T, T]` bias transiently) and the Pallas kernels (which build each tile's bias in-kernel).

A layer is a `SpaSpec`: its kind, its `level` (γ_l or ρ_l) and its `step` from the previous layer
(γ_{l−1} − γ_l, `inf` for layer 1; ρ_l − ρ_{l−1}). Keeping the step itself, not two nearby levels, keeps every
coefficient accurate to float32 rounding even where consecutive levels agree in their first digits.

Per call a layer becomes `tables`:
- E-SPA (causal only): `[8]` coefficients; the bias is log-linear in i − j, like ALiBi (`espa_coefficients`).
- U-SPA: `[4, T]` rows `col`, `row`, `log_diag`, `scale`: A[i, j] = col_j + row_i below the diagonal,
  exp(log_diag_i) on it (non-causal: every off-diagonal entry equals col_j, row_i = 0), row sums `scale`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from sigprop.kinds import SPA_KINDS

from pallas_kernels.reference import MASK_VALUE  # noqa: F401  (also the masked bias value here; tiles import it)

# E-SPA coefficient vector: index of each scalar.
LOG_DIAG, LOG_OFFDIAG, LOG_FIRST_COL, GAMMA, DIAG, GEOMETRIC, FIRST_COL, _UNUSED = range(8)
NUM_COEFFICIENTS = 8
# U-SPA tables: row of each vector.
COL, ROW, USPA_LOG_DIAG, SCALE = range(4)
NUM_USPA_VECTORS = 4


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SpaSpec:
    """One SPA layer: `kind` ("espa" | "uspa", static), `level` (γ_l or ρ_l) and `step` (γ_{l−1} − γ_l, `inf`
    for layer 1; ρ_l − ρ_{l−1}). `level` and `step` are scalars (Python floats or, traced, float32 arrays)."""

    level: Array | float
    step: Array | float
    kind: str = dataclasses.field(metadata=dict(static=True), default="espa")

    def __post_init__(self):
        if self.kind not in SPA_KINDS:
            raise ValueError(f"unknown SPA kind {self.kind!r}: use one of {SPA_KINDS}")

    @classmethod
    def from_levels(cls, kind: str, prev, level) -> "SpaSpec":
        """From the two levels (γ_{l−1}, γ_l) or (ρ_{l−1}, ρ_l). Concrete numbers are differenced in float64."""
        step = (prev - level) if kind == "espa" else (level - prev)
        if isinstance(prev, (int, float)) and isinstance(level, (int, float)):
            _check_levels(kind, float(prev), float(level))
        return cls(level=level, step=step, kind=kind)


def _check_levels(kind: str, prev: float, level: float) -> None:
    if kind == "espa" and not (0.0 < level < prev and level != float("inf")):
        raise ValueError(
            f"E-SPA needs 0 < γ_l < γ_(l-1) (γ_0 = inf), got ({prev}, {level}); use a decreasing schedule such as "
            "sigprop.espa_gammas"
        )
    if kind == "uspa" and not (0.0 <= prev < level < 1.0):
        raise ValueError(f"U-SPA needs 0 <= ρ_(l-1) < ρ_l < 1, got ({prev}, {level}); use sigprop.uspa_rhos")


def _f32(x) -> Array:
    return jnp.asarray(x, jnp.float32)


# ----- E-SPA ------------------------------------------------------------------------------------------------
def espa_coefficients_from_step(gamma: Array | float, step: Array | float) -> Float[Array, "8"]:
    """The scalars of one E-SPA layer from γ_l and γ_{l−1} − γ_l (inf for layer 1), as float32 (traceable).

    With a = e^{−γ_l}, a' = e^{−γ_{l−1}}, s = √(1 − a²), s' = √(1 − a'²), r = s / s':
    A[0, 0] = 1, A[i, i] = r, A[i, j] = r (a − a') a^{i−j−1} (1 ≤ j < i), A[i, 0] = a^{i−1} (a − a' r).

    **Returns:** `[8]`: log r, log(r (a − a')), log(a − a' r), γ, r, r (a − a') / (1 − a), a − a' r, 0.
    """
    g, d = _f32(gamma), _f32(step)
    gp = g + d
    log_r = 0.5 * (jnp.log(-jnp.expm1(-2.0 * g)) - jnp.log(-jnp.expm1(-2.0 * gp)))  # log s − log s' (s' = 1 at inf)
    r = jnp.exp(log_r)
    gap_fraction = -jnp.expm1(-d)  # 1 − a'/a
    log_gap = -g + jnp.log(gap_fraction)  # log(a − a')
    a, a_prev = jnp.exp(-g), jnp.exp(-gp)
    first_col = a * gap_fraction + a_prev * -jnp.expm1(log_r)  # (a − a') + a'(1 − r): both terms ≥ 0
    geometric = r * jnp.exp(log_gap) / -jnp.expm1(-g)
    return jnp.stack(
        [log_r, log_r + log_gap, jnp.log(first_col), g, r, geometric, first_col, jnp.zeros_like(g)]
    ).astype(jnp.float32)


def espa_coefficients(gamma_prev: Array | float, gamma: Array | float) -> Float[Array, "8"]:
    """`espa_coefficients_from_step` from the two levels (γ_{l−1} = inf for layer 1)."""
    spec = SpaSpec.from_levels("espa", gamma_prev, gamma)
    return espa_coefficients_from_step(spec.level, spec.step)


def espa_bias_from_positions(coeffs: Float[Array, "8"], i: Array, j: Array) -> Float[Array, "..."]:
    """log A[i, j] for j ≤ i (values above the diagonal are meaningless; mask them).

    **Arguments:** `coeffs` from `espa_coefficients`; `i`, `j` integer position arrays that broadcast together.

    **Returns:** float32 array of the broadcast shape of `i` and `j`.
    """
    gamma = coeffs[GAMMA]
    fi = i.astype(jnp.float32)
    fj = j.astype(jnp.float32)
    off = coeffs[LOG_OFFDIAG] - gamma * (fi - fj - 1.0)
    col0 = coeffs[LOG_FIRST_COL] - gamma * (fi - 1.0)
    bias = jnp.where(j == 0, col0, off)
    return jnp.where(i == j, jnp.where(i == 0, 0.0, coeffs[LOG_DIAG]), bias)


def espa_scale_from_positions(coeffs: Float[Array, "8"], i: Array) -> Float[Array, "..."]:
    """Row sums d[i] = Σ_j A[i, j]: 1 for i = 0, else r + r(a − a')(1 − a^{i−1})/(1 − a) + a^{i−1}(a − a' r).

    **Returns:** float32 array shaped like `i`.
    """
    steps = jnp.maximum(i.astype(jnp.float32) - 1.0, 0.0) * coeffs[GAMMA]
    power = jnp.exp(-steps)  # a^{i−1}
    scale = coeffs[DIAG] + coeffs[GEOMETRIC] * -jnp.expm1(-steps) + power * coeffs[FIRST_COL]
    return jnp.where(i == 0, 1.0, scale)


# ----- U-SPA ------------------------------------------------------------------------------------------------
def uspa_tables(rho: Array | float, step: Array | float, seq_len: int, *, causal: bool = True) -> Float[Array, "4 T"]:
    """The O(T) vectors of one U-SPA layer (see `sigprop.uspa` for the derivation), float32, traceable.

    **Arguments:** `rho` ρ_l; `step` ρ_l − ρ_{l−1}; `seq_len` T (static); `causal`.

    **Returns:** `[4, T]`: `col`, `row`, `log_diag`, `scale` (indices `COL`, `ROW`, `USPA_LOG_DIAG`, `SCALE`).
    """
    rho, gap = _f32(rho), _f32(step)
    rho_prev = rho - gap
    c = jnp.sqrt((1.0 - rho) / (1.0 - rho_prev))
    if not causal:
        t = float(seq_len)
        s = jnp.sqrt((1.0 + (t - 1.0) * rho) / (1.0 + (t - 1.0) * rho_prev))
        off = jnp.full((seq_len,), (s - c) / t)
        return jnp.stack([off, jnp.zeros_like(off), jnp.log(c + off), jnp.full_like(off, s)])
    k = jnp.arange(seq_len, dtype=jnp.float32)
    u = lambda x, r: 1.0 + x * r  # noqa: E731
    uk, um, up = u(k, rho), u(k - 1.0, rho), u(k + 1.0, rho)
    vk, vm, vp = u(k, rho_prev), u(k - 1.0, rho_prev), u(k + 1.0, rho_prev)
    log_diag = jnp.log(c) + 0.5 * (jnp.log(uk) - jnp.log(um) + jnp.log(vm) - jnp.log(vk))
    base = 2.0 * c * gap / jnp.sqrt(uk * vk)
    p = rho * base / (um * up * (jnp.sqrt(vm / um) + jnp.sqrt(vp / up)))
    q = rho_prev * base / (vm * vp * (jnp.sqrt(up / vp) + jnp.sqrt(um / vm)))
    last = seq_len - 1
    if last == 0:
        zero = jnp.zeros((1,), jnp.float32)
        return jnp.stack([zero, zero, log_diag, jnp.exp(log_diag)])
    n = float(last)  # A[N, N−1] for the last row N, in the form without cancellation
    sub = c * gap * (rho * u(n - 1.0, rho_prev) + rho_prev * u(n - 1.0, rho)) / (
        jnp.sqrt(u(n - 1.0, rho) * u(n - 1.0, rho_prev)) * u(n - 2.0, rho) * u(n, rho_prev)
        * (rho * jnp.sqrt(u(n - 2.0, rho_prev) / u(n - 2.0, rho)) + rho_prev * jnp.sqrt(u(n, rho) / u(n, rho_prev)))
    )
    keep_p = k <= n - 2.0  # col_j = sub + Σ_{k=j}^{N−2} p_k (j ≤ N − 1)
    col = jax.lax.cumsum(jnp.where(keep_p, p, 0.0), reverse=True) + sub
    col = jnp.where(k <= n - 1.0, col, 0.0)
    row = jax.lax.cumsum(jnp.where(k <= n - 1.0, q, 0.0), reverse=True)  # Σ_{k=i}^{N−1} q_k
    before = jax.lax.cumsum(col) - col  # Σ_{j<i} col_j
    scale = jnp.exp(log_diag) + before + k * row
    return jnp.stack([col, row, log_diag, scale])


def uspa_bias_from_vectors(col_j: Array, row_i: Array, log_diag_i: Array, i: Array, j: Array) -> Array:
    """log A[i, j] from the U-SPA vectors at the given positions (all broadcast together). **Returns:** float32."""
    return jnp.where(i == j, log_diag_i, jnp.log(col_j + row_i))


def uspa_row(rho: Array | float, step: Array | float, position: Array, num_keys: int) -> tuple[Array, Array]:
    """Causal U-SPA row `position` of log A_l against keys `0 … num_keys − 1`, and its row scale d_l[position].

    Row n of a causal A_l = L_l L_{l−1}⁻¹ depends only on positions ≤ n (leading blocks of Cholesky factors are the
    Cholesky factors of leading blocks), so it is `uspa_tables` at length n + 1, read at its last row, where
    A[n, j] = col_j (j < n) and `row` vanishes: col_j = A[n, n−1] + Σ_{k=j}^{n−2} p_k. Here n may be traced.

    **Arguments:** `rho` ρ_l; `step` ρ_l − ρ_{l−1}; `position` n, an integer array of any shape `[...]`; `num_keys`
    S (static).

    **Returns:** `(log_bias [..., S], scale [...])`, float32; `MASK_VALUE` right of the diagonal (j > n).
    """
    rho, gap = _f32(rho), _f32(step)
    rho_prev = rho - gap
    c = jnp.sqrt((1.0 - rho) / (1.0 - rho_prev))
    u = lambda x, r: 1.0 + x * r  # noqa: E731
    n = jnp.asarray(position).astype(jnp.float32)[..., None]  # [..., 1]
    k = jnp.arange(num_keys, dtype=jnp.float32)  # [S]
    uk, um, up = u(k, rho), u(k - 1.0, rho), u(k + 1.0, rho)
    vk, vm, vp = u(k, rho_prev), u(k - 1.0, rho_prev), u(k + 1.0, rho_prev)
    p = rho * (2.0 * c * gap / jnp.sqrt(uk * vk)) / (um * up * (jnp.sqrt(vm / um) + jnp.sqrt(vp / up)))
    log_diag = jnp.log(c) + 0.5 * (jnp.log(u(n, rho)) - jnp.log(u(n - 1.0, rho)) + jnp.log(u(n - 1.0, rho_prev))
                                   - jnp.log(u(n, rho_prev)))
    m = jnp.maximum(n, 1.0)  # A[n, n−1] (as in `uspa_tables`); row 0 has no such entry
    sub = c * gap * (rho * u(m - 1.0, rho_prev) + rho_prev * u(m - 1.0, rho)) / (
        jnp.sqrt(u(m - 1.0, rho) * u(m - 1.0, rho_prev)) * u(m - 2.0, rho) * u(m, rho_prev)
        * (rho * jnp.sqrt(u(m - 2.0, rho_prev) / u(m - 2.0, rho)) + rho_prev * jnp.sqrt(u(m, rho) / u(m, rho_prev)))
    )
    terms = jnp.where(k <= n - 2.0, p, 0.0)
    tail = jax.lax.cumsum(terms, axis=terms.ndim - 1, reverse=True)  # Σ_{k=j}^{n−2} p_k
    col = jnp.where(k < n, sub + tail, 0.0)
    scale = jnp.exp(log_diag[..., 0]) + jnp.sum(col, axis=-1)
    bias = jnp.where(k == n, log_diag, jnp.log(jnp.where(k < n, col, 1.0)))
    return jnp.where(k <= n, bias, MASK_VALUE), scale


# ----- any kind ---------------------------------------------------------------------------------------------
def spa_tables(spec: SpaSpec, seq_len: int, *, causal: bool = True) -> Array:
    """What a kernel needs for one layer: E-SPA `[8]` coefficients, U-SPA `[4, T]` vectors."""
    _check_seq_len(seq_len)
    if spec.kind == "espa":
        if not causal:
            raise ValueError(
                "non-causal E-SPA has no closed form (its symmetric square root is not generated); use causal=True "
                "or U-SPA"
            )
        return espa_coefficients_from_step(spec.level, spec.step)
    return uspa_tables(spec.level, spec.step, seq_len, causal=causal)


def spa_bias_from_tables(kind: str, tables: Array, i: Array, j: Array) -> Array:
    """log A[i, j] at integer positions `i` `[..., 1]`-like and `j` `[1, ...]`-like (below / on the diagonal, or
    everywhere for non-causal U-SPA). **Returns:** float32 of the broadcast shape."""
    if kind == "espa":
        return espa_bias_from_positions(tables, i, j)
    return uspa_bias_from_vectors(tables[COL][j], tables[ROW][i], tables[USPA_LOG_DIAG][i], i, j)


def spa_row(spec: SpaSpec, position: Array, num_keys: int) -> tuple[Array, Array]:
    """One query row of causal SPA attention, generated from the layer's two numbers (for decoding with a cache).

    **Arguments:** `spec`; `position` i, an integer array of any shape `[...]` (may be traced); `num_keys` S (static,
    e.g. a key/value cache's length; positions ≥ S are not represented).

    **Returns:** `(log_bias [..., S], scale [...])` float32: row i of `spa_log_bias` (log A_l[i, j] for j ≤ i,
    `MASK_VALUE` for j > i) and d_l[i] of `spa_row_scale`, at any length ≥ i + 1 (causal rows do not depend on it).
    """
    position = jnp.asarray(position)
    if spec.kind == "espa":
        coeffs = espa_coefficients_from_step(spec.level, spec.step)
        i, j = position[..., None], jnp.arange(num_keys)
        bias = jnp.where(j <= i, espa_bias_from_positions(coeffs, i, j), MASK_VALUE)
        return bias, espa_scale_from_positions(coeffs, position)
    return uspa_row(spec.level, spec.step, position, num_keys)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SpaTables:
    """One layer's generated-bias inputs at one length, prepared once (`spa_prepare`): `tables` (E-SPA `[8]`
    coefficients, U-SPA `[4, T]` vectors) and the row scale `scale` `[T]`; static `kind` and `causal`. A stack of
    layers' (leading axis L, O(L·T)) can be prepared in one vectorised computation and scanned over."""

    tables: Array
    scale: Array
    kind: str = dataclasses.field(metadata=dict(static=True), default="espa")
    causal: bool = dataclasses.field(metadata=dict(static=True), default=True)

    @property
    def seq_len(self) -> int:
        return self.scale.shape[-1]


def spa_prepare(spec: SpaSpec, seq_len: int, *, causal: bool = True) -> SpaTables:
    """`spec`'s tables and row scale at `seq_len` (no gradient flows through them). Vectorises over stacked specs
    with `jax.vmap`."""
    tables = jax.lax.stop_gradient(spa_tables(spec, seq_len, causal=causal))
    if spec.kind == "espa":
        scale = espa_scale_from_positions(tables, jnp.arange(seq_len))
    else:
        scale = tables[SCALE]
    return SpaTables(tables=tables, scale=scale, kind=spec.kind, causal=causal)


def as_prepared(spa: SpaSpec | SpaTables, seq_len: int, causal: bool) -> SpaTables:
    """`spa` prepared at `seq_len`; a `SpaTables` is checked against the call's length and causality."""
    if isinstance(spa, SpaSpec):
        return spa_prepare(spa, seq_len, causal=causal)
    if not isinstance(spa, SpaTables):
        raise TypeError(f"spa must be a SpaSpec or SpaTables, got {type(spa).__name__}")
    if spa.seq_len != seq_len or spa.causal != causal or spa.scale.ndim != 1:
        raise ValueError(
            f"SpaTables prepared for T={spa.seq_len}, causal={spa.causal} (scale shape {spa.scale.shape}) used for one "
            f"layer at T={seq_len}, causal={causal}; prepare them for this call (spa_prepare)"
        )
    return spa


def prepared_log_bias(prepared: SpaTables) -> Float[Array, "T T"]:
    """log A_l from prepared tables, `MASK_VALUE` strictly above the diagonal when causal. **Returns:** `[T, T]`."""
    t = prepared.seq_len
    i = jnp.arange(t)[:, None]
    j = jnp.arange(t)[None, :]
    bias = spa_bias_from_tables(prepared.kind, prepared.tables, i, j)
    return jnp.where(j <= i, bias, MASK_VALUE) if prepared.causal else bias


def spa_log_bias(spec: SpaSpec, seq_len: int, *, causal: bool = True) -> Float[Array, "T T"]:
    """log A_l, with `MASK_VALUE` (−1e30) strictly above the diagonal when causal. **Returns:** `[T, T]` float32."""
    return prepared_log_bias(spa_prepare(spec, seq_len, causal=causal))


def spa_row_scale(spec: SpaSpec, seq_len: int, *, causal: bool = True) -> Float[Array, " T"]:
    """Row scale d_l[i] = Σ_j A_l[i, j]. **Returns:** `[T]` float32."""
    return spa_prepare(spec, seq_len, causal=causal).scale


def espa_log_bias(seq_len: int, gamma_prev, gamma) -> Float[Array, "T T"]:
    """E-SPA `spa_log_bias` from the two levels (γ_{l−1} = inf for layer 1). **Returns:** `[T, T]` float32."""
    return spa_log_bias(SpaSpec.from_levels("espa", gamma_prev, gamma), seq_len)


def espa_row_scale(seq_len: int, gamma_prev, gamma) -> Float[Array, " T"]:
    """E-SPA `spa_row_scale` from the two levels. **Returns:** `[T]` float32."""
    return spa_row_scale(SpaSpec.from_levels("espa", gamma_prev, gamma), seq_len)


def _check_seq_len(seq_len: int) -> None:
    if not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive int, got {seq_len!r}; pass the static sequence length")
