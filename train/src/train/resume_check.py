"""Which settings a resumed run may change, checked before anything is read or written.

A resume continues the saved state, so everything that state or the data order depends on must
stay: every model field except how it is computed (`skipless_models.config.EXECUTION_FIELDS`), the
data, tokenizer, batch size, seed and optimiser. Optimiser terms that add state when they are on
(gradient clipping, weight decay, SGD momentum) may change value but not be switched on or off.
Everything else (steps, schedule, learning rates, mesh, logging and checkpoint periods) may change.

Model values are compared resolved (`ModelConfig.resolved`): a config.json written before configs were saved
resolved (nulls for the TAT/SPA knobs, "auto" init) is read with today's defaults, and a run saved resolved
keeps its own values whatever the defaults are now.
"""

from __future__ import annotations

from typing import Any

FIXED_TRAIN_FIELDS = ("data", "eval_data", "tokenizer", "text_field", "batch_size", "seed", "optimizer")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _show(value: Any) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _switched(saved: Any, new: Any) -> bool:
    return (saved or 0) > 0 and not (new or 0) > 0 or not (saved or 0) > 0 and (new or 0) > 0


def resolved_model_dict(model: dict) -> dict:
    """A saved model dict with its unresolved values (null knobs, "auto" init) resolved by today's defaults;
    "format_version" is kept as saved. A dict `ModelConfig` cannot read is returned as it is."""
    from skipless_models import ModelConfig

    try:
        resolved = ModelConfig.from_dict(model).to_dict()
    except (TypeError, ValueError):
        return dict(model)
    resolved.pop("format_version")
    return {**resolved, **({"format_version": model["format_version"]} if "format_version" in model else {})}


def resume_conflicts(saved: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """Compares a saved config with the config of a resume.

    **Arguments:** `saved`, `new`: `TrainConfig.to_dict()`-style dicts (`model` nested).

    **Returns:** `(flag, saved value, new value)` for each setting the saved state cannot follow.
    A `None` tokenizer in `new` means "not chosen" and matches any saved one.
    """
    from skipless_models.config import EXECUTION_FIELDS

    conflicts = []
    saved_model, new_model = resolved_model_dict(saved.get("model", {})), resolved_model_dict(new.get("model", {}))
    for name in sorted(set(saved_model) | set(new_model)):
        if name not in EXECUTION_FIELDS and saved_model.get(name) != new_model.get(name):
            conflicts.append((_flag(name), saved_model.get(name), new_model.get(name)))
    for name in FIXED_TRAIN_FIELDS:
        if name == "tokenizer" and new.get(name) is None:
            continue
        if name in saved and saved.get(name) != new.get(name):
            conflicts.append((_flag(name), saved.get(name), new.get(name)))
    optimizer = saved.get("optimizer")
    switches = ["grad_clip"] + (["weight_decay"] if optimizer != "adam" else []) + (["momentum"] if optimizer == "sgd" else [])
    for name in switches:
        if name in saved and _switched(saved.get(name), new.get(name)):
            conflicts.append((_flag(name), saved.get(name), new.get(name)))
    return conflicts


def check_resume(saved: dict, new: dict, *, source: str, fresh_start_hint: str | None = None) -> None:
    """Raises `ValueError` (one line naming every conflicting flag) when `new` cannot resume `saved`.

    **Arguments:** `saved`, `new` (as for `resume_conflicts`); `source`: what `saved` came from
    (named in the message); `fresh_start_hint`: advice appended when the run has no checkpoint yet.
    """
    conflicts = resume_conflicts(saved, new)
    if not conflicts:
        return
    listed = ", ".join(f"{flag} {_show(before)} (not {_show(after)})" for flag, before, after in conflicts)
    switched = [flag for flag, before, after in conflicts if flag in ("--grad-clip", "--weight-decay", "--momentum")
                and _switched(before, after)]
    why = (f"; {', '.join(switched)} can change value on resume but not turn on or off (that changes the optimiser state)"
           if switched else "")
    raise ValueError(
        f"--resume: {source} was trained with {listed}; these cannot change on resume{why}. Drop those flags to "
        f"continue the run, or start a new run with another --out.{' ' + fresh_start_hint if fresh_start_hint else ''}"
    )
