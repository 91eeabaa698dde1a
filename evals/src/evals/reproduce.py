"""`python -m evals.reproduce --suite NAME --data PATH --out DIR`: run a method-comparison suite.

Runs every training run of the suite in order (LR sweeps first), skipping runs already finished
and resuming interrupted ones, so the same command continues an interrupted suite. Then writes
`DIR/results.json`, `DIR/results.md` and `DIR/loss_curves.png`. `--dry-run` prints the run list and
the equivalent `python -m train.main` command of every run (the way to launch the accelerator-scale
suites `wt103-36l` and `c4-72l` on a cluster, one run per job).

Exit codes: 0 done, 1 interrupted (run it again to continue), 2 bad input.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import shlex
import sys
from typing import Any, Literal

from train.cli_parse import parse
from train.xla_env import avoid_cpu_eigen_pool_hang, reexec_with_hugepage_malloc

from .suites import SUITES, RunSpec, Suite, get_suite
from .one_line import parse_command_line, refuse

RESULTS_JSON, RESULTS_MD, LOSS_PNG = "results.json", "results.md", "loss_curves.png"


def _lr_text(suite: Suite, out: pathlib.Path, spec: RunSpec) -> str:
    if spec.lr is not None:
        return f"{spec.lr:g}"
    from .results import best_lr

    best = best_lr(suite, out, spec.lr_from) if (out / "runs").is_dir() else None
    return f"{best:g}" if best is not None else f"<best of {spec.lr_from} sweep>"


def train_command(suite: Suite, spec: RunSpec, lr: str, data: str, out: pathlib.Path) -> str:
    """**Returns:** the `python -m train.main ...` command line equivalent to one run."""
    from .suite_runs import METHODS

    if not isinstance(suite.preset, str):
        raise ValueError(f"suite {suite.name} has a preset record of its own, not a named one: no train.main command")
    fields: dict[str, Any] = {**METHODS[spec.method], **spec.model, **spec.train}
    multipliers = fields.pop("lr_multipliers", {})
    flags = [f"--{k.replace('_', '-')} {v}" for k, v in fields.items()]
    flags += [f"--lr-mult {group}={factor:g}" for group, factor in multipliers.items()]
    text = f"--data {shlex.quote(data)}"
    if suite.train_file and data != "embedded" and not data.startswith("hf:"):
        text = (f"--data {shlex.quote(os.path.join(data, suite.train_file))} "
                f"--eval-data {shlex.quote(os.path.join(data, suite.eval_file))}")
    tokenizer = f" --tokenizer {suite.tokenizer}" if suite.tokenizer else ""
    return (f"python -m train.main --preset {suite.preset} {' '.join(flags)} --lr {lr} --seed {spec.seed} "
            f"{text}{tokenizer} --data-dir {shlex.quote(str(out / 'data'))} --out {shlex.quote(str(out / 'runs' / spec.name))}")


def dry_run(suite: Suite, data: str, out: pathlib.Path) -> str:
    """**Returns:** the run list of `suite` (one block per run: role, method, LR, command)."""
    lines = [f"suite {suite.name}: {len(suite.runs)} runs. {suite.description}"]
    for index, spec in enumerate(suite.runs, 1):
        lr = _lr_text(suite, out, spec)
        lines.append(f"[{index:2d}] {spec.name}  ({spec.role}, {spec.method}, seed {spec.seed}, lr {lr})")
        lines.append(f"     {train_command(suite, spec, lr, data, out)}")
    return "\n".join(lines)


def _baselines(info, out: pathlib.Path) -> dict[str, Any]:
    import skipless_data

    from .baselines import count_baselines

    path = out / "baselines.json"
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("fingerprint") == info.fingerprint:
            return cached
    result = count_baselines(skipless_data.split_tokens(info, "train"), skipless_data.split_tokens(info, "eval"),
                             info.vocab_size).to_dict()
    result["fingerprint"] = info.fingerprint
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def _init_summaries(suite: Suite, out: pathlib.Path) -> dict[str, dict[str, float]]:
    """Init signal-prop summary per started run, computed once per distinct model (cached on disk)."""
    from skipless_models import ModelConfig
    from skipless_models.config import EXECUTION_FIELDS

    from .init_summary import init_signal_summary

    cache_path = out / "init_summaries.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    found = {}
    for spec in suite.runs:
        config_path = out / "runs" / spec.name / "config.json"
        if not config_path.is_file():
            continue
        model = json.loads(config_path.read_text())["model"]
        key = json.dumps({k: v for k, v in model.items() if k not in EXECUTION_FIELDS}, sort_keys=True)
        if key not in cache:
            try:
                cache[key] = init_signal_summary(ModelConfig.from_dict(model))
            except ValueError as error:  # a model the trainer rejected too (its run is marked failed)
                cache[key] = {"error": " ".join(str(error).split())}
            cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
        found[spec.name] = cache[key]
    return found


def _machine() -> str:
    import jax

    device = jax.devices()[0]
    return f"{os.cpu_count()} CPU cores, {device.platform} ({device.device_kind}), jax {jax.__version__}"


def write_results(suite: Suite, out: pathlib.Path, *, baselines: dict[str, Any] | None, command: str) -> dict[str, Any]:
    """Collects the suite and writes results.json, results.md and loss_curves.png into `out`.

    **Returns:** the results record.
    """
    from .plots import plot_loss_curves
    from .results import collect
    from .results_markdown import results_markdown

    results = collect(suite, out, baselines=baselines, init=_init_summaries(suite, out))
    results.update(command=command, machine=_machine(),
                   date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    (out / RESULTS_JSON).write_text(json.dumps(results, indent=1, sort_keys=True, default=float) + "\n")
    (out / RESULTS_MD).write_text(results_markdown(results))
    plot_loss_curves(results, out / LOSS_PNG)
    return results


def reproduce(suite: Suite, data: str, out: str | pathlib.Path, *, only: list[str] | None = None,
              stop_after: int | None = None, command: str = "") -> dict[str, Any]:
    """Runs (or continues) `suite` and writes its results.

    **Arguments:**

    - `suite`: a `Suite` (see `evals.suites.SUITES`).
    - `data`: "embedded", a text file, or a folder with the suite's train/eval files.
    - `out`: the suite folder (`runs/`, `data/`, results files).
    - `only`: run only these run names (others are still reported if present).
    - `stop_after`: stop each run after this many steps of this call (tests of resumption).
    - `command`: the command line to record in the results.

    **Returns:** `{"outcomes": {run: "complete" | "skipped" | "diverged" | "failed" | "stopped" |
    "waiting"},
    "results": the results record}`. Stops at the first "stopped" run.
    """
    import skipless_data

    from .suite_runs import resolve_data, run_specs

    out = pathlib.Path(out)
    unknown = sorted(set(only or []) - {r.name for r in suite.runs})
    if unknown:
        raise ValueError(f"--only: suite {suite.name} has no runs {unknown}; see --dry-run for the names.")
    paths = resolve_data(suite, data, out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    info = skipless_data.prepare_dataset(None if paths.train == "embedded" else paths.train, suite.tokenizer,
                                         paths.data_dir, seq_len=suite.record.model.seq_len, eval_data=paths.eval,
                                         show_progress=False)
    baselines = _baselines(info, out)
    outcomes = run_specs(suite, out, paths, only=only, stop_after=stop_after)
    results = write_results(suite, out, baselines=baselines, command=command)
    return {"outcomes": outcomes, "results": results}


SuiteName = Literal[tuple(SUITES)]  # type: ignore[valid-type]


@dataclasses.dataclass(frozen=True)
class ReproduceOptions:
    """Options of `python -m evals.reproduce` (each field is a flag)."""

    suite: SuiteName  # type: ignore[valid-type]
    """the suite to run"""
    data: str | None = None
    """'embedded', a text file, or a folder with the suite's files (WikiText-2: valid.txt, test.txt)"""
    out: str | None = None
    """suite folder (none: runs/suite-<NAME>)"""
    only: str | None = None
    """comma-separated run names to run (none: all)"""
    dry_run: bool = False
    """print the runs and their train.main commands, run nothing"""
    report_only: bool = False
    """rewrite the results files from the runs present"""
    force: bool = False
    """run an accelerator-scale suite here anyway"""


def parse_options(argv: list[str]) -> ReproduceOptions:
    """**Returns:** the options of a command line; raises `UsageError` (one line) for a bad one."""
    return parse(ReproduceOptions, argv, prog="python -m evals.reproduce", description=__doc__.split("\n")[0])



def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    avoid_cpu_eigen_pool_hang()  # before JAX starts (see train.xla_env)
    args = parse_command_line(parse_options, argv)
    if args is None:
        return 2
    try:
        suite = get_suite(args.suite)
        out = pathlib.Path(args.out or f"runs/suite-{suite.name}")
        data = args.data or "<DATA>"
        if args.dry_run:
            print(dry_run(suite, data, out))
            return 0
        command = "python -m evals.reproduce " + " ".join(shlex.quote(a) for a in argv)
        if args.report_only:
            if not (out / "runs").is_dir():
                raise ValueError(f"--report-only: {out} holds no suite runs; pass the --out of a suite.")
            baselines_path = out / "baselines.json"
            baselines = json.loads(baselines_path.read_text()) if baselines_path.is_file() else None
            write_results(suite, out, baselines=baselines, command=command)
            print(f"wrote {out / RESULTS_MD}", flush=True)
            return 0
        if args.data is None:
            raise ValueError("--data is required: pass 'embedded', a text file, or the WikiText-2 folder.")
        if not suite.runnable_here and not args.force:
            raise ValueError(f"suite {suite.name} is sized for accelerator clusters; print its commands with "
                             "--dry-run, or pass --force to run it on this machine.")
        only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
        done = reproduce(suite, args.data, out, only=only, command=command)
    except (ValueError, FileNotFoundError) as error:
        return refuse(error)
    print(f"wrote {out / RESULTS_JSON}, {out / RESULTS_MD}, {out / LOSS_PNG}", flush=True)
    return 1 if "stopped" in done["outcomes"].values() else 0


if __name__ == "__main__":
    reexec_with_hugepage_malloc("evals.reproduce", sys.argv[1:])  # see train.xla_env
    sys.exit(main())
