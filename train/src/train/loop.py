"""The training loop: data → sharded step → metrics, evals, checkpoints, clean stops."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import time

import jax
import numpy as np

import skipless_data
import skipless_models
from skipless_checkpoint import Checkpointer

from .config import TrainConfig
from .diagnostics import gain_values, peak_flops_per_second
from .evaluate import evaluate
from .data_feed import process_rows, to_global
from .data_position import restore_data_position, saved_layouts
from .mesh import check_batch_fits, make_mesh
from .metrics import MetricsWriter
from .optim import learning_rate_schedule, make_optimizer
from .progress import Progress
from .run_dir import CHECKPOINT_DIR, CONFIG_FILE, check_run_dir
from .signals import StopRequest
from .state import abstract_state, describe_model, init_state, state_shardings
from .step import batch_sharding, make_eval_step, make_train_step
from .xla_env import malloc_note


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN/inf loss or gradient; the last good checkpoint is kept."""


@dataclasses.dataclass
class RunResult:
    """Outcome of `run`: the folder, last step reached, this invocation's losses by step, the
    signal that stopped it early (if any) and the last eval loss."""

    out: pathlib.Path
    final_step: int
    losses: dict[int, float]
    stopped_by: str | None
    eval_loss: float | None


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _on_any_process(flag: bool) -> bool:
    """**Returns:** whether `flag` is true on any process (one small all-gather per call when multi-process)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.array([flag], dtype=np.int32))))


def _prepare_data(config: TrainConfig) -> skipless_data.DatasetInfo:
    """Process 0 tokenises (or reuses) the shards first; the others then reuse them, checking their checksums."""
    kwargs = dict(seq_len=config.model.seq_len, eval_data=config.eval_data, show_progress=jax.process_index() == 0,
                  text_field=config.text_field, max_train_tokens=config.max_train_tokens,
                  max_eval_tokens=config.max_eval_tokens)
    data = None if config.data == "embedded" else config.data
    info = None
    if jax.process_index() == 0:
        info = skipless_data.prepare_dataset(data, config.tokenizer, config.data_dir, **kwargs)
    _barrier("skipless_prepare_data")
    if info is None:
        info = skipless_data.prepare_dataset(data, config.tokenizer, config.data_dir, verify=True, **kwargs)
    return info


def _check_resumed_model(saved: dict, config: TrainConfig) -> None:
    """Refuses to resume with model fields that change the maths; `EXECUTION_FIELDS` (how it is computed) may change."""
    from skipless_models.config import EXECUTION_FIELDS

    saved_model = saved.get("model", {})
    differing = sorted(k for k, v in config.model.to_dict().items()
                       if saved_model.get(k) != v and k not in EXECUTION_FIELDS)
    if differing:
        raise ValueError(
            f"--resume: the checkpoint was trained with different model fields {differing}; "
            "drop those flags to continue the run, or start a new run with --out."
        )


def run(config: TrainConfig, *, resume: bool = False, stop_after: int | None = None, progress_bar: bool | None = None) -> RunResult:
    """Trains (or resumes) one run as described by `config`.

    **Arguments:**

    - `config`: the run; `config.out` is its folder.
    - `resume`: continue from the newest readable checkpoint in `config.out`.
    - `stop_after`: stop (with a checkpoint) after this many steps of this invocation.
    - `progress_bar`: rich bar (True), plain lines (False) or bar-if-terminal (None).

    **Returns:** a `RunResult`. Raises `NonFiniteLoss` on a NaN/inf loss and `ValueError` on bad input.
    """
    is_main = jax.process_index() == 0
    out = check_run_dir(config.out, resume=resume)
    _barrier("skipless_check_run_dir")
    data_shape, model_shape = config.mesh_shape
    mesh_notes = skipless_models.check_mesh_compatible(config.model, (data_shape, model_shape))
    check_batch_fits(config.batch_size, data_shape, jax.process_count())
    mesh = make_mesh(data_shape, model_shape)
    info = _prepare_data(config)
    config = config.replace(tokenizer=info.tokenizer, model=config.model.replace(vocab_size=info.vocab_size))
    if is_main:
        config.save_json(out / CONFIG_FILE)
        print(json.dumps(config.to_dict(), indent=2, sort_keys=True), flush=True)
        print(skipless_models.describe(config.model), flush=True)
        print(f"runtime: jax {jax.__version__}, {jax.device_count()} {jax.default_backend()} device(s), "
              f"{jax.process_count()} process(es), {malloc_note()}", flush=True)
        for note in mesh_notes:
            print(f"mesh: {note}", flush=True)

    key = jax.random.key(config.seed)
    setup = describe_model(config.model, mesh, key)
    optimizer = make_optimizer(config, setup.labels)
    schedule = learning_rate_schedule(config)
    shardings = state_shardings(setup, optimizer, mesh)
    batches = batch_sharding(mesh)
    block, blocks = process_rows(batches, config.batch_size)  # this process's rows of every batch
    train_iter = iter(skipless_data.train_dataset(
        info, seq_len=config.model.seq_len, global_batch_size=config.batch_size, seed=config.seed,
        process_index=block, process_count=blocks,
    ))
    eval_data = None
    if info.num_tokens.get("eval", 0) > config.model.seq_len:
        eval_data = skipless_data.eval_batches(
            info, seq_len=config.model.seq_len, batch_size=config.batch_size,
            process_index=block, process_count=blocks,
        )
    checkpointer = Checkpointer(out / CHECKPOINT_DIR, max_to_keep=config.keep_checkpoints)
    writer = MetricsWriter(out, enabled=is_main)
    try:
        if resume:
            # A checkpoint from another process count: Grain cannot restore it, the position carries over.
            latest = checkpointer.latest_step()
            saved_by = saved_layouts(out / CHECKPOINT_DIR / str(latest) / "data") if latest is not None else set()
            same_layout = latest is None or jax.process_count() in saved_by
            restored = checkpointer.restore(abstract_state(setup, optimizer, shardings),
                                            data_iterator=train_iter if same_layout else None)
            if not same_layout:
                restore_data_position(train_iter, out / CHECKPOINT_DIR / str(restored.step) / "data")
            _check_resumed_model(restored.config, config)
            state, start = restored.arrays, restored.step
            if is_main:
                print(f"resumed from step {start} of {out / CHECKPOINT_DIR}", flush=True)
        else:
            state, start = init_state(config.model, setup, optimizer, shardings, key), 0
        # Settle the initial state before the first donated step, so a failure or hang in init or
        # restore shows up here rather than inside step 1 (XLA:CPU's own hang: see train.xla_env).
        state = jax.block_until_ready(state)
        train_step = make_train_step(setup, optimizer, schedule, shardings, mesh)
        eval_step = make_eval_step(setup, shardings, mesh)
        return _loop(config, out, state, start, train_step, eval_step, train_iter, eval_data, batches,
                     setup, checkpointer, writer, stop_after, progress_bar)
    finally:
        checkpointer.close()
        writer.close()


def _loop(config, out, state, start, train_step, eval_step, train_iter, eval_data, batches,
          setup, checkpointer, writer, stop_after, progress_bar) -> RunResult:
    is_main = jax.process_index() == 0
    tokens_per_step = config.batch_size * config.model.seq_len
    flops_per_token = skipless_models.model_flops_per_token(config.model)
    peak = peak_flops_per_second(config.peak_tflops)
    progress = Progress(config.steps, start, enabled=is_main, bar=progress_bar, every=config.log_every)
    losses, stopped_by, eval_loss, saved_step = {}, None, None, start
    window_start, window_steps = time.time(), 0

    def save(step: int) -> None:
        nonlocal saved_step
        checkpointer.save(step, state, data_iterator=train_iter, config=config.to_dict(), force=True)
        saved_step = step

    def run_eval(step: int) -> float | None:
        if eval_data is None:
            return None
        loss = evaluate(eval_step, state.params, eval_data, batches, config.eval_batches)
        writer.write({"step": step, "eval_loss": loss})
        if is_main and not progress_bar:
            print(f"step {step}: eval loss {loss:.4f}", flush=True)
        return loss

    with StopRequest() as stop:
        step = start
        for step in range(start + 1, config.steps + 1):
            tokens = to_global(next(train_iter), batches)
            state, metrics = train_step(state, tokens)
            metrics = jax.device_get(metrics)
            loss, grad_norm = float(metrics["loss"]), float(metrics["grad_norm"])
            if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                writer.write({"step": step, "loss": loss, "grad_norm": grad_norm})
                raise NonFiniteLoss(
                    f"non-finite loss ({loss}) or gradient norm ({grad_norm}) at step {step}; the last good "
                    f"checkpoint (step {saved_step}) is kept in {out / CHECKPOINT_DIR}. Lower --lr or raise --warmup."
                )
            losses[step] = loss
            window_steps += 1
            if step == start + 1:  # the first step includes compilation: time from here on
                window_start, window_steps = time.time(), 0
            elapsed = time.time() - window_start
            tokens_per_s = tokens_per_step * window_steps / elapsed if window_steps else 0.0
            progress.update(step, loss, tokens_per_s)
            if step % config.log_every == 0 or step == config.steps:
                record = {"step": step, "loss": loss, "accuracy": float(metrics["accuracy"]),
                          "lr": float(metrics["lr"]), "grad_norm": grad_norm}
                if window_steps:
                    record.update(tokens_per_s=tokens_per_s, model_tflops_per_s=tokens_per_s * flops_per_token / 1e12)
                    if peak:
                        record["mfu"] = tokens_per_s * flops_per_token / peak
                if config.diagnostics_every and step % config.diagnostics_every == 0:
                    record["layer_grad_norm"] = np.asarray(metrics["layer_grad_norms"]).tolist()
                    record.update(gain_values(state.params, setup.labels))
                writer.write(record)
                window_start, window_steps = time.time(), 0
            if config.eval_every and step % config.eval_every == 0:
                eval_loss = run_eval(step)
                window_start, window_steps = time.time(), 0  # throughput counts training only
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                save(step)
            signalled = _on_any_process(stop.requested)  # all processes must stop at the same step
            if signalled or (stop_after is not None and step - start >= stop_after):
                stopped_by = stop.signal_name or ("a signal to another process" if signalled else "stop_after")
                break
        final_step = step
        if stopped_by is None and (not config.eval_every or final_step % config.eval_every):
            eval_loss = run_eval(final_step)
        if saved_step != final_step:
            save(final_step)
        checkpointer.wait_until_finished()
    progress.close()
    if is_main:
        how = f"stopped by {stopped_by}" if stopped_by else "finished"
        print(f"{how} at step {final_step}; checkpoint saved in {out / CHECKPOINT_DIR}", flush=True)
    return RunResult(out, final_step, losses, stopped_by, eval_loss)
