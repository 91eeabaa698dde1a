"""`loss_curves.png`: train and eval loss of every method at its best LR, with count-model lines."""

from __future__ import annotations

import math
import pathlib
from typing import Any

from .measures import smoothed


def _reference_lines(axis, baselines: dict[str, Any] | None) -> None:
    for key, style in (("unigram", ":"), ("bigram", "--")):
        value = (baselines or {}).get(key)
        if value is not None and math.isfinite(value):
            axis.axhline(value, color="grey", linestyle=style, linewidth=1, label=f"{key} ({value:.2f})")


def plot_loss_curves(results: dict[str, Any], path: str | pathlib.Path, *, ablations: bool = True) -> pathlib.Path:
    """Draws three panels: smoothed train loss and eval loss of each method's seed-0 best-LR run (and,
    dotted, its longer-horizon run), and the eval loss of the ablations, all against steps, with
    unigram/bigram lines.

    **Arguments:** `results` from `evals.results.collect`; `path` of the PNG; `ablations=False` leaves out the
    third panel (a comparison of a few runs).

    **Returns:** the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {r["name"]: r for r in results["runs"]}
    if ablations:
        figure, (train_ax, eval_ax, ablation_ax) = plt.subplots(1, 3, figsize=(18, 5.5), constrained_layout=True)
    else:
        figure, (train_ax, eval_ax) = plt.subplots(1, 2, figsize=(12, 5.5), constrained_layout=True)
        ablation_ax = None
    colours = plt.get_cmap("tab10")
    ceiling = []
    for index, (method, names) in enumerate(results["headline"].items()):
        if not names:
            continue
        run = runs[names[0]]
        style = dict(color=colours(index % 10), linestyle="-" if not method.startswith("ln-") else "--")
        train = smoothed(run["train_curve"])
        if train:
            train_ax.plot([s for s, _ in train], [v for _, v in train], label=f"{method} (lr {run['lr']:g})", **style)
            ceiling.append(train[0][1])
        if run["eval_curve"]:
            eval_ax.plot(*zip(*run["eval_curve"]), marker="o", markersize=3, label=method, **style)
    for index, (method, _) in enumerate(results["headline"].items()):
        for run in (r for r in results["runs"] if r["role"] == "horizon" and r["method"] == method and r["eval_curve"]):
            eval_ax.plot(*zip(*run["eval_curve"]), linestyle=":", color=colours(index % 10), label=run["label"])
    if ablation_ax is not None:
        ablation_runs = [r for r in results["runs"] if r["role"] == "ablation" and r["eval_curve"]]
        for index, run in enumerate(ablation_runs):
            ablation_ax.plot(*zip(*run["eval_curve"]), marker="o", markersize=3, color=colours(index % 10),
                             label=run["label"])
        best = results["headline"].get("vanilla-espa") or []
        if best and runs[best[0]]["eval_curve"]:
            ablation_ax.plot(*zip(*runs[best[0]]["eval_curve"]), color="black", linewidth=2, label="vanilla-espa (default)")
    panels = [axis for axis in (train_ax, eval_ax, ablation_ax) if axis is not None]
    titles = ("train loss (smoothed)", "eval loss", "eval loss: ablations")
    for axis, title in zip(panels, titles):
        _reference_lines(axis, results.get("baselines"))
        axis.set_title(f"{results['suite']}: {title}")
        axis.set_xlabel("step")
        axis.set_ylabel("nats per token")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7)
    finite = [c for c in ceiling if math.isfinite(c)]
    unigram = (results.get("baselines") or {}).get("unigram")
    if finite:  # keep a diverged run's loss spike from flattening every other curve
        top = max(finite) if unigram is None else min(max(finite), 1.5 * unigram)
        for axis in panels:
            axis.set_ylim(top=top + 0.25)
    path = pathlib.Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
