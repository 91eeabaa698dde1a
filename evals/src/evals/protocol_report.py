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

from .protocol_suite import METHODS, SKIPLESS, TUNED_ESPA, TUNED_ESPA_KNOBS
from train.metrics import read_metrics

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
    for rec in read_metrics(metrics):
        if rec.get("tokens_per_s"):
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
    best = {m: best_lr(suite, out, m, provisional=True) for m in METHODS if any(s.method == m for s in suite.runs)}

    n_steps = suite.record.run.steps

    def name_of(method: str, k: int, seed: int, model: dict | None = None) -> str | None:
        """The run of `method` (with the knobs `model`, default none) at k·N steps and `seed` with the method's
        dev-chosen LR (seed 0 at k = 1: the LR sweep's run, or the knob check's run for non-default knobs)."""
        lr = best.get(method)
        if lr is None:
            return None
        model = model or {}
        if k == 1 and seed == 0:
            role = "ablation" if model else "sweep"
            return next((s.name for s in suite.runs if s.role == role and s.method == method and (s.model or {}) == model
                         and (s.lr == lr or (model and s.lr_from == method))
                         and (not model or s.name.startswith("knob-"))), None)
        return next((s.name for s in suite.runs if s.role in ("seed", "horizon") and s.method == method
                     and s.seed == seed and (s.train or {}).get("steps", n_steps) == k * n_steps
                     and (s.model or {}) == model and (s.lr_from == method or s.lr == lr)), None)

    def test_loss(name: str | None) -> float | None:
        t = None if name is None else runs.get(name, {}).get("test")
        return None if t is None else t["test_loss"]

    def per_sequence(name):
        t = _test(out, name) if name else None
        return None if t is None else np.asarray(t["per_sequence"])

    seeds = sorted({s.seed for s in suite.runs})
    ks = sorted({1} | {(s.train or {}).get("steps", n_steps) // n_steps for s in suite.runs if s.role == "horizon"})
    preln = {seed: test_loss(name_of("preln", 1, seed)) for seed in seeds}
    preln_other = {}
    for seed in seeds:
        other = [s for s in suite.runs if s.method == "preln" and s.lr is not None and best.get("preln") is not None
                 and s.lr != best["preln"] and s.seed == seed and not s.name.startswith("edge-")]
        preln_other[seed] = test_loss(other[0].name) if other else None
    claim2, curves = {}, {m: (m, None) for m in SKIPLESS if m in best}
    if any((s.model or {}) == TUNED_ESPA_KNOBS and s.role == "horizon" for s in suite.runs):
        curves[TUNED_ESPA] = ("vanilla-espa", TUNED_ESPA_KNOBS)
    for key, (method, model) in curves.items():
        claim2[key] = []
        for seed in seeds:
            curve = {k: test_loss(name_of(method, k, seed, model)) for k in ks}
            p, o = preln[seed], preln_other[seed]
            claim2[key].append(dict(
                seed=seed, curve=curve, preln=p, preln_other_lr=o,
                multiplier=None if p is None else crossing_multiplier(curve, p),
                multiplier_other_lr=None if o is None else crossing_multiplier(curve, o),
                gap_at={k: (None if curve[k] is None or p is None else curve[k] - p) for k in ks}))
    # each model's seed-0 k-curve against each Pre-LN seed (the spread from Pre-LN's seed alone)
    vs_preln_seeds = {m: {seed: crossing_multiplier(rows[0]["curve"], p) for seed, p in preln.items() if p is not None}
                      for m, rows in claim2.items() if rows and any(v is not None for v in rows[0]["curve"].values())}
    claim1_diffs = [_diff(test_loss(name_of("nf-espa", 1, s)), test_loss(name_of("preln", 1, s))) for s in seeds]
    at_n = {key: paired([c["gap_at"][1] for c in rows]) for key, rows in claim2.items()}
    prefix = f"d{suite.record.model.depth}-" if suite.name.startswith("claims-d") else "jb-"
    joint = _joint_budget(suite, runs, test_loss, prefix)
    reference = joint.get(prefix + JOINT_REFERENCE)
    for setting, entry in joint.items():  # seed 0 also paired over the test sequences
        a = per_sequence(entry["runs"].get(0))
        b = None if reference is None else per_sequence(reference["runs"].get(0))
        if a is not None and b is not None and setting != prefix + JOINT_REFERENCE:
            d = a - b
            entry["seed0_vs_reference_sequences"] = dict(mean=float(d.mean()), se=float(d.std(ddof=1) / math.sqrt(d.size)))
    edge = {}
    for spec in suite.runs:
        if spec.name.startswith("edge-") and runs[spec.name]["measures"] and runs[spec.name]["state"] == "complete":
            chosen = name_of(spec.method, 1, 0)
            chosen_dev = (runs.get(chosen) or {}).get("measures") or {}
            entry = dict(method=spec.method, lr=spec.lr, dev=runs[spec.name]["measures"]["final_eval_loss"],
                         test=test_loss(spec.name), chosen_lr=best[spec.method],
                         chosen_dev=chosen_dev.get("final_eval_loss"), chosen_test=test_loss(chosen))
            if spec.method == "preln" and claim2.get("vanilla-espa") and entry["test"] is not None:
                entry["multiplier"] = crossing_multiplier(claim2["vanilla-espa"][0]["curve"], entry["test"])
            edge[spec.name] = entry
    knobs = {}
    default = name_of("vanilla-espa", 1, 0)
    for spec in suite.runs:
        if spec.name.startswith("knob-") or (spec.name == default and any(s.name.startswith("knob-") for s in suite.runs)):
            r = runs[spec.name]
            if r["measures"] and r["state"] == "complete":
                knobs[spec.name] = dict(model=spec.model or {}, lr=r["lr"], dev=r["measures"]["final_eval_loss"],
                                        test=test_loss(spec.name), default=spec.name == default)
    return dict(suite=suite.name, description=suite.description, depth=suite.record.model.depth, runs=runs,
                best_lr=best, claim2=claim2, edge=edge, knobs=knobs,
                claim2_multiplier={m: _spread([c["multiplier"] for c in rows]) for m, rows in claim2.items()},
                claim2_multiplier_other_lr={m: _spread([c["multiplier_other_lr"] for c in rows])
                                            for m, rows in claim2.items()},
                claim2_seed0_vs_preln_seeds=vs_preln_seeds,
                claim1=paired(claim1_diffs), claim1_diffs=claim1_diffs, skipless_at_n=at_n,
                joint=joint, source=_source_numbers(out))


JOINT_REFERENCE = "espa-eta0.1"


def _joint_budget(suite, runs: dict, test_loss, prefix: str) -> dict[str, Any]:
    """Each joint-budget setting over its seeds (`<prefix><setting>` is seed 0, `<prefix><setting>-s<k>` seed k): dev
    and test per seed and their means, and the paired difference to E-SPA η = 0.1 over the seeds both have."""
    settings: dict[str, dict[int, str]] = {}
    for spec in suite.runs:
        if spec.name.startswith(prefix):
            setting = spec.name.rsplit("-s", 1)[0] if spec.seed else spec.name
            settings.setdefault(setting, {})[spec.seed] = spec.name
    joint = {}
    for setting, by_seed in settings.items():
        done = {seed: name for seed, name in by_seed.items()
                if runs[name]["measures"] and runs[name]["state"] == "complete"}
        if not done:
            continue
        dev = {seed: runs[name]["measures"]["final_eval_loss"] for seed, name in done.items()}
        test = {seed: test_loss(name) for seed, name in done.items()}
        got = [v for v in test.values() if v is not None]
        diverged = sorted(seed for seed, name in by_seed.items() if runs[name]["state"] == "diverged")
        joint[setting] = dict(lr=runs[next(iter(done.values()))]["lr"], seeds=sorted(done), runs=done, dev=dev, test=test,
                              diverged=diverged,
                              dev_mean=float(np.mean(list(dev.values()))),
                              test_mean=float(np.mean(got)) if got else None)
    reference = joint.get(prefix + JOINT_REFERENCE)
    for setting, entry in joint.items():
        if reference is not None and setting != prefix + JOINT_REFERENCE:
            entry["vs_reference"] = paired([_diff(entry["test"].get(s), reference["test"].get(s)) for s in entry["seeds"]])
    return joint


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
    if not str(data).startswith("generated"):
        return dict(data=data, real_text=True)  # real text: no known optimum
    previous = out / "results.json"  # the Monte Carlo estimate takes a minute: reuse one made for the same source
    if previous.is_file():
        known = json.loads(previous.read_text()).get("source") or {}
        if "optimal_loss" in known and (known.get("data"), known.get("vocab_size"), known.get("seq_len")) == (
                data, vocab, seq_len):
            return known
    try:
        optimal, se = skipless_data.generated_optimal_loss(data, vocab, seq_len)
        source, base = skipless_data.generated_source(data, vocab)
    except OSError as error:  # a report from copied records, away from the text the source was fitted to
        return dict(data=data, unavailable=f"{type(error).__name__}: {error}")
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
    names = {"vanilla-espa": "E-SPA", "vanilla-uspa": "U-SPA", "vanilla-vsi": "Value-SkipInit",
             "espa-g0.8": "E-SPA (γ_L = 0.8, the knob chosen on dev)"}
    for method, rows in record["claim2"].items():
        if not any(v is not None for c in rows for k, v in c["curve"].items() if k != 1):
            continue  # no run beyond N: nothing to read a multiplier from (the paired lines below say the rest)
        name = names.get(method, method)
        ks = sorted(rows[0]["curve"])
        lines += [f"## Claim 2: × iterations for vanilla {name} to reach Pre-LN (test loss, final models)", "",
                  "| seed | Pre-LN (N) | Pre-LN other LR | " + " | ".join(f"{k}×N" for k in ks)
                  + " | multiplier | multiplier vs other LR |", "|---|---|---|" + "---|" * len(ks) + "---|---|"]
        for c in rows:
            measured = [k for k, v in c["curve"].items() if v is not None]
            mult = lambda m, c=c, measured=measured: (
                "–" if c["preln"] is None or not measured else
                f"{m:.2f}" if m is not None else f"> {max(measured)} (not reached by k ≤ {max(measured)})")
            lines.append(f"| {c['seed']} | {_f(c['preln'])} | {_f(c['preln_other_lr'])} | "
                         + " | ".join(_f(c["curve"][k]) for k in ks) + f" | {mult(c['multiplier'])} | "
                         + ("–" if c["preln_other_lr"] is None else mult(c["multiplier_other_lr"])) + " |")
        spread, other = record["claim2_multiplier"][method], record["claim2_multiplier_other_lr"][method]
        if spread["n"]:
            lines += ["", f"Multiplier over the {spread['n']} seed(s) reached: mean {spread['mean']:.2f} "
                      f"({spread['low']:.2f}–{spread['high']:.2f}); against Pre-LN at its other LR: "
                      + ("–" if not other["n"] else f"mean {other['mean']:.2f} ({other['low']:.2f}–{other['high']:.2f})")
                      + (f"; {len(rows) - spread['n']} seed(s) not reached or not run" if spread["n"] < len(rows) else "")
                      + "."]
        vs = (record.get("claim2_seed0_vs_preln_seeds") or {}).get(method) or {}
        if vs:
            lines += ["", f"{name} seed 0's k-curve against each Pre-LN seed (the spread from Pre-LN's seed alone): "
                      + ", ".join(f"seed {s}: {'not reached' if m is None else f'{m:.2f}'}" for s, m in sorted(vs.items()))
                      + "."]
        lines.append("")
    lines += [_paired_line("Claim 1 (norm-free residual E-SPA − Pre-LN at N, test loss)", record["claim1"])]
    lines += [_paired_line(f"Vanilla {names.get(m, m)} − Pre-LN at N (test loss)", p)
              for m, p in record["skipless_at_n"].items() if p["n"]]
    if record["joint"]:
        lines += _joint_lines(record)
    if record.get("edge"):
        lines += _edge_lines(record)
    if len(record.get("knobs") or {}) > 1:
        lines += _knob_lines(record["knobs"])
    lines += ["", "## Cost (seconds inside training steps, from the logged throughput; compile, evals and scoring excluded)", "",
              "| group | runs done | steps done | train s |", "|---|---|---|---|"]
    joint = ("jb-", f"d{record.get('depth', 16)}-")
    groups = {"LR sweeps (k = 1, seed 0)": lambda n, r: r["role"] == "sweep",
              "seeds 1, 2 at k = 1": lambda n, r: r["role"] == "seed",
              "k·N runs (k = 2, 4, 8)": lambda n, r: r["role"] == "horizon",
              "joint budget": lambda n, r: n.startswith(joint) and r["role"] == "ablation",
              "grid-edge and LR checks": lambda n, r: n.startswith("edge-") or "-lr" in n and r["role"] == "ablation",
              "knob checks": lambda n, r: n.startswith("knob-"), "all runs": lambda n, r: True}
    for group, belongs in groups.items():
        members = [(n, r) for n, r in runs.items() if belongs(n, r) and r["state"] in ("complete", "diverged")]
        if members:
            lines.append(f"| {group} | {len(members)} | {sum(r['steps'] for _, r in members)} | "
                         f"{sum(r['train_s'] or 0 for _, r in members):.0f} |")
    lines += ["", "## Every run", "", "| run | state | lr | steps | dev (final) | test | train s |", "|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        m = r["measures"] or {}
        t = r["test"] or {}
        lines.append(f"| {name} | {r['state']} | {'–' if r['lr'] is None else format(r['lr'], 'g')} | {r['steps']} | "
                     f"{_f(m.get('final_eval_loss'))} | {_f(t.get('test_loss'))} | {_f(r['train_s'], 0)} |")
    return "\n".join(lines) + "\n"


def _joint_lines(record: dict[str, Any]) -> list[str]:
    lines = ["", f"## Matched joint kernel budget, depth {record.get('depth', 16)} (vanilla E-SPA's dev-selected LR)", "",
              "| setting | LR | seeds | dev (mean) | test per seed | test (mean) | test − E-SPA η=0.1, paired over seeds "
              "| seed 0: paired over test sequences |", "|---|---|---|---|---|---|---|---|"]
    for setting, e in sorted(record["joint"].items()):
        p = e.get("vs_reference")
        paired_text = "–" if not p or not p["n"] else (
            f"{p['mean']:+.3f}" + ("" if p["n"] < 2 else f" [{p['low']:+.3f}, {p['high']:+.3f}]") + f" ({p['verdict']})")
        per_seed = ", ".join(_f(e["test"][s]) for s in sorted(e["test"]))
        diverged = e.get("diverged") or []
        seeds = f"{len(e['seeds'])}" + (f" (+ seed {', '.join(map(str, diverged))} diverged)" if diverged else "")
        lines.append(f"| {setting} | {e['lr']:g} | {seeds} | {_f(e['dev_mean'])} | {per_seed} | "
                     f"{_f(e['test_mean'])} | {paired_text} | {_vs_text(e.get('seed0_vs_reference_sequences'))} |")
    return lines


def _edge_lines(record: dict[str, Any]) -> list[str]:
    lines = ["", "## Grid-edge check (seed 0): one LR step past the grid's end where each chosen LR sits", "",
              "| run | LR | dev | test | chosen LR | its dev | its test | E-SPA multiplier vs this Pre-LN |",
              "|---|---|---|---|---|---|---|---|"]
    for name, e in record.get("edge", {}).items():
        mult = e.get("multiplier", "n/a")
        mult_text = "–" if e["method"] != "preln" else (f"{mult:.2f}" if isinstance(mult, float) else "not reached")
        lines.append(f"| {name} | {e['lr']:g} | {_f(e['dev'])} | {_f(e['test'])} | {e['chosen_lr']} | "
                     f"{_f(e['chosen_dev'])} | {_f(e['chosen_test'])} | {mult_text} |")
    return lines


def _knob_lines(knobs: dict[str, dict[str, Any]]) -> list[str]:
    best = min(knobs, key=lambda n: knobs[n]["dev"])
    lines = ["", "## Knob check on dev (vanilla E-SPA, seed 0, its dev LR; one knob moved from the default at a time)", "",
             "| run | knobs | dev | test |", "|---|---|---|---|"]
    for name, e in sorted(knobs.items(), key=lambda kv: kv[1]["dev"]):
        knob = "defaults (η 0.5, γ_L 0.2)" if e["default"] else ", ".join(f"{k} {v:g}" for k, v in e["model"].items())
        lines.append(f"| {name} | {knob} | {_f(e['dev'])}{' (best on dev)' if name == best else ''} | {_f(e['test'])} |")
    return lines


def _source_line(src: dict[str, Any]) -> str:
    if not src:
        return "Source numbers: not yet (no run started)."
    if src.get("unavailable"):
        return (f"Source numbers: not computed here, the text the source was fitted to is missing ({src['unavailable']}); "
                "run the report where it is.")
    if src.get("real_text"):
        return f"Real text ({src['data']}): its best possible loss is unknown; read the losses side by side."
    return (f"Best possible loss at T = {src['seq_len']}: {src['optimal_loss']:.4f} ± {src['optimal_se']:.4f} nats/word "
            f"(Monte Carlo of exact conditionals); fitted bigram on the same data: {src['bigram_loss']:.4f}.")


def _vs_text(vs: dict[str, float] | None) -> str:
    return "–" if not vs else f"{vs['mean']:+.3f} ± {2 * vs['se']:.3f}"


def _paired_line(title: str, p: dict[str, Any]) -> str:
    if not p["n"]:
        return f"- {title}: no paired runs yet."
    spread = "" if p["n"] < 2 else f" (±2 SE over seeds: [{p['low']:+.3f}, {p['high']:+.3f}], SD {p['sd']:.3f})"
    return f"- {title}: mean {p['mean']:+.3f} over {p['n']} seed(s){spread} → **{p['verdict']}**."
