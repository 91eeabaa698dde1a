"""Turning a suite's `RunSpec` into a `TrainConfig` and running it resumably.

Each run lives in `OUT/runs/<name>/` (the trainer's run folder). A run is finished when its
`suite_status.json` exists (written after the trainer returns, when it stops on a non-finite loss,
or when it rejects the configuration); such runs are skipped. A folder without that file is resumed from its newest checkpoint; a
folder the trainer created but never checkpointed is moved aside to `<name>.abandoned-<n>` and the
run starts again.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import skipless_models

from .suites import METHODS, RunSpec, Suite

STATUS_FILE = "suite_status.json"


@dataclasses.dataclass(frozen=True)
class DataPaths:
    """Where a suite's text comes from: `train` ("embedded", a file or folder), `eval` (file or
    `None`: the trainer holds out a tail), `data_dir` (shared tokenised shards of every run)."""

    train: str
    eval: str | None
    data_dir: str


def resolve_data(suite: Suite, data: str, out: pathlib.Path) -> DataPaths:
    """Maps `--data` onto training and evaluation text for `suite`.

    **Arguments:** `suite`; `data`: "embedded", "hf:NAME" (a Hugging Face dataset; its tail is held
    out), a text file (likewise), or a folder holding the suite's `train_file` / `eval_file` (e.g.
    WikiText-2's valid.txt / test.txt); `out`.

    **Returns:** `DataPaths`; raises `ValueError` naming what is missing.
    """
    data_dir = str(out / "data")
    if data == "embedded" or data.startswith("hf:"):
        return DataPaths(data, None, data_dir)
    path = pathlib.Path(data)
    if path.is_file():
        return DataPaths(str(path.resolve()), None, data_dir)
    if not path.is_dir():
        raise ValueError(f"--data {data}: no such file or folder; pass 'embedded', a text file, or a folder with "
                         f"{suite.train_file or 'text files'}.")
    if not suite.train_file:
        return DataPaths(str(path.resolve()), None, data_dir)
    files = [path / suite.train_file, path / suite.eval_file]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ValueError(f"--data {data}: suite {suite.name} needs {missing}; pass the WikiText-2 folder "
                         f"(with {suite.train_file} and {suite.eval_file}) or a single text file.")
    return DataPaths(str(files[0].resolve()), str(files[1].resolve()), data_dir)


def model_config(suite: Suite, spec: RunSpec) -> skipless_models.ModelConfig:
    """**Returns:** the run's `ModelConfig`: the suite's preset, then the method, then the run's own fields."""
    return suite.record.model.replace(**{**METHODS[spec.method], **spec.model})


def train_config(suite: Suite, spec: RunSpec, lr: float, data: DataPaths, run_dir: pathlib.Path):
    """The run's `TrainConfig`: the suite's preset (run shape), the method's gain multiplier
    (`train.presets.method_defaults`), the run's own fields; LR already resolved.

    **Returns:** a `train.TrainConfig`.
    """
    from train.config import TrainConfig
    from train.presets import method_defaults

    model = model_config(suite, spec)
    fields: dict[str, Any] = dict(suite.record.run.to_dict(), lr_multipliers=method_defaults(model)["lr_multipliers"])
    fields.update(spec.train)
    return TrainConfig(model=model, preset=suite.preset_name, data=data.train, eval_data=data.eval,
                       tokenizer=suite.tokenizer, data_dir=data.data_dir, out=str(run_dir), seed=spec.seed,
                       lr=lr, **fields)


def read_status(run_dir: pathlib.Path) -> dict[str, Any] | None:
    """**Returns:** the run's `suite_status.json` (`state`: "complete" | "diverged" | "failed"), or `None`."""
    path = run_dir / STATUS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _write_status(run_dir: pathlib.Path, **status: Any) -> None:
    partial = run_dir / (STATUS_FILE + ".tmp")
    partial.write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")
    partial.replace(run_dir / STATUS_FILE)


def mark_failed(run_dir: pathlib.Path, error: Exception) -> str:
    """Records that a run's configuration was rejected (delete the folder to try it again).

    **Returns:** "failed".
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_status(run_dir, state="failed", message=" ".join(str(error).split()))
    print(f"{run_dir.name}: failed: {error}", flush=True)
    return "failed"


def _has_checkpoint(run_dir: pathlib.Path) -> bool:
    folder = run_dir / "checkpoints"
    return folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir())


def _set_aside(run_dir: pathlib.Path) -> pathlib.Path:
    index = 0
    while (target := run_dir.with_name(f"{run_dir.name}.abandoned-{index}")).exists():
        index += 1
    run_dir.rename(target)
    return target


def execute_run(config, run_dir: pathlib.Path, *, stop_after: int | None = None) -> str:
    """Trains, resumes or skips one run.

    **Arguments:** `config` (`TrainConfig` for a fresh start; a resume uses the saved one),
    `run_dir` (= `config.out`), `stop_after` (stop after this many steps of this call, for tests).

    **Returns:** "skipped" (already finished), "complete", "diverged", "failed" (the trainer rejected
    the configuration; the message is in `suite_status.json`) or "stopped" (a signal or `stop_after`
    interrupted it; run the suite again to continue).
    """
    from train.config import TrainConfig
    from train.loop import NonFiniteLoss, run

    if read_status(run_dir) is not None:
        return "skipped"
    resume = (run_dir / "config.json").is_file()
    if resume and not _has_checkpoint(run_dir):
        moved = _set_aside(run_dir)
        print(f"{run_dir.name}: no checkpoint to resume from; moved the partial folder to {moved.name}", flush=True)
        resume = False
    elif not resume and run_dir.exists() and any(run_dir.iterdir()):
        moved = _set_aside(run_dir)
        print(f"{run_dir.name}: unfinished files without a run config; moved them to {moved.name}", flush=True)
    if resume:
        from train.config import unresolved_note

        saved = json.loads((run_dir / "config.json").read_text())
        note = unresolved_note(saved, str(run_dir / "config.json"))
        if note:
            print(note, flush=True)
        config = TrainConfig.load_json(run_dir / "config.json")
    try:
        result = run(config, resume=resume, stop_after=stop_after, progress_bar=False)
    except NonFiniteLoss as error:
        _write_status(run_dir, state="diverged", message=str(error))
        return "diverged"
    except ValueError as error:  # a configuration this run cannot have: record it, let the suite go on
        return mark_failed(run_dir, error)
    if result.stopped_by is not None:
        return "stopped"
    _write_status(run_dir, state="complete", final_step=result.final_step, eval_loss=result.eval_loss)
    return "complete"


def run_specs(suite: Suite, out: pathlib.Path, data: DataPaths, *, only: list[str] | None = None,
              stop_after: int | None = None, after_each=None) -> dict[str, str]:
    """Runs (or continues) each of the suite's runs in order, at its LR or its sweep's best; returns
    `{run: outcome}` ("waiting" while a sweep it needs is unfinished). `after_each(spec, run_dir)` is called after
    every run that was tried; the loop stops at the first "stopped" run."""
    from .results import best_lr

    outcomes: dict[str, str] = {}
    for spec in suite.runs:
        if only and spec.name not in only:
            continue
        lr = spec.lr if spec.lr is not None else best_lr(suite, out, spec.lr_from)
        if lr is None:
            outcomes[spec.name] = "waiting"
            print(f"{spec.name}: waiting for the {spec.lr_from} sweep to finish; skipped for now", flush=True)
            continue
        run_dir = out / "runs" / spec.name
        print(f"=== {spec.name} ({spec.role}, {spec.method}, lr {lr:g}, seed {spec.seed})", flush=True)
        try:
            config = train_config(suite, spec, lr, data, run_dir)
        except ValueError as error:
            config = None
            outcome = "skipped" if read_status(run_dir) else mark_failed(run_dir, error)
        if config is not None:
            outcome = execute_run(config, run_dir, stop_after=stop_after)
        outcomes[spec.name] = outcome
        print(f"=== {spec.name}: {outcome}", flush=True)
        if after_each is not None:
            after_each(spec, run_dir)
        if outcome == "stopped":
            break
    return outcomes
