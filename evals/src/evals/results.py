"""Collecting a suite's runs into one JSON-able results record.

Reads each run folder (`config.json`, `metrics.jsonl`, `suite_status.json`), computes its measures,
picks each method's best learning rate (lowest final eval loss among its finished, non-diverged
seed-0 sweep runs) and compares every run with the Pre-LN baseline at its best learning rate.
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

from .measures import curves, run_measures, versus_baseline
from .suite_runs import read_status
from .suites import BASELINE, METHODS, Suite


def _records(run_dir: pathlib.Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_record(suite: Suite, out: pathlib.Path, name: str) -> dict[str, Any]:
    """One run's state and measures.

    **Returns:** `name`, `method`, `role`, `label`, `seed`, `state` ("complete" | "diverged" |
    "failed" | "partial" | "pending"), `message` (why it failed or diverged), `lr` (`None` until the
    run started), `vocab_size`, `measures` (or `None` while pending), `train_curve`, `eval_curve` (`[(step, loss)]`).
    """
    spec = suite.run(name)
    run_dir = out / "runs" / name
    status = read_status(run_dir)
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else None
    records = _records(run_dir)
    state = status["state"] if status else ("partial" if config else "pending")
    record: dict[str, Any] = dict(name=name, method=spec.method, role=spec.role, label=spec.label or name,
                                  seed=spec.seed, state=state, lr=config["lr"] if config else None,
                                  vocab_size=config["model"]["vocab_size"] if config else None, measures=None,
                                  message=status.get("message") if status else None)
    split = curves(records)
    record.update(train_curve=split["train"], eval_curve=split["eval"])
    if config and records:
        record["measures"] = run_measures(records, config["steps"], config["model"]["vocab_size"],
                                          diverged=state == "diverged")
    return record


def _usable(record: dict[str, Any]) -> bool:
    measures = record["measures"]
    return record["state"] == "complete" and measures is not None and not measures["diverged"]


def _finished(record: dict[str, Any]) -> bool:
    return record["state"] in ("complete", "diverged", "failed")


def rank_sweep(sweep: list[dict[str, Any]], sweep_lrs: list[float], *, provisional: bool = False) -> float | None:
    """The best LR among one method's seed-0 sweep run records, or `None` while any of them is unfinished.

    Ranking: final eval loss (final train loss when the run has no eval); diverged runs rank last.
    If every sweep run diverged or failed, the smallest of `sweep_lrs` is returned. `provisional=True`
    ranks the sweep runs finished so far (for reports on a suite cut short; `None` only when none has
    finished); runs that take their LR from a sweep (`lr_from`) always wait for the whole sweep.
    """
    finished = [r for r in sweep if _finished(r)]
    if not finished or (len(finished) < len(sweep) and not provisional):
        return None
    usable = [r for r in finished if _usable(r)]
    if not usable:
        return min(sweep_lrs)

    def score(r):
        m = r["measures"]
        value = m["final_eval_loss"] if math.isfinite(m["final_eval_loss"]) else m["final_train_loss"]
        return value if math.isfinite(value) else math.inf

    return min(usable, key=score)["lr"]


def _sweep_specs(suite: Suite, method: str) -> list:
    return [r for r in suite.runs if r.role == "sweep" and r.method == method]


def best_lr(suite: Suite, out: pathlib.Path, method: str, *, provisional: bool = False) -> float | None:
    """`rank_sweep` over `method`'s sweep runs as they stand in `out` (reads only those runs)."""
    specs = _sweep_specs(suite, method)
    return rank_sweep([run_record(suite, out, r.name) for r in specs], [r.lr for r in specs], provisional=provisional)


def collect(suite: Suite, out: pathlib.Path, *, baselines: dict[str, Any] | None = None,
            init: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """The suite's results record (what `results.json` holds).

    **Arguments:** `suite`, `out` (suite folder), `baselines` (count-model reference lines), `init`
    (init signal-prop summary per run name).

    **Returns:** `suite`, `baselines`, `runs` (run records with `init` and `vs_baseline` added),
    `best_lr` per method (provisional while a sweep is unfinished), `sweep_progress` per method
    (`[finished, total]` sweep runs), `headline` (per method: the best-LR runs of every seed).
    """
    runs = [run_record(suite, out, r.name) for r in suite.runs]
    methods = [m for m in METHODS if any(r.method == m for r in suite.runs)]
    best, progress = {}, {}
    for m in methods:
        sweep = [r for r in runs if r["role"] == "sweep" and r["method"] == m]
        best[m] = rank_sweep(sweep, [r.lr for r in _sweep_specs(suite, m)], provisional=True)
        progress[m] = [sum(_finished(r) for r in sweep), len(sweep)]
    reference = {}
    for r in runs:
        if r["method"] == BASELINE and r["lr"] == best.get(BASELINE) and r["role"] in ("sweep", "seed") and _usable(r):
            reference[r["seed"]] = r["eval_curve"]
    for r in runs:
        r["init"] = (init or {}).get(r["name"])
        baseline = reference.get(r["seed"], reference.get(0))
        r["vs_baseline"] = versus_baseline(r["eval_curve"], baseline) if (baseline and r["measures"]) else None
    headline = {}
    for method, lr in best.items():
        chosen = [r for r in runs if r["method"] == method and r["role"] in ("sweep", "seed")
                  and lr is not None and r["lr"] == lr and r["measures"] is not None]
        headline[method] = [r["name"] for r in sorted(chosen, key=lambda r: r["seed"])]
    return dict(suite=suite.name, description=suite.description, baselines=baselines, runs=runs,
                best_lr=best, sweep_progress=progress, headline=headline)
