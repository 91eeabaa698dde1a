"""A tiny suite end to end: all three outputs, an interrupted run resumed, finished runs skipped,
the best-LR rule, and the count baselines recorded next to the runs."""

import json
import math
import pathlib

import numpy as np
import pytest

import skipless_models

from evals.reproduce import reproduce
from evals.results_markdown import results_markdown
from evals.suites import RunSpec, Suite

TINY = Suite(
    name="test-tiny",
    description="test-only suite",
    preset=skipless_models.Preset(
        skipless_models.ModelConfig(depth=2, width=16, heads=2, mlp_width=32, seq_len=16),
        skipless_models.RunShape(batch_size=4, steps=8, warmup=1, eval_every=4, eval_batches=2, checkpoint_every=4,
                                 log_every=1, diagnostics_every=0, keep_checkpoints=1),
        "test-only shape"),
    runs=(
        RunSpec("preln", "preln", "sweep", lr=3e-3),
        RunSpec("espa-lo", "vanilla-espa", "sweep", lr=1e-3),
        RunSpec("espa-hi", "vanilla-espa", "sweep", lr=1e-2),
        RunSpec("espa-s1", "vanilla-espa", "seed", lr_from="vanilla-espa", seed=1),
        # Two leaky-ReLU blocks cannot reach C_f(0) = 0.99: the trainer rejects it, the suite goes on.
        RunSpec("espa-bad-eta", "vanilla-espa", "ablation", lr_from="vanilla-espa", model=dict(tat_eta=0.99)),
        RunSpec("espa-x2", "vanilla-espa", "horizon", lr_from="vanilla-espa", train=dict(steps=16), label="2x budget"),
    ),
    tokenizer="byte",
)


def _metrics(out, name):
    return (pathlib.Path(out) / "runs" / name / "metrics.jsonl").read_text()


@pytest.fixture(scope="module")
def suite_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    first = reproduce(TINY, "embedded", out, only=["preln", "espa-lo"])
    interrupted = reproduce(TINY, "embedded", out, only=["espa-hi"], stop_after=3)
    preln_metrics = _metrics(out, "preln")
    final = reproduce(TINY, "embedded", out)
    return dict(out=out, first=first, interrupted=interrupted, final=final, preln_metrics=preln_metrics)


def test_outcomes_of_each_invocation(suite_out):
    assert suite_out["first"]["outcomes"] == {"preln": "complete", "espa-lo": "complete"}
    assert suite_out["interrupted"]["outcomes"] == {"espa-hi": "stopped"}
    assert suite_out["final"]["outcomes"] == {"preln": "skipped", "espa-lo": "skipped", "espa-hi": "complete",
                                             "espa-s1": "complete", "espa-bad-eta": "failed", "espa-x2": "complete"}
    # A skipped run is not touched.
    assert _metrics(suite_out["out"], "preln") == suite_out["preln_metrics"]


def test_resumed_run_has_every_step_once(suite_out):
    records = [json.loads(line) for line in _metrics(suite_out["out"], "espa-hi").splitlines()]
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == list(range(1, 9))  # steps 1-3 from the interrupted call, 4-8 from the resumed one


def test_three_outputs_written(suite_out):
    out = suite_out["out"]
    results = json.loads((out / "results.json").read_text())
    assert (out / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text()
    for method in ("preln", "vanilla-espa"):
        assert f"| {method} |" in table
    assert "unigram" in table and "bigram" in table
    states = {r["name"]: r["state"] for r in results["runs"]}
    assert states == dict.fromkeys(["preln", "espa-lo", "espa-hi", "espa-s1", "espa-x2"], "complete") | {"espa-bad-eta": "failed"}
    assert "out of reach" in {r["name"]: r for r in results["runs"]}["espa-bad-eta"]["message"]


def test_best_lr_and_headline(suite_out):
    results = suite_out["final"]["results"]
    runs = {r["name"]: r for r in results["runs"]}
    sweep = [runs["espa-lo"], runs["espa-hi"]]
    best = min(sweep, key=lambda r: r["measures"]["final_eval_loss"])["lr"]
    assert results["best_lr"]["vanilla-espa"] == best == runs["espa-s1"]["lr"]
    assert results["headline"]["vanilla-espa"] == [min(sweep, key=lambda r: r["measures"]["final_eval_loss"])["name"], "espa-s1"]
    # The final eval loss in the table is the trainer's last eval record.
    records = [json.loads(line) for line in _metrics(suite_out["out"], "espa-s1").splitlines()]
    assert runs["espa-s1"]["measures"]["final_eval_loss"] == [r["eval_loss"] for r in records if "eval_loss" in r][-1]
    assert runs["preln"]["vs_baseline"]["iteration_multiplier"] == 1.0


def test_horizon_run_trains_longer_at_the_best_lr_and_is_reported(suite_out):
    results = suite_out["final"]["results"]
    runs = {r["name"]: r for r in results["runs"]}
    x2 = runs["espa-x2"]
    assert x2["lr"] == results["best_lr"]["vanilla-espa"] and x2["measures"]["last_step"] == 16
    assert x2["eval_curve"][-1][0] == 16 and "espa-x2" not in results["headline"]["vanilla-espa"]
    # the step at which it reaches Pre-LN's final eval loss, read off its eval curve independently
    target = runs["preln"]["eval_curve"][-1][1]
    curve = x2["eval_curve"]
    reached = None
    for (s0, v0), (s1, v1) in zip([(0, math.inf)] + curve[:-1], curve):
        if v1 <= target:
            reached = s1 if not math.isfinite(v0) or v0 == v1 else s0 + (v0 - target) / (v0 - v1) * (s1 - s0)
            break
    got = x2["vs_baseline"]["steps_to_baseline_final"]
    assert (got is None and reached is None) or got == pytest.approx(reached)
    table = results_markdown(results)
    assert "## Longer horizon" in table and "| espa-x2 | 2x budget |" in table


def test_report_on_an_unfinished_sweep_is_provisional(suite_out):
    # after the first call only espa-lo of vanilla-espa's two sweep runs had finished
    results = suite_out["first"]["results"]
    assert results["sweep_progress"]["vanilla-espa"] == [1, 2]
    assert results["best_lr"]["vanilla-espa"] == 1e-3 and results["headline"]["vanilla-espa"] == ["espa-lo"]
    assert "| vanilla-espa | 0.001 (1/2 LRs run) | 1 |" in results_markdown(results)
    # runs that take the sweep's LR still wait for the whole sweep
    assert suite_out["final"]["results"]["sweep_progress"]["vanilla-espa"] == [2, 2]


def test_baselines_and_init_summary(suite_out):
    results = suite_out["final"]["results"]
    base = results["baselines"]
    assert base["bigram"] < base["unigram"] < math.log(256)
    runs = {r["name"]: r for r in results["runs"]}
    init = runs["espa-lo"]["init"]
    assert math.isfinite(init["max_kernel_error"]) and 0.0 < init["final_cosine"] < 1.0
    assert math.isnan(runs["preln"]["init"]["max_kernel_error"])  # theory does not cover skips


def test_unknown_run_name_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="no runs"):
        reproduce(TINY, "embedded", tmp_path, only=["nope"])
