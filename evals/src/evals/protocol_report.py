"""The claims protocol's verdicts from its raw run records: step multipliers, paired differences, ties.

Every number comes from the run folders (`metrics.jsonl`, `suite_status.json`, `test_score.json`): LRs are chosen
on the dev stream (the runs' eval), verdicts read the test stream, scored once per final model. A difference is a
paired mean over seeds with its spread (mean ± 2 standard errors over seeds); inside the spread it is a tie.
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import numpy as np

from .results import best_lr, run_record

CLAIM_1 = ("In experiments on WikiText-103 and C4, our approaches enable deep transformers without normalisation to "
           "train at speeds matching their standard counterparts")
CLAIM_2 = "and deep vanilla transformers to reach the same performance as standard ones after about 5 times more iterations."


def crossing_multiplier(losses_by_k: dict[int, float], target: float) -> float | None:
    """The smallest k at which the loss reaches `target`, interpolated linearly in log2 k between measured k's.

    **Returns:** k (≤ the first measured k when that already reaches the target: that k), or None when no measured
    k reaches it (then the multiplier is above the largest k).
    """
    ks = sorted(k for k, v in losses_by_k.items() if v is not None and math.isfinite(v))
    for i, k in enumerate(ks):
        if losses_by_k[k] <= target:
            if i == 0:
                return float(k)
            k0, l0, l1 = ks[i - 1], losses_by_k[ks[i - 1]], losses_by_k[k]
            frac = (l0 - target) / (l0 - l1)
            return float(2 ** (math.log2(k0) + frac * (math.log2(k) - math.log2(k0))))
    return None


def paired(diffs: list[float]) -> dict[str, Any]:
    """Mean of paired differences with its spread: mean ± 2·SD/√n over seeds; a tie when the interval holds 0."""
    d = np.asarray([x for x in diffs if x is not None and math.isfinite(x)], np.float64)
    if d.size == 0:
        return dict(n=0, mean=None, sd=None, low=None, high=None, verdict="no data")
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if d.size > 1 else math.nan
    half = 2 * sd / math.sqrt(d.size) if d.size > 1 else math.nan
    if d.size < 2:
        verdict = "one seed: no spread"
    elif abs(mean) <= half:
        verdict = "tie"
    else:
        verdict = "lower" if mean < 0 else "higher"
    return dict(n=int(d.size), mean=mean, sd=sd, low=mean - half, high=mean + half, verdict=verdict)


def _test(out: pathlib.Path, name: str) -> dict | None:
    path = out / "runs" / name / "test_score.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _train_seconds(out: pathlib.Path, name: str) -> float | None:
    """Seconds spent in training steps, from the logged throughput (compile, eval and scoring excluded)."""
    run = out / "runs" / name
    config_path, metrics = run / "config.json", run / "metrics.jsonl"
    if not (config_path.is_file() and metrics.is_file()):
        return None
    config = json.loads(config_path.read_text())
    tokens_per_step = config["batch_size"] * config["model"]["seq_len"]
    total, last = 0.0, 0
    for line in metrics.read_text().splitlines():
        rec = json.loads(line) if line.strip() else {}
        if "tokens_per_s" in rec and rec.get("tokens_per_s"):
            total += (rec["step"] - last) * tokens_per_step / rec["tokens_per_s"]
            last = rec["step"]
    return total


def protocol_record(suite, out: pathlib.Path) -> dict[str, Any]:
    """The raw records and the derived verdicts (what results.json holds)."""
    runs = {}
    for spec in suite.runs:
        record = run_record(suite, out, spec.name)
        record.pop("train_curve", None)
        test = _test(out, spec.name)
        record["test"] = None if test is None else {k: test[k] for k in ("test_loss", "test_se", "sequences", "step")}
        record["steps"] = (spec.train or {}).get("steps", suite.record.run.steps)
        record["train_s"] = _train_seconds(out, spec.name)
        runs[spec.name] = record
    best = {m: best_lr(suite, out, m, provisional=True) for m in ("preln", "vanilla-espa", "nf-espa")}

    def name_of(method: str, k: int, seed: int) -> str | None:
        lr = best[method]
        if lr is None:
            return None
        if k == 1 and seed == 0:
            return next((s.name for s in suite.runs if s.role == "sweep" and s.method == method and s.lr == lr), None)
        if k == 1 and method == "preln":
            return next((s.name for s in suite.runs if s.method == method and s.seed == seed and s.lr == lr), None)
        return f"{method}-k{k}-s{seed}"

    def test_loss(name: str | None) -> float | None:
        t = None if name is None else runs.get(name, {}).get("test")
        return None if t is None else t["test_loss"]

    def per_sequence(name):
        t = _test(out, name) if name else None
        return None if t is None else np.asarray(t["per_sequence"])

    seeds = sorted({s.seed for s in suite.runs})
    ks = sorted({1} | {int(s.name.split("-k")[1].split("-")[0]) for s in suite.runs if "-k" in s.name})
    claim2 = []
    for seed in seeds:
        espa = {k: test_loss(name_of("vanilla-espa", k, seed)) for k in ks}
        preln = test_loss(name_of("preln", 1, seed))
        other = [s for s in suite.runs if s.method == "preln" and s.lr is not None and best["preln"] is not None
                 and s.lr != best["preln"] and s.seed == seed and not s.name.startswith("edge-")]
        preln_other = test_loss(other[0].name) if other else None
        claim2.append(dict(seed=seed, espa=espa, preln=preln, preln_other_lr=preln_other,
                           multiplier=None if preln is None else crossing_multiplier(espa, preln),
                           multiplier_other_lr=None if preln_other is None else crossing_multiplier(espa, preln_other),
                           gap_at={k: (None if espa[k] is None or preln is None else espa[k] - preln) for k in ks}))
    # while E-SPA's k-curve exists for seed 0 only: its multiplier against each Pre-LN seed (Pre-LN's seed spread)
    curve0 = claim2[0]["espa"] if claim2 else {}
    vs_preln_seeds = {c["seed"]: crossing_multiplier(curve0, c["preln"]) for c in claim2 if c["preln"] is not None}
    claim1_diffs = [_diff(test_loss(name_of("nf-espa", 1, s)), test_loss(name_of("preln", 1, s))) for s in seeds]
    espa_k1_diffs = [_diff(test_loss(name_of("vanilla-espa", 1, s)), test_loss(name_of("preln", 1, s))) for s in seeds]
    joint_best = {}
    for spec in suite.runs:
        if spec.name.startswith("jb-"):
            r = runs[spec.name]
            if r["measures"] and r["state"] == "complete":
                joint_best[spec.name] = dict(run=spec.name, lr=r["lr"], dev=r["measures"]["final_eval_loss"],
                                             test=test_loss(spec.name), complete=True)
    reference = joint_best.get("jb-espa-eta0.1")
    for setting, entry in joint_best.items():
        a, b = per_sequence(entry["run"]), per_sequence(reference["run"]) if reference else None
        if a is not None and b is not None and setting != "jb-espa-eta0.1":
            d = a - b
            entry["vs_espa_eta0.1"] = dict(mean=float(d.mean()), se=float(d.std(ddof=1) / math.sqrt(d.size)))
    edge = {}
    for spec in suite.runs:
        if spec.name.startswith("edge-") and runs[spec.name]["measures"] and runs[spec.name]["state"] == "complete":
            chosen = name_of(spec.method, 1, 0)
            chosen_dev = (runs.get(chosen) or {}).get("measures") or {}
            entry = dict(method=spec.method, lr=spec.lr, dev=runs[spec.name]["measures"]["final_eval_loss"],
                         test=test_loss(spec.name), chosen_lr=best[spec.method],
                         chosen_dev=chosen_dev.get("final_eval_loss"), chosen_test=test_loss(chosen))
            if spec.method == "preln" and claim2 and entry["test"] is not None:
                entry["multiplier"] = crossing_multiplier(claim2[0]["espa"], entry["test"])
            edge[spec.name] = entry
    return dict(suite=suite.name, description=suite.description, runs=runs, best_lr=best, claim2=claim2, edge=edge,
                claim2_multiplier=_spread([c["multiplier"] for c in claim2]),
                claim2_seed0_vs_preln_seeds=vs_preln_seeds,
                claim1=paired(claim1_diffs), claim1_diffs=claim1_diffs, espa_k1=paired(espa_k1_diffs),
                joint=joint_best, source=_source_numbers(out))


def _diff(a, b):
    return None if a is None or b is None else a - b


def _spread(values):
    got = [v for v in values if v is not None]
    return dict(values=values, n=len(got), mean=float(np.mean(got)) if got else None,
                low=float(min(got)) if got else None, high=float(max(got)) if got else None)


def _source_numbers(out: pathlib.Path) -> dict[str, Any]:
    """Best possible loss (with its standard error) and the fitted bigram's loss on the source, at the runs' T."""
    import skipless_data

    configs = sorted((out / "runs").glob("*/config.json"))
    if not configs:
        return {}
    config = json.loads(configs[0].read_text())
    data, vocab, seq_len = config["data"], config["model"]["vocab_size"], config["model"]["seq_len"]
    optimal, se = skipless_data.generated_optimal_loss(data, vocab, seq_len)
    source, base = skipless_data.generated_source(data, vocab)
    return dict(data=data, vocab_size=vocab, seq_len=seq_len, optimal_loss=optimal, optimal_se=se,
                bigram_loss=source.bigram_loss(seq_len, base))


def _f(x, digits=3):
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def protocol_markdown(record: dict[str, Any]) -> str:
    """The results page section of the protocol suite (tables as the records stand: partial runs labelled)."""
    runs = record["runs"]
    done = sum(r["state"] == "complete" for r in runs.values())
    lines = [f"# {record['suite']}: the paper's two claims under the protocol", "",
             record["description"], "",
             f"Runs complete: {done} of {len(runs)} ({record.get('date', '')}). Command: `{record.get('command', '')}`.",
             "", _source_line(record.get("source") or {}), "", f"Best LR on the dev stream: " + ", ".join(f"{m} {v:g}" if v else f"{m} –"
                                                        for m, v in record["best_lr"].items()), ""]
    lines += ["## Claim 2: × iterations for vanilla E-SPA to reach Pre-LN (test loss, final models)", "",
              "| seed | Pre-LN (N) | Pre-LN other LR | " + " | ".join(f"E-SPA {k}×N" for k in sorted(record["claim2"][0]["espa"]))
              + " | multiplier | multiplier vs other LR |",
              "|---|---|---|" + "---|" * len(record["claim2"][0]["espa"]) + "---|---|"]
    for c in record["claim2"]:
        measured = [k for k, v in c["espa"].items() if v is not None]
        mult = lambda m: ("–" if c["preln"] is None or not measured else
                          f"{m:.2f}" if m is not None else f"> {max(measured)} (not reached by k ≤ {max(measured)})")
        lines.append(f"| {c['seed']} | {_f(c['preln'])} | {_f(c['preln_other_lr'])} | "
                     + " | ".join(_f(v) for _, v in sorted(c["espa"].items())) + f" | {mult(c['multiplier'])} | "
                     + ("–" if c["preln_other_lr"] is None else mult(c["multiplier_other_lr"])) + " |")
    vs = record.get("claim2_seed0_vs_preln_seeds") or {}
    if vs:
        lines += ["", "E-SPA seed 0's k-curve against each Pre-LN seed (the spread from Pre-LN's seed alone): "
                  + ", ".join(f"seed {s}: {'not reached' if m is None else f'{m:.2f}'}" for s, m in sorted(vs.items()))
                  + "."]
    lines += ["", _paired_line("Claim 1 (norm-free residual E-SPA − Pre-LN at N, test loss)", record["claim1"]),
              _paired_line("Vanilla E-SPA − Pre-LN at N (test loss)", record["espa_k1"]), ""]
    lines += ["## Matched joint kernel budget, depth 16 (seed 0, vanilla E-SPA's dev-selected LR)", "",
              "| setting | LR | dev | test | test − E-SPA η=0.1 (paired over test sequences) |", "|---|---|---|---|---|"]
    for setting, e in sorted(record["joint"].items()):
        vs = e.get("vs_espa_eta0.1")
        lines.append(f"| {setting} | {e['lr']:g} | {_f(e['dev'])} | "
                     f"{_f(e['test'])} | {_vs_text(vs)} |")
    lines += ["", "## Grid-edge check (seed 0): one LR step above each chosen LR", "",
              "| run | LR | dev | test | chosen LR | its dev | its test | E-SPA multiplier vs this Pre-LN |",
              "|---|---|---|---|---|---|---|---|"]
    for name, e in record.get("edge", {}).items():
        mult = e.get("multiplier", "n/a")
        mult_text = "–" if e["method"] != "preln" else (f"{mult:.2f}" if isinstance(mult, float) else "not reached")
        lines.append(f"| {name} | {e['lr']:g} | {_f(e['dev'])} | {_f(e['test'])} | {e['chosen_lr']} | "
                     f"{_f(e['chosen_dev'])} | {_f(e['chosen_test'])} | {mult_text} |")
    lines += ["", "## Cost (seconds inside training steps, from the logged throughput; compile, evals and scoring excluded)", "",
              "| group | runs done | steps done | train s |", "|---|---|---|---|"]
    groups = {"LR sweeps (k = 1, seed 0)": lambda n, r: r["role"] == "sweep",
              "seeds 1, 2 at k = 1": lambda n, r: r["role"] == "seed",
              "E-SPA at 2, 4, 8 × N": lambda n, r: r["role"] == "horizon",
              "joint budget": lambda n, r: n.startswith("jb-"), "grid-edge check": lambda n, r: n.startswith("edge-")}
    for group, belongs in groups.items():
        members = [(n, r) for n, r in runs.items() if belongs(n, r) and r["state"] == "complete"]
        lines.append(f"| {group} | {len(members)} | {sum(r['steps'] for _, r in members)} | "
                     f"{sum(r['train_s'] or 0 for _, r in members):.0f} |")
    lines += ["", "## Every run", "", "| run | state | lr | steps | dev (final) | test | train s |", "|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        m = r["measures"] or {}
        t = r["test"] or {}
        lines.append(f"| {name} | {r['state']} | {'–' if r['lr'] is None else format(r['lr'], 'g')} | {r['steps']} | "
                     f"{_f(m.get('final_eval_loss'))} | {_f(t.get('test_loss'))} | {_f(r['train_s'], 0)} |")
    return "\n".join(lines) + "\n"


def _source_line(src: dict[str, Any]) -> str:
    if not src:
        return "Source numbers: not yet (no run started)."
    return (f"Best possible loss at T = {src['seq_len']}: {src['optimal_loss']:.4f} ± {src['optimal_se']:.4f} nats/word "
            f"(Monte Carlo of exact conditionals); fitted bigram on the same data: {src['bigram_loss']:.4f}.")


def _vs_text(vs: dict[str, float] | None) -> str:
    return "–" if not vs else f"{vs['mean']:+.3f} ± {2 * vs['se']:.3f}"


def _paired_line(title: str, p: dict[str, Any]) -> str:
    if not p["n"]:
        return f"- {title}: no paired runs yet."
    spread = "" if p["n"] < 2 else f" (±2 SE over seeds: [{p['low']:+.3f}, {p['high']:+.3f}], SD {p['sd']:.3f})"
    return f"- {title}: mean {p['mean']:+.3f} over {p['n']} seed(s){spread} → **{p['verdict']}**."
