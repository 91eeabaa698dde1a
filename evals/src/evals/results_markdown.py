"""`results.md`: the suite's results record as Markdown tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .measures import FRACTIONS


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _mean_spread(values: Sequence[float]) -> str:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "–"
    if len(finite) == 1:
        return f"{finite[0]:.3f}"
    return f"{np.mean(finite):.3f} ± {(max(finite) - min(finite)) / 2:.3f}"


def _steps(vs: dict[str, Any] | None, total: int | None) -> str:
    if not vs:
        return "–"
    reached = vs["steps_to_baseline_final"]
    return f"{reached:.0f}" if reached is not None else f"> {total}" if total else "not reached"


def _multiplier(vs: dict[str, Any] | None) -> str:
    if not vs or vs["iteration_multiplier"] is None:
        return "–"
    return f"{vs['iteration_multiplier']:.2f}× (at {vs['matched_baseline_step']:.0f})"


def _init(record: dict[str, Any]) -> tuple[str, str]:
    init = record.get("init") or {}
    cosine = f"{_num(init.get('final_cosine'))} / {_num(init.get('predicted_final_cosine'))}" if init else "–"
    return cosine, _num(init.get("max_kernel_error"), 2) if init else "–"


def _below(value: float | None, line: float | None) -> str:
    if value is None or line is None or not math.isfinite(value):
        return "–"
    return "yes" if value < line else "no"


def results_markdown(results: dict[str, Any]) -> str:
    """Renders `evals.results.collect(...)` (plus optional `command`, `machine`, `date` keys).

    **Returns:** Markdown text: reference lines, the headline table (one row per method at its best
    LR, mean ± half-range over seeds), the LR sweep, the ablations and the longer-horizon runs.
    """
    runs = {r["name"]: r for r in results["runs"]}
    base = results.get("baselines") or {}
    unigram, bigram = base.get("unigram"), base.get("bigram")
    lines = [f"# Suite `{results['suite']}`", "", results.get("description", ""), ""]
    for key in ("command", "machine", "date"):
        if results.get(key):
            lines.append(f"- {key}: `{results[key]}`")
    lines += ["- losses are nats per token on the evaluation text; train losses are smoothed (trailing mean over 10% of the logged steps).",
              f"- reference lines (count models fitted on the training text): unigram **{_num(unigram)}**, "
              f"bigram **{_num(bigram)}**.", ""]
    fractions = " | ".join(f"eval @{int(f * 100)}%" for f in FRACTIONS[:-1])
    lines += ["## Headline: each method at its best learning rate (swept at the final horizon)", "",
              f"| method | best lr | seeds | final train | final eval | {fractions} | below bigram | "
              "steps to Pre-LN final | × steps to match Pre-LN | diverged | init cosine (measured / theory) | "
              "init max kernel error |",
              "|" + "---|" * (11 + len(FRACTIONS) - 1)]
    for method, names in results["headline"].items():
        chosen = [runs[n] for n in names]
        if not chosen:
            lines.append(f"| {method} | pending |" + " |" * (9 + len(FRACTIONS) - 1))
            continue
        m = [r["measures"] for r in chosen]
        first = chosen[0]
        at = " | ".join(_mean_spread([x["eval_at"][str(f)] for x in m]) for f in FRACTIONS[:-1])
        cosine, error = _init(first)
        final_eval = _mean_spread([x["final_eval_loss"] for x in m])
        done, total = results.get("sweep_progress", {}).get(method, (1, 1))
        lr_cell = f"{first['lr']:g}" + (f" ({done}/{total} LRs run)" if done < total else "")
        lines.append(
            f"| {method} | {lr_cell} | {len(chosen)} | {_mean_spread([x['final_train_loss'] for x in m])} | "
            f"{final_eval} | {at} | {_below(first['measures']['final_eval_loss'], bigram)} | "
            f"{_steps(first['vs_baseline'], first['measures']['last_step'])} | {_multiplier(first['vs_baseline'])} | "
            f"{'yes' if any(x['diverged'] for x in m) else 'no'} | {cosine} | {error} |")
    lines += ["", "## Learning-rate sweep (seed 0, full budget)", "",
              "| run | method | lr | state | final train | final eval | diverged |", "|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        if r["role"] != "sweep":
            continue
        m = r["measures"] or {}
        lines.append(f"| {r['name']} | {r['method']} | {r['lr'] if r['lr'] is not None else '–'} | {r['state']} | "
                     f"{_num(m.get('final_train_loss'))} | {_num(m.get('final_eval_loss'))} | "
                     f"{'yes' if m.get('diverged') else 'no' if m else '–'} |")
    ablations = [r for r in results["runs"] if r["role"] == "ablation"]
    if ablations:
        lines += ["", "## Ablations (at the method's best learning rate, seed 0)", "",
                  "| run | change | lr | state | final eval | × steps to match Pre-LN | diverged | "
                  "init cosine (measured / theory) |", "|---|---|---|---|---|---|---|---|"]
        for r in ablations:
            m = r["measures"] or {}
            lines.append(f"| {r['name']} | {r['label']} | {r['lr'] if r['lr'] is not None else '–'} | {r['state']} | "
                         f"{_num(m.get('final_eval_loss'))} | {_multiplier(r['vs_baseline'])} | "
                         f"{'yes' if m.get('diverged') else 'no' if m else '–'} | {_init(r)[0]} |")
    horizon = [r for r in results["runs"] if r["role"] == "horizon"]
    if horizon:
        lines += ["", "## Longer horizon (the 1×-budget best learning rate, seed 0)", "",
                  "Step to reach Pre-LN's final eval loss: the first eval (interpolated) at or below the loss of "
                  "Pre-LN's best-LR run at the end of the 1× budget; × = that step over the 1× budget.", "",
                  "| run | change | lr | state | final eval | lowest eval (step) | lowest below bigram | "
                  "step to reach Pre-LN's final | × steps to match Pre-LN | diverged |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in horizon:
            m = r["measures"] or {}
            lowest = min(r["eval_curve"], key=lambda point: point[1]) if r["eval_curve"] else None
            lowest_cell = f"{lowest[1]:.3f} ({lowest[0]})" if lowest else "–"
            lines.append(f"| {r['name']} | {r['label']} | {r['lr'] if r['lr'] is not None else '–'} | {r['state']} | "
                         f"{_num(m.get('final_eval_loss'))} | {lowest_cell} | "
                         f"{_below(lowest[1], bigram) if lowest else '–'} | "
                         f"{_steps(r['vs_baseline'], m.get('last_step'))} | {_multiplier(r['vs_baseline'])} | "
                         f"{'yes' if m.get('diverged') else 'no' if m else '–'} |")
    troubled = [r for r in results["runs"] if r.get("message")]
    if troubled:
        lines += ["", "## Runs that failed or stopped on a non-finite loss", ""]
        lines += [f"- `{r['name']}` ({r['state']}): {r['message']}" for r in troubled]
    return "\n".join(lines) + "\n"
