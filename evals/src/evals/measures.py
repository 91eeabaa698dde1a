"""Measures of one run's loss curves, and of a run against the Pre-LN baseline.

Training losses are logged every few steps and are noisy, so the final train loss is a trailing
mean over 10% of the logged points (at least one), placed at the mean step of its window so that
smoothing does not delay the curve. Comparisons between runs ("steps to reach a loss") use eval
curves, interpolated linearly between evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def curves(records: Sequence[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Splits `metrics.jsonl` records into `{"train": [(step, loss)], "eval": [(step, eval_loss)]}`.

    A resumed run may log a step twice: the last record of a step wins. Missing or `null` (non-finite)
    values become NaN.
    """
    found: dict[str, dict[int, float]] = {"train": {}, "eval": {}}
    for record in records:
        for key, curve in (("loss", "train"), ("eval_loss", "eval")):
            if key in record:
                value = record[key]
                found[curve][int(record["step"])] = math.nan if value is None else float(value)
    return {name: sorted(points.items()) for name, points in found.items()}


def smoothed(curve: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """Trailing mean over `max(1, round(0.1 · len(curve)))` points, placed at the window's mean step.

    **Returns:** `[(step, loss)]` (steps may be fractional).
    """
    if not curve:
        return []
    window = max(1, round(0.1 * len(curve)))

    def trailing_mean(values):
        sums = np.cumsum(np.concatenate([[0.0], np.asarray(values, np.float64)]))
        ends = np.arange(1, len(values) + 1)
        starts = np.maximum(ends - window, 0)
        return (sums[ends] - sums[starts]) / (ends - starts)

    steps = trailing_mean([s for s, _ in curve])
    means = trailing_mean([v for _, v in curve])
    return [(float(s), float(m)) for s, m in zip(steps, means)]


def value_at(curve: Sequence[tuple[int, float]], step: float) -> float:
    """The value of the logged point nearest to `step` (NaN for an empty curve)."""
    if not curve:
        return math.nan
    return min(curve, key=lambda point: (abs(point[0] - step), point[0]))[1]


def steps_to_reach(curve: Sequence[tuple[int, float]], target: float) -> float | None:
    """First step at which the piecewise-linear `curve` is at or below `target` (interpolated between
    logged points), or `None` if it never is.

    **Arguments:** `curve` `[(step, loss)]` in step order (e.g. an eval curve, or a `smoothed` one).
    """
    previous = None
    for step, value in curve:
        if math.isfinite(value) and value <= target:
            if previous is None or not math.isfinite(previous[1]) or previous[1] == value:
                return float(step)
            (s0, v0) = previous
            return float(s0 + (step - s0) * (v0 - target) / (v0 - value))
        previous = (step, value)
    return None


def run_measures(records: Sequence[dict[str, Any]], total_steps: int, vocab_size: int, *, diverged: bool = False) -> dict[str, Any]:
    """Per-run numbers for the results table.

    **Arguments:** `records` (the run's `metrics.jsonl`), `total_steps` (the run's budget),
    `vocab_size` (a loss above ln V, a uniform guess, counts as divergence), `diverged` (the trainer
    stopped on a non-finite loss).

    **Returns:** `final_train_loss` (smoothed), `final_eval_loss`, `eval_at` / `train_at`
    (`{fraction: loss}` for `FRACTIONS` of the budget), `last_step`, `diverged`.
    """
    split = curves(records)
    train = smoothed(split["train"])
    final_train = train[-1][1] if train else math.nan
    final_eval = split["eval"][-1][1] if split["eval"] else math.nan
    blew_up = not math.isfinite(final_train) or final_train > math.log(vocab_size)
    return {
        "final_train_loss": final_train,
        "final_eval_loss": final_eval,
        "train_at": {str(f): value_at(train, f * total_steps) for f in FRACTIONS},
        "eval_at": {str(f): value_at(split["eval"], f * total_steps) for f in FRACTIONS},
        "last_step": split["train"][-1][0] if split["train"] else 0,
        "diverged": bool(diverged or blew_up),
    }


def versus_baseline(run_curve: Sequence[tuple[int, float]], baseline_curve: Sequence[tuple[int, float]]) -> dict[str, Any]:
    """How many steps a run needs to match the baseline, read off eval curves.

    Eval curves are used (not train losses): they score the same held-out windows every time, so
    a noisy dip cannot count as reaching a loss. Crossings are interpolated linearly between evals.

    **Arguments:** eval curves `[(step, loss)]` of the run and of the baseline.

    **Returns:**

    - `steps_to_baseline_final`: step at which the run reaches the baseline's final eval loss
      (`None` = not within the budget).
    - `iteration_multiplier`: for the latest baseline eval step s (past 10% of its budget) whose loss
      the run reaches, (run's step to reach it) / s — the paper's "× more iterations" read off at the
      longest horizon this budget allows; `None` when the run never reaches the baseline's loss at
      10% of its budget.
    - `matched_baseline_step`: that s.
    """
    baseline = [(s, v) for s, v in baseline_curve if math.isfinite(v)]
    if not baseline:
        return {"steps_to_baseline_final": None, "iteration_multiplier": None, "matched_baseline_step": None}
    horizon = baseline[-1][0]
    result = {"steps_to_baseline_final": steps_to_reach(run_curve, baseline[-1][1]),
              "iteration_multiplier": None, "matched_baseline_step": None}
    for step, loss in reversed(baseline):
        if step < 0.1 * horizon:
            break
        reached = steps_to_reach(run_curve, loss)
        if reached is not None:
            result.update(iteration_multiplier=reached / step, matched_baseline_step=step)
            break
    return result
