"""Measures against hand-built curves: smoothing, steps to reach, and the iteration multiplier of a
run that is the baseline slowed down by a known factor."""

import math

import numpy as np
import pytest

from evals.measures import curves, run_measures, smoothed, steps_to_reach, value_at, versus_baseline


def _loss(step):
    return 2.0 + 5.0 / math.sqrt(step)


def test_smoothed_is_trailing_mean_at_the_window_centre():
    curve = [(s, float(s) ** 2) for s in range(1, 41)]  # window = round(0.1 * 40) = 4 points
    expected = [(np.mean(np.arange(max(1, s - 3), s + 1)), np.mean(np.arange(max(1, s - 3), s + 1) ** 2.0))
                for s in range(1, 41)]
    assert np.asarray(smoothed(curve)) == pytest.approx(np.asarray(expected))


def test_steps_to_reach_interpolates_and_value_at():
    curve = [(10, 5.0), (20, 4.0), (30, 3.0), (40, 3.5)]
    assert steps_to_reach(curve, 3.5) == pytest.approx(25.0)
    assert steps_to_reach(curve, 5.0) == 10.0
    assert steps_to_reach(curve, 2.0) is None
    assert value_at(curve, 33) == 3.0


@pytest.mark.parametrize("factor", [2.0, 5.0])
def test_iteration_multiplier_of_a_slowed_down_baseline(factor):
    baseline = [(s, _loss(s)) for s in range(100, 2001, 100)]
    run = [(s, _loss(s / factor)) for s in range(100, 2001, 100)]
    vs = versus_baseline(run, baseline)
    assert vs["steps_to_baseline_final"] is None  # a slower run cannot reach the final loss in the same budget
    assert vs["matched_baseline_step"] == 100 * (2000 // factor // 100)
    assert vs["iteration_multiplier"] == pytest.approx(factor, rel=0.03)


def test_same_curve_has_multiplier_one():
    baseline = [(s, _loss(s)) for s in range(100, 1001, 100)]
    vs = versus_baseline(baseline, baseline)
    assert vs["steps_to_baseline_final"] == 1000
    assert vs["iteration_multiplier"] == 1.0 and vs["matched_baseline_step"] == 1000


def test_run_measures_and_divergence():
    records = [{"step": s, "loss": _loss(s)} for s in range(1, 101)] + [
        {"step": 50, "eval_loss": 3.5}, {"step": 100, "eval_loss": 3.0}]
    m = run_measures(records, 100, vocab_size=256)
    assert m["final_eval_loss"] == 3.0 and m["eval_at"]["0.5"] == 3.5 and m["last_step"] == 100
    assert m["final_train_loss"] == pytest.approx(np.mean([_loss(s) for s in range(91, 101)]))
    assert not m["diverged"]
    exploded = records + [{"step": 101 + i, "loss": 13.0} for i in range(20)]
    assert run_measures(exploded, 120, vocab_size=256)["diverged"]  # above ln 256 = 5.55
    assert run_measures(records, 100, vocab_size=256, diverged=True)["diverged"]


def test_curves_keep_the_last_record_of_a_repeated_step():
    split = curves([{"step": 1, "loss": 5.0}, {"step": 2, "loss": 4.0}, {"step": 2, "loss": 4.5},
                    {"step": 2, "eval_loss": None}])
    assert split["train"] == [(1, 5.0), (2, 4.5)]
    assert math.isnan(split["eval"][0][1])
