"""The claims protocol as a suite: budget-matched, fully annealed runs on the generated source.

- Data: `generated:<WikiText-2 valid.txt>` (word-level, V = 1024, never repeats, optimal loss known); the run's
  eval is the dev stream (all LR choice), the test stream is scored once per final model (`evals.protocol`).
- Claim 2 ("deep vanilla transformers reach standard performance after about 5× more iterations"): Pre-LN at N
  steps, each vanilla skipless model (E-SPA, U-SPA, Value-SkipInit, at their default kernel budgets) at k·N for
  k ∈ {1, 2, 4, 8}, each run with its own cosine schedule (warmup k·W), 3 seeds; each model's LR is chosen at
  k = 1 on dev from its own two-point grid [our choice: no re-sweep per k].
- Claim 1 (norm-free deep transformers "train at speeds matching their standard counterparts"), our reading: the
  norm-free residual block (`nf_residual`, E-SPA attention) vs Pre-LN at k = 1, 3 seeds.
- Matched joint kernel budget at depth 16 (whole-network init cosine 0.85 for every method): E-SPA with η = 0.1
  (its attention the furthest from the identity: A_ii ≈ 0.88) and η = 0.5 (A_ii ≈ 0.93), U-SPA (A_ii ≈ 0.98) and
  Value-SkipInit (η = 0.85: the MLPs alone make the budget), at vanilla E-SPA's dev-selected LR, 3 seeds.
Runs are ordered so that a suite cut short still holds the most informative comparison.
"""

from __future__ import annotations

import dataclasses

import skipless_models
from skipless_models.presets import RunShape

from .suites import RunSpec, Suite

_RUN_FIELDS = {f.name for f in dataclasses.fields(RunShape)}


def _suite(name: str, description: str, model: dict, train: dict, runs, tokenizer: str) -> Suite:
    """A suite with a preset record of its own; run fields a `RunShape` has no place for go into every run."""
    shape = RunShape(**{k: v for k, v in train.items() if k in _RUN_FIELDS})
    extra = {k: v for k, v in train.items() if k not in _RUN_FIELDS}
    record = skipless_models.Preset(model=skipless_models.ModelConfig(**model), run=shape, about=description)
    runs = tuple(dataclasses.replace(r, train={**extra, **r.train}) for r in runs)
    return Suite(name=name, description=description, preset=record, runs=runs, tokenizer=tokenizer)

N_STEPS = 150
WARMUP = 15
_MODEL = dict(depth=16, width=64, heads=4, mlp_width=256, seq_len=64)
_TRAIN = dict(batch_size=16, steps=N_STEPS, warmup=WARMUP, eval_every=N_STEPS // 3, eval_batches=8, checkpoint_every=150,
              log_every=10, diagnostics_every=0, keep_checkpoints=1, max_eval_tokens=128 * 64)
MULTIPLIERS = (1, 2, 4, 8)
SEEDS = (0, 1, 2)
BUDGET_COSINE = 0.85
# γ_L whose E-SPA target exp(−γ_L |i − j|) has mean off-diagonal cosine 0.85 at T = 64 (bisection, float64).
BUDGET_GAMMA = 0.007809

_LRS = {"preln": (1e-3, 3e-3), "vanilla-espa": (3e-4, 1e-3), "nf-espa": (1e-3, 3e-3)}
# U-SPA and Value-SkipInit joined the k·N comparison after the first three; their grid starts at E-SPA's dev choice
_MORE_LRS = {"vanilla-uspa": (1e-3, 3e-3), "vanilla-vsi": (1e-3, 3e-3)}
SKIPLESS = ("vanilla-espa", "vanilla-uspa", "vanilla-vsi")
METHODS = (*_LRS, *_MORE_LRS)
_EDGE_LRS = {"preln": 1e-2, "vanilla-espa": 3e-3, "nf-espa": 1e-2}
_MORE_EDGE_LRS = {"vanilla-uspa": 3e-4, "vanilla-vsi": 3e-4}
# the project's default knobs (η = 0.5, γ_L = 0.2) were set from test-text runs of an earlier suite: checked here on
# dev, one knob at a time around the default, vanilla E-SPA at its dev LR, seed 0
KNOBS = {"knob-espa-eta0.3": dict(tat_eta=0.3), "knob-espa-eta0.7": dict(tat_eta=0.7),
         "knob-espa-gamma0.05": dict(gamma_final=0.05), "knob-espa-gamma0.8": dict(gamma_final=0.8),
         # γ_L = 0.8 came out best on dev, at the top of the first four: one step further, as the check on it
         "knob-espa-gamma2": dict(gamma_final=2.0)}
TUNED_ESPA, TUNED_ESPA_KNOBS = "espa-g0.8", dict(gamma_final=0.8)
_JOINT = {
    "jb-espa-eta0.1": ("vanilla-espa", dict(kernel_budget="joint", gamma_final=BUDGET_GAMMA, tat_eta=0.1)),
    "jb-espa-eta0.5": ("vanilla-espa", dict(kernel_budget="joint", gamma_final=BUDGET_GAMMA, tat_eta=0.5)),
    "jb-uspa": ("vanilla-uspa", dict(kernel_budget="joint", rho_final=BUDGET_COSINE, tat_eta=0.5)),
    "jb-vsi": ("vanilla-vsi", dict(tat_eta=BUDGET_COSINE)),
}


def _lr_name(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-")


def _sweeps(grids: dict[str, tuple[float, ...]]) -> list[RunSpec]:
    return [RunSpec(f"{m}-lr{_lr_name(lr)}", m, "sweep", lr=lr, label=f"{m} lr={lr:g}")
            for m, grid in grids.items() for lr in grid]


def _edges(lrs: dict[str, float]) -> list[RunSpec]:
    return [RunSpec(f"edge-{m}-lr{_lr_name(lr)}", m, "ablation", lr=lr, label=f"{m} lr={lr:g} (grid-edge check)")
            for m, lr in lrs.items()]


def _horizon(method: str, k: int, seed: int) -> RunSpec:
    role = "seed" if k == 1 else "horizon"
    train = {} if k == 1 else dict(steps=k * N_STEPS, warmup=k * WARMUP, eval_every=k * N_STEPS // 3)
    return RunSpec(f"{method}-k{k}-s{seed}", method, role, lr_from=method, seed=seed, train=train,
                   label=f"{method} best lr, {k}×N steps, seed {seed}")


def protocol_runs() -> list[RunSpec]:
    """Every run, most informative first (see the module docstring)."""
    sweeps = _sweeps(_LRS)
    # Pre-LN at every LR of its grid for seeds 1, 2: the best-LR runs are its seeds, the others give the spread of
    # the multiplier over the standard model's LR (which LR is best is known only after the sweep)
    preln_seeds = [RunSpec(f"preln-lr{_lr_name(lr)}-s{s}", "preln", "seed", lr=lr, seed=s, label=f"preln lr={lr:g}, seed {s}")
                   for s in SEEDS[1:] for lr in _LRS["preln"]]
    # seed by seed, so a suite cut short holds whole seeds
    seeds = [r for s in SEEDS[1:] for r in [p for p in preln_seeds if p.seed == s]
             + [_horizon(m, 1, s) for m in _LRS if m != "preln"]]
    first_horizons = [_horizon("vanilla-espa", k, 0) for k in MULTIPLIERS[1:]]
    more_horizons = [_horizon("vanilla-espa", k, s) for k in MULTIPLIERS[1:3] for s in SEEDS[1:]]
    # one LR each [compute]: vanilla E-SPA's dev-selected LR, shared by the four settings
    joint = [RunSpec(name, method, "ablation", lr_from="vanilla-espa", model=fields,
                     label=f"{name} (joint budget {BUDGET_COSINE})")
             for name, (method, fields) in _JOINT.items()]
    last = [_horizon("vanilla-espa", MULTIPLIERS[-1], s) for s in SEEDS[1:]]
    # every dev-best LR came out at the top of its two-point grid: one step further up, seed 0, as a check on the
    # choice (not part of the selection, so the runs already made at the chosen LR stay the protocol's)
    edge = _edges(_EDGE_LRS)
    first = sweeps + seeds + first_horizons + joint + edge + more_horizons + last
    return first + _uspa_vsi_and_joint_seeds()


def _uspa_vsi_and_joint_seeds() -> list[RunSpec]:
    """U-SPA's and Value-SkipInit's k·N runs, then the joint-budget settings' seeds 1 and 2; whole comparisons first:
    the sweeps, k = 1 for every seed, every k for seed 0, k = 2 and 4 for seeds 1 and 2, and k = 8 for them last."""
    sweeps = _sweeps(_MORE_LRS)
    k1 = [_horizon(m, 1, s) for s in SEEDS[1:] for m in _MORE_LRS]
    seed0 = [_horizon(m, k, 0) for k in MULTIPLIERS[1:] for m in _MORE_LRS]
    middle = [_horizon(m, k, s) for k in MULTIPLIERS[1:3] for s in SEEDS[1:] for m in _MORE_LRS]
    joint = [RunSpec(f"{name}-s{s}", method, "ablation", lr_from="vanilla-espa", model=fields, seed=s,
                     label=f"{name} (joint budget {BUDGET_COSINE}), seed {s}")
             for s in SEEDS[1:] for name, (method, fields) in _JOINT.items()]
    last = [_horizon(m, MULTIPLIERS[-1], s) for s in SEEDS[1:] for m in _MORE_LRS]
    # both dev choices came out at the bottom of the grid: one step further down, seed 0, as the check on the choice
    edge = _edges(_MORE_EDGE_LRS)
    knobs = [RunSpec(name, "vanilla-espa", "ablation", lr_from="vanilla-espa", model=fields,
                     label=f"vanilla E-SPA {fields} (knob check on dev)") for name, fields in KNOBS.items()]
    return sweeps + k1 + seed0 + middle + joint + last + edge + knobs + _tuned_espa_runs()


def _tuned_espa_runs() -> list[RunSpec]:
    """Vanilla E-SPA with the knob the dev check chose (γ_L = 0.8; seed 0 at N is its knob-check run): k·N for
    k = 1, 2, 4, 8 and 3 seeds at E-SPA's dev LR, plus one LR step up as the check on that LR at these knobs."""
    def run(k: int, seed: int) -> RunSpec:
        spec = _horizon("vanilla-espa", k, seed)
        return dataclasses.replace(spec, name=spec.name.replace("vanilla-espa", TUNED_ESPA), model=TUNED_ESPA_KNOBS,
                                   label=spec.label.replace("vanilla-espa", f"vanilla-espa {TUNED_ESPA_KNOBS}"))
    lr_check = RunSpec(f"{TUNED_ESPA}-lr3e-3", "vanilla-espa", "ablation", lr=3e-3, model=TUNED_ESPA_KNOBS,
                       label=f"vanilla-espa {TUNED_ESPA_KNOBS} lr=0.003 (LR check at the chosen knobs)")
    return [lr_check] + [run(1, s) for s in SEEDS[1:]] + [run(k, s) for k in MULTIPLIERS[1:] for s in SEEDS]


def protocol_suite() -> Suite:
    """The "claims-cpu" suite (depth 16, width 64, T = 64, batch 16, N = 150 steps)."""
    return _suite(
        name="claims-cpu",
        description=("Depth 16, width 64, 4 heads, T=64, batch 16 on the generated source fitted to WikiText-2 "
                     f"valid.txt (V=1024 words); N={N_STEPS} steps; Pre-LN at N, vanilla E-SPA, U-SPA and "
                     f"Value-SkipInit at k·N (k in {MULTIPLIERS}), norm-free residual E-SPA at N, 3 seeds; joint-budget comparison."),
        model=_MODEL, train=_TRAIN, runs=tuple(protocol_runs()),
        tokenizer="word:1024",
    )


def wikitext_suite() -> Suite:
    """"claims-wt2": the real-text check at a short horizon, under the protocol's split discipline.

    Training text WikiText-2 valid.txt minus its last 5% (the dev split, held out by the data package, which every
    LR choice reads); test.txt is scored once per final model. Pre-LN, vanilla E-SPA and the norm-free residual
    E-SPA at N steps, two LRs each, seed 0 (one pass over ≈ 70% of the training text: no repetition).
    """
    runs = [RunSpec(f"wt2-{m}-lr{_lr_name(lr)}", m, "sweep", lr=lr, label=f"{m} lr={lr:g} (WikiText-2)")
            for m, grid in _LRS.items() for lr in grid]
    runs += [RunSpec(f"wt2-{m}-s{s}", m, "seed", lr_from=m, seed=s, label=f"{m} best lr, seed {s} (WikiText-2)")
             for s in SEEDS[1:] for m in _LRS]
    return _suite(
        name="claims-wt2",
        description=("Depth 16, width 64, T=64, batch 16, N=150 steps on WikiText-2 (train: valid.txt minus its "
                     "last 5% = dev; test.txt scored once per final model), BPE 1024."),
        model=dict(depth=16, width=64, heads=4, mlp_width=256, seq_len=64),
        train=dict(batch_size=16, steps=N_STEPS, warmup=WARMUP, eval_every=N_STEPS // 3, eval_batches=16,
                   checkpoint_every=150, log_every=10, diagnostics_every=0, keep_checkpoints=1),
        runs=tuple(runs),
        tokenizer="bpe:1024",
    )


def depth36_suite() -> Suite:
    """"claims-d36": the matched joint-budget comparison at depth 36 (3 seeds), with Pre-LN as the reference.

    Same shape, data and budget (whole-network init cosine 0.85) as `claims-cpu`'s joint-budget runs; LRs are the
    depth-16 dev choices (Pre-LN 3e-3, vanilla E-SPA 1e-3 for every skipless setting) [compute: no sweep at 36].
    """
    return _deep_suite(36, SEEDS)


def depth72_suite() -> Suite:
    """"claims-d72": the same comparison at depth 72 (3 seeds; LRs from depth 16 as at 36)."""
    return _deep_suite(72, SEEDS)


def _deep_suite(depth: int, seeds: tuple[int, ...]) -> Suite:
    settings = [(f"d{depth}-preln", "preln", 3e-3, {})] + [(f"d{depth}-{name[3:]}", method, 1e-3, fields)
                                                           for name, (method, fields) in _JOINT.items()]
    runs = [RunSpec(name + (f"-s{s}" if s else ""), method, "sweep" if method == "preln" and not s else "ablation",
                    lr=lr, model=fields, seed=s, label=f"{name} depth {depth}, seed {s}")
            for s in seeds for name, method, lr, fields in settings]
    return _suite(f"claims-d{depth}", f"The joint-budget comparison of claims-cpu at depth {depth}, with Pre-LN, "
                  f"{len(seeds)} seed(s).", {**_MODEL, "depth": depth}, _TRAIN, runs, "word:1024")
