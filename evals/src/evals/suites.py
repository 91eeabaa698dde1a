"""Method-comparison suites as data: which runs, at which size, with which learning rates.

A suite is a named setup (a `skipless_models.PRESETS` record: model shape and run shape) plus a list of
`RunSpec`s. Learning rates are swept **at the
final horizon** (every sweep run trains for the full budget; a short sweep favours the LR that
reaches the unigram plateau fastest). Runs with `lr_from=METHOD` take the LR whose seed-0 sweep run
of METHOD ended with the lowest eval loss (second seeds, ablations); they wait for that sweep.

Methods [our choice: every skipless model uses TAT leaky-ReLU MLPs, so only attention differs]:
Pre-LN (skips + LayerNorm, GELU, GPT-2 init), skipless + LayerNorm and vanilla (no skips, no norm),
each with every attention kind (`sigprop.ATTENTION_KINDS`: standard / Value-SkipInit / U-SPA / E-SPA).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import skipless_models
from sigprop import ATTENTION_KINDS

# Method names: block prefix and attention kind (abbreviated where the kind's name is long).
_BLOCK_PREFIX = {"skipless_ln": "ln", "vanilla": "vanilla"}
_SHORT_KIND = {"value_skipinit": "vsi"}
# Model fields per method, on top of the suite's preset.
METHODS: dict[str, dict[str, Any]] = {
    "preln": dict(block="preln", attention="standard", mlp_activation="gelu"),
    **{f"{prefix}-{_SHORT_KIND.get(kind, kind)}": dict(block=block, attention=kind, mlp_activation="tat_leaky_relu")
       for block, prefix in _BLOCK_PREFIX.items() for kind in ATTENTION_KINDS},
    # the norm-free residual block with E-SPA attention (our reading of the abstract's first claim; evals.protocol_suite)
    "nf-espa": dict(block="nf_residual", attention="espa", mlp_activation="tat_leaky_relu"),
}
BASELINE = "preln"
ROLES = ("sweep", "seed", "ablation", "horizon")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run of a suite.

    **Fields:**

    - `name`: unique folder name inside the suite's `runs/`.
    - `method`: a key of `METHODS`.
    - `role`: "sweep" (LR sweep, seed 0), "seed" (another seed at the sweep's best LR), "ablation", or
      "horizon" (the method at its best LR for a longer budget, seed 0).
    - `lr`: the peak learning rate, or `None` with `lr_from`.
    - `lr_from`: take the best LR of this method's sweep (see the module docstring).
    - `seed`: initialisation and data-order seed.
    - `model`: extra `ModelConfig` fields (ablations: `tat_eta`, `gamma_final`, `kernel_budget`, ...).
    - `train`: extra `TrainConfig` fields (e.g. `lr_multipliers`).
    - `label`: short description for tables.
    """

    name: str
    method: str
    role: str
    lr: float | None = None
    lr_from: str | None = None
    seed: int = 0
    model: dict[str, Any] = dataclasses.field(default_factory=dict)
    train: dict[str, Any] = dataclasses.field(default_factory=dict)
    label: str = ""

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"run {self.name}: unknown method {self.method!r}; choose one of {sorted(METHODS)}.")
        if self.role not in ROLES:
            raise ValueError(f"run {self.name}: role {self.role!r} must be one of {list(ROLES)}.")
        if (self.lr is None) == (self.lr_from is None):
            raise ValueError(f"run {self.name}: give exactly one of lr= and lr_from=.")


@dataclasses.dataclass(frozen=True)
class Suite:
    """A named set of runs sharing a named setup (model shape and run shape) and a dataset.

    **Fields:**

    - `name`, `description`.
    - `preset`: the name of the `skipless_models.PRESETS` record every run starts from (the method and run add
      the rest), or a `skipless_models.Preset` record of its own (test suites; their runs have no
      `train.main` command).
    - `runs`: the `RunSpec`s, in execution order (sweeps first).
    - `train_file`, `eval_file`: file names inside a `--data` folder ("" = use `--data` itself).
    - `tokenizer`: tokenizer spec (`None` = the data package's default).
    - `runnable_here`: False for accelerator-scale suites (`--dry-run` only unless forced).
    """

    name: str
    description: str
    preset: str | skipless_models.Preset
    runs: tuple[RunSpec, ...]
    train_file: str = ""
    eval_file: str = ""
    tokenizer: str | None = None
    runnable_here: bool = True

    def __post_init__(self):
        if not isinstance(self.preset, skipless_models.Preset):
            skipless_models.get_preset(self.preset)  # an unknown preset is an error
        names = [r.name for r in self.runs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"suite {self.name}: duplicate run names {duplicates}.")
        swept = {r.method for r in self.runs if r.role == "sweep"}
        for run in self.runs:
            if run.lr_from is not None and run.lr_from not in swept:
                raise ValueError(f"suite {self.name}: run {run.name} takes its LR from {run.lr_from!r}, which has no sweep.")
        if BASELINE not in swept:
            raise ValueError(f"suite {self.name}: the {BASELINE} baseline needs at least one sweep run.")

    @property
    def record(self) -> skipless_models.Preset:
        """The preset record: `.model` (the base `ModelConfig`) and `.run` (the run shape)."""
        return self.preset if isinstance(self.preset, skipless_models.Preset) else skipless_models.get_preset(self.preset)

    @property
    def preset_name(self) -> str:
        """The preset's name (saved in each run's config), or "suite:NAME" for a suite with a record of its own."""
        return self.preset if isinstance(self.preset, str) else f"suite:{self.name}"

    def run(self, name: str) -> RunSpec:
        for run in self.runs:
            if run.name == name:
                return run
        raise ValueError(f"suite {self.name} has no run {name!r}; see --dry-run for the list.")


def _lr_name(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-")


def comparison_runs(lrs: dict[str, tuple[float, ...]], *, second_seed: tuple[str, ...]) -> list[RunSpec]:
    """Sweep runs (seed 0, each LR, full horizon) for every method, then second seeds at the best LR.

    **Arguments:** `lrs`: LR grid per method; `second_seed`: methods that get a seed-1 run.

    **Returns:** the `RunSpec`s.
    """
    runs = [RunSpec(f"{m}-lr{_lr_name(lr)}", m, "sweep", lr=lr, label=f"{m} lr={lr:g}")
            for m, grid in lrs.items() for lr in grid]
    runs += [RunSpec(f"{m}-best-s1", m, "seed", lr_from=m, seed=1, label=f"{m} best lr, seed 1") for m in second_seed]
    return runs


def ablation_runs(only: tuple[str, ...] | None = None, *, eta_high: float = 0.9) -> list[RunSpec]:
    """Signal-propagation ablations at the best LR of their method's sweep (seed 0).

    **Returns:** TAT η, E-SPA γ_L, the paper-default pair (η = 0.9, γ_L = 0.005), U-SPA ρ_L, the joint
    kernel budget (E-SPA and U-SPA), and Value-SkipInit's gain LR multiplier (1 = no separate gain LR; default 30); `only`
    keeps the runs with these names; `eta_high` replaces TAT's 0.9 for nets too shallow to reach it.
    """
    espa, vsi = "vanilla-espa", "vanilla-vsi"
    runs = [
        RunSpec(f"abl-espa-eta{eta_high:g}", espa, "ablation", lr_from=espa, model=dict(tat_eta=eta_high),
                label=f"E-SPA η={eta_high:g}"),
        RunSpec("abl-espa-eta0.3", espa, "ablation", lr_from=espa, model=dict(tat_eta=0.3), label="E-SPA η=0.3"),
        RunSpec("abl-espa-gamma0.005", espa, "ablation", lr_from=espa, model=dict(gamma_final=0.005),
                label="E-SPA γ_L=0.005"),
        RunSpec("abl-espa-tat-default", espa, "ablation", lr_from=espa, model=dict(tat_eta=0.9, gamma_final=0.005),
                label="E-SPA η=0.9, γ_L=0.005"),
        # The joint budget needs a final target the MLPs alone do not already exceed, so it is paired
        # with γ_L = 0.005 / ρ_L = 0.8 (compare with the attention-budget runs of the same knob).
        RunSpec("abl-espa-joint-gamma0.005", espa, "ablation", lr_from=espa,
                model=dict(kernel_budget="joint", gamma_final=0.005), label="E-SPA joint budget, γ_L=0.005"),
        RunSpec("abl-uspa-rho0.8", "vanilla-uspa", "ablation", lr_from="vanilla-uspa", model=dict(rho_final=0.8),
                label="U-SPA ρ_L=0.8"),
        RunSpec("abl-uspa-joint-rho0.8", "vanilla-uspa", "ablation", lr_from="vanilla-uspa",
                model=dict(kernel_budget="joint", rho_final=0.8), label="U-SPA joint budget, ρ_L=0.8"),
        RunSpec("abl-vsi-gainx1", vsi, "ablation", lr_from=vsi, train=dict(lr_multipliers={"gain": 1.0}),
                label="Value-SkipInit gain LR ×1"),
        RunSpec("abl-vsi-gainx100", vsi, "ablation", lr_from=vsi, train=dict(lr_multipliers={"gain": 100.0}),
                label="Value-SkipInit gain LR ×100"),
    ]
    return [r for r in runs if only is None or r.name in only]


def horizon_runs(methods: tuple[str, ...], *, factor: int, steps: int, eval_every: int) -> list[RunSpec]:
    """`methods` at their sweep's best LR for `factor` × the suite's `steps` (seed 0).

    At the suite's budget every skipless model is still above the count-bigram line, and a run that
    never reaches Pre-LN's final loss cannot say how many more steps it needs. These runs answer both:
    where the loss goes with `factor` × the steps, and at which step it reaches Pre-LN's final
    (1×-budget) eval loss, i.e. the paper's "× more iterations" without the budget cutting it short.
    The LR is the one chosen at 1× the budget [our choice: no second sweep at the longer horizon].
    """
    total = factor * steps
    return [RunSpec(f"{m}-best-x{factor}", m, "horizon", lr_from=m, train=dict(steps=total, eval_every=eval_every),
                    label=f"{m}, {factor}× budget ({total} steps)") for m in methods]


_PRELN_LRS = (3e-4, 1e-3, 3e-3, 1e-2)  # 1e-2: 3e-3 was the best of the first three (grid edge)
_SKIPLESS_LRS = (1e-4, 3e-4, 1e-3)
# Methods added after cpu-small ran (its committed records stay its whole matrix); evals.protocol_suite runs them.
_LATER_METHODS = ("nf-espa",)
_HEADLINE = (BASELINE, "ln-espa", "vanilla-espa", "vanilla-uspa", "vanilla-vsi")
# Most informative first, so a suite cut short still holds the headline comparison.
_PRIORITY = (BASELINE, "vanilla-espa", "ln-espa", "vanilla-uspa", "vanilla-vsi", "vanilla-standard", "ln-uspa",
             "ln-vsi", "ln-standard")
_FULL_GRID = {m: (_PRELN_LRS if m == BASELINE else _SKIPLESS_LRS if m in _HEADLINE
                  else (3e-4, 1e-3) if m == "vanilla-standard" else (1e-4, 3e-4))
              for m in (*_PRIORITY, *(m for m in METHODS if m not in _PRIORITY and m not in _LATER_METHODS))}
_SMOKE_GRID = {m: ((1e-3, 3e-3) if m == BASELINE else (3e-4, 1e-3) if m == "vanilla-espa" else (1e-3,)) for m in METHODS}
_SMOKE_ABLATIONS = ("abl-espa-eta0.6", "abl-espa-gamma0.005", "abl-espa-joint-gamma0.005", "abl-vsi-gainx1")
_CPU_SMALL_STEPS = skipless_models.get_preset("cpu-small").run.steps


def _cpu_small_runs() -> list[RunSpec]:
    """Sweeps in priority order, with the 4×-budget Pre-LN / vanilla E-SPA pair right after their two
    sweeps (so a suite cut short still has it), then second seeds and ablations."""
    runs = comparison_runs(_FULL_GRID, second_seed=_HEADLINE)
    first_two = sum(len(_FULL_GRID[m]) for m in _PRIORITY[:2])
    return runs[:first_two] + horizon_runs(_PRIORITY[:2], factor=4, steps=_CPU_SMALL_STEPS,
                                                   eval_every=200) + runs[first_two:] + ablation_runs()


SUITES: dict[str, Suite] = {
    "smoke": Suite(
        name="smoke",
        description=("The cpu-small matrix at a tiny size, trimmed (two LRs for Pre-LN and vanilla E-SPA, one "
                     "for the rest; second seeds and four ablations): checks the machinery, not the paper."),
        preset="smoke",
        runs=tuple(comparison_runs(_SMOKE_GRID, second_seed=(BASELINE, "vanilla-espa"))
                   + ablation_runs(_SMOKE_ABLATIONS, eta_high=0.6)),  # depth 4 cannot reach η = 0.9
        train_file="valid.txt", eval_file="test.txt", tokenizer="bpe:1024",
    ),
    "cpu-small": Suite(
        name="cpu-small",
        description=("Depth 16, width 128, T=128 on WikiText-2 (valid as training text, test as evaluation); "
                     "LRs swept at the final horizon (three for the headline methods, two for the rest), two seeds "
                     "for the headline methods, Pre-LN and vanilla E-SPA at 4x the budget, ablations."),
        preset="cpu-small",
        runs=tuple(_cpu_small_runs()),
        train_file="valid.txt", eval_file="test.txt", tokenizer="bpe:4096",
    ),
    "wt103-36l": Suite(
        name="wt103-36l",
        description=("The paper's WikiText-103 depth (36 layers), width 512, T=512: for accelerator clusters "
                     "(--data: the folder with wiki.train.tokens and wiki.valid.tokens)."),
        preset="wt103-36l",
        runs=tuple(comparison_runs({m: ((5e-4, 1e-3) if m == BASELINE else (1e-4, 3e-4)) for m in METHODS},
                                   second_seed=_HEADLINE)),
        train_file="wiki.train.tokens", eval_file="wiki.valid.tokens", tokenizer="bpe:32768", runnable_here=False,
    ),
    "c4-72l": Suite(
        name="c4-72l",
        description=("The paper's C4 depth (72 layers), width 512, T=512: for accelerator clusters "
                     "(--data hf:allenai/c4:en, or a local folder/JSON Lines of C4 text)."),
        preset="c4-72l",
        runs=tuple(comparison_runs({m: ((5e-4, 1e-3) if m == BASELINE else (5e-5, 1e-4, 3e-4)) for m in METHODS},
                                   second_seed=())),
        tokenizer="bpe:32768", runnable_here=False,
    ),
}


def get_suite(name: str) -> Suite:
    """**Returns:** the suite called `name`; raises `ValueError` naming the valid suites."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose one of {sorted(SUITES)}.")
    return SUITES[name]
