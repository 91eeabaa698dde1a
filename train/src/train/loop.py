"""The training loop: data → sharded step → metrics, evals, checkpoints, clean stops.

`run` touches the run folder only after every check that can refuse the run has passed (flags
against the saved config on a resume, the mesh, the data), and then only while holding the
folder's lock; `config.json` is (re)written once the starting state exists.
"""

from __future__ import annotations

import contextlib
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
from .failures import short_cause
from .data_feed import process_rows, to_global
from .mesh import check_batch_fits, make_mesh
from .metrics import MetricsWriter
from .tracker import check_tracker, open_tracker
from .optim import learning_rate_schedule, make_optimizer
from .progress import Progress
from .resume import restore_or_init
from .resume_check import check_resume
from .run_dir import CHECKPOINT_DIR, CONFIG_FILE, check_new_run_dir, has_checkpoint, load_saved_config, write_config
from .run_lock import RunLock
from .run_log import RunLog
from .signals import StopRequest
from .state import abstract_state, describe_model, init_state, state_shardings
from .step import batch_sharding, make_eval_step, make_train_step
from .summary import bytes_per_token, summary_lines
from .xla_env import malloc_note


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN/inf loss or gradient; the last good checkpoint is kept."""


class CheckpointWriteFailed(RuntimeError):
    """Writing a checkpoint failed (its cause says why); the older checkpoints are intact."""


@dataclasses.dataclass
class RunResult:
    """Outcome of `run`: the folder, last step reached, this invocation's losses by step, what
    stopped it early (if anything), the last eval loss and the stopping signal's number."""

    out: pathlib.Path
    final_step: int
    losses: dict[int, float]
    stopped_by: str | None
    eval_loss: float | None
    signum: int | None = None


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _signal_anywhere(signum: int | None) -> int:
    """**Returns:** the number of a stop signal received by any process, else 0 (one small
    all-gather per call when multi-process: all processes must stop at the same step)."""
    if jax.process_count() == 1:
        return signum or 0
    from jax.experimental import multihost_utils

    return int(np.max(multihost_utils.process_allgather(np.array([signum or 0], dtype=np.int32))))


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


def _check_folder(out: pathlib.Path, config: TrainConfig, resume: bool) -> None:
    """Refuses a run the folder cannot take, reading only (see `run_dir` and `resume_check`)."""
    if not resume:
        check_new_run_dir(out)
        return
    saved = load_saved_config(out)
    hint = None if has_checkpoint(out) else (
        f"(It has no checkpoint yet: to start afresh with other flags, remove {out} first or pass another --out.)")
    check_resume(saved, config.to_dict(), source=str(out), fresh_start_hint=hint)


def run(config: TrainConfig, *, resume: bool = False, stop_after: int | None = None, progress_bar: bool | None = None,
        debug: bool = False, command: str = "") -> RunResult:
    """Trains (or resumes) one run as described by `config`.

    **Arguments:**

    - `config`: the run; `config.out` is its folder.
    - `resume`: continue from the newest verified checkpoint in `config.out` (from step 0 when
        the run has none yet). Flags the saved state cannot follow are refused before anything
        in the folder changes.
    - `stop_after`: stop (with a checkpoint) after this many steps of this invocation.
    - `progress_bar`: rich bar (True), plain lines (False) or bar-if-terminal (None).
    - `debug`: leave library error output on stderr instead of the run's `train.log`.
    - `command`: how the run was launched (first line of this invocation's `train.log` section).

    **Returns:** a `RunResult`. Raises `NonFiniteLoss` on a NaN/inf loss, `ValueError` on bad
    input, `RunFolderBusy` when another process holds the folder, `CheckpointIntegrityError` when no
    checkpoint verifies and `CheckpointWriteFailed` when a checkpoint cannot be written. An error
    raised while the folder is held carries `error.train_log` (the log holding its traceback, or None).
    """
    is_main = jax.process_index() == 0
    out = pathlib.Path(config.out)
    _check_folder(out, config, resume)
    check_tracker(config.tracker)
    data_shape, model_shape = config.mesh_shape
    mesh_notes = skipless_models.check_mesh_compatible(config.model, (data_shape, model_shape))
    check_batch_fits(config.batch_size, data_shape, jax.process_count())
    mesh = make_mesh(data_shape, model_shape)
    info = _prepare_data(config)
    # config.json records what the run uses: the tokenizer, its vocabulary and the shards' folder, resolved
    config = config.replace(tokenizer=info.tokenizer, data_dir=config.data_dir or info.path,
                            model=config.model.replace(vocab_size=info.vocab_size))
    if resume:  # again with the tokenizer and vocabulary resolved
        check_resume(load_saved_config(out), config.to_dict(), source=str(out))
    lock = RunLock(out)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    try:
        _barrier("skipless_run_folder_locked")
        with RunLog(out, enabled=is_main and not debug, header=command) as log:
            try:
                if is_main:  # the folder may have changed between the checks above and the lock
                    _check_folder(out, config, resume)
                return _train(config, out, info, mesh, mesh_notes, resume, stop_after, progress_bar, log)
            except BaseException as error:
                try:
                    error.train_log = log.record(error)
                except AttributeError:
                    pass
                raise
    finally:
        lock.release()


def _train(config, out, info, mesh, mesh_notes, resume, stop_after, progress_bar, log) -> RunResult:
    is_main = jax.process_index() == 0
    if is_main:
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
    writer = None
    try:
        state, start = restore_or_init(
            checkpointer, resume=resume, config_dict=config.to_dict(), out=out, train_iter=train_iter,
            abstract=abstract_state(setup, optimizer, shardings), console=log.console,
            init=lambda: init_state(config.model, setup, optimizer, shardings, key),
        )
        # Settle the initial state before the first donated step, so a failure or hang in init or
        # restore shows up here rather than inside step 1 (XLA:CPU's own hang: see train.xla_env).
        state = jax.block_until_ready(state)
        if is_main:
            write_config(out / CONFIG_FILE, config.to_dict())
        trackers = open_tracker(config.tracker, out, config.to_dict()) if is_main else []
        writer = MetricsWriter(out, enabled=is_main, trackers=trackers)
        train_step = make_train_step(setup, optimizer, schedule, shardings, mesh)
        eval_step = make_eval_step(setup, shardings, mesh)
        result = _loop(config, out, state, start, train_step, eval_step, train_iter, eval_data, batches,
                       setup, checkpointer, writer, stop_after, progress_bar)
        steps_on_disk = checkpointer.all_steps()
    except BaseException:
        _close_quietly(checkpointer, writer)
        raise
    checkpointer.close()
    writer.close()
    if is_main:
        _print_summary(result, config, info, steps_on_disk)
    return result


def _close_quietly(checkpointer: Checkpointer, writer: MetricsWriter | None) -> None:
    """Closes after a failure without letting a second error (e.g. the same full disk) replace the first."""
    for close in (checkpointer.close, writer.close if writer is not None else None):
        try:
            if close is not None:
                close()
        except Exception:
            pass


def _print_summary(result: RunResult, config: TrainConfig, info, steps_on_disk: list[int]) -> None:
    how = f"stopped by {result.stopped_by}" if result.stopped_by else "finished"
    lines = summary_lines(
        out=config.out, headline=f"{how} at step {result.final_step}; checkpoint saved in {result.out / CHECKPOINT_DIR}",
        train_loss=result.losses.get(result.final_step), train_step=result.final_step if result.losses else None,
        eval_loss=result.eval_loss, entropy_rate=info.entropy_rate,
        per_token_bytes=bytes_per_token(info.num_bytes, info.num_tokens), checkpoint_steps=steps_on_disk,
        data=config.data, steps=config.steps, finished=result.final_step >= config.steps,
    )
    print("\n".join(lines), flush=True)


def _loop(config, out, state, start, train_step, eval_step, train_iter, eval_data, batches,
          setup, checkpointer, writer, stop_after, progress_bar) -> RunResult:
    is_main = jax.process_index() == 0
    tokens_per_step = config.batch_size * config.model.seq_len
    flops_per_token = skipless_models.model_flops_per_token(config.model)
    peak = peak_flops_per_second(config.peak_tflops)
    progress = Progress(config.steps, start, enabled=is_main, bar=progress_bar, every=config.log_every)
    losses, stopped_by, signum, eval_loss, saved_step = {}, None, None, None, start
    window_start, window_steps = time.time(), 0

    def save(step: int) -> None:
        nonlocal saved_step
        with _naming_failed_writes(checkpointer, out):
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
            signum = _signal_anywhere(stop.signum) or None  # all processes must stop at the same step
            if signum or (stop_after is not None and step - start >= stop_after):
                stopped_by = stop.signal_name or ("a signal to another process" if signum else "stop_after")
                break
        final_step = step
        if stopped_by is None and (not config.eval_every or final_step % config.eval_every):
            eval_loss = run_eval(final_step)
        if saved_step != final_step:
            save(final_step)
        with _naming_failed_writes(checkpointer, out):
            checkpointer.wait_until_finished()
    progress.close()
    return RunResult(out, final_step, losses, stopped_by, eval_loss, signum)


@contextlib.contextmanager
def _naming_failed_writes(checkpointer: Checkpointer, out: pathlib.Path):
    """Turns the error of a (background) checkpoint write into one that names the newest intact step."""
    try:
        yield
    except Exception as error:
        folder = out / CHECKPOINT_DIR
        done = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
        newest = f"step {done[-1]}" if done else "none yet (a resume starts from step 0)"
        raise CheckpointWriteFailed(
            f"writing a checkpoint to {folder} failed ({short_cause(error)}); the newest complete checkpoint is {newest}"
        ) from error
