"""`python -m train.main`: train a deep transformer without shortcuts on a ("data", "model") mesh.

JAX is imported only after the mesh flag is read, because the number of host (CPU) devices must be
fixed through `XLA_FLAGS` before JAX starts: `--mesh=4x8` on a CPU machine gets 32 host devices.
A failure ends with one `error:` line and a distinct exit code (`train.failures`); the traceback
goes to the run's `train.log`, or to stderr with `--debug`.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import sys

from .distributed import initialize, wants_distributed
from .mesh import parse_mesh
from .signals import Interrupted, interrupt_on_signals, restore_handlers
from .xla_env import avoid_cpu_eigen_pool_hang, reexec_with_hugepage_malloc

_HOST_DEVICES = "--xla_force_host_platform_device_count"


def _early_flags(argv: list[str]) -> argparse.Namespace:
    early = argparse.ArgumentParser(add_help=False)
    for name in ("--mesh", "--out", "--coordinator"):
        early.add_argument(name)
    for name in ("--num-processes", "--process-id"):
        early.add_argument(name, type=int)
    early.add_argument("--resume", action="store_true")
    known, _ = early.parse_known_args(argv)
    return known


def _mesh_for_launch(flags: argparse.Namespace) -> tuple[int, int]:
    """The mesh this launch will use: the flag, else a resumed run's saved mesh, else 1x1."""
    spec = flags.mesh
    if spec is None and flags.resume and flags.out:
        saved = pathlib.Path(flags.out) / "config.json"
        if saved.is_file():
            spec = json.loads(saved.read_text()).get("mesh")
    return parse_mesh(spec or "1x1")


def _request_host_devices(count: int) -> None:
    """Sets the host device count in `XLA_FLAGS` (replacing an inherited one) when the mesh needs it."""
    flags = os.environ.get("XLA_FLAGS", "")
    if count > 1 or _HOST_DEVICES in flags:
        kept = re.sub(rf"{_HOST_DEVICES}=\S*", "", flags)
        os.environ["XLA_FLAGS"] = f"{kept} {_HOST_DEVICES}={count}".strip()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    avoid_cpu_eigen_pool_hang()
    previous = interrupt_on_signals()  # the training loop turns these into a stop with a checkpoint
    out = _early_flags(argv).out if "-h" not in argv and "--help" not in argv else None
    try:
        return _main(argv)
    except Interrupted as stop:
        print(f"error: interrupted by {stop}; {_after_interrupt(out)}", file=sys.stderr, flush=True)
        return 128 + stop.signum
    finally:
        restore_handlers(previous)


def _main(argv: list[str]) -> int:
    if "-h" not in argv and "--help" not in argv:
        try:
            flags = _early_flags(argv)
            data, model = _mesh_for_launch(flags)
            processes = flags.num_processes or 1
            _request_host_devices(max(data * model // processes, 1))
            if wants_distributed(flags.coordinator, flags.num_processes, flags.process_id):
                initialize(flags.coordinator, flags.num_processes, flags.process_id)
        except (ValueError, json.JSONDecodeError) as error:
            print(f"error: {_one_line(error)}", file=sys.stderr)
            return 2
    from .cli import config_from_args, parse_args  # imports JAX
    from .cli_parse import UsageError
    from .failures import EXIT_BAD_INPUT, EXIT_UNEXPECTED, describe
    from .loop import run

    try:
        args = parse_args(argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    debug = bool(args.get("debug"))
    try:
        config, launch = config_from_args(args)
        result = run(config, resume=bool(launch.get("resume")), stop_after=launch.get("stop_after"),
                     progress_bar=launch.get("progress"), debug=debug,
                     command="python -m train.main " + " ".join(argv))
    except Interrupted:
        raise
    except Exception as error:
        code, line = describe(error, args.get("out"))
        if debug:
            import traceback

            traceback.print_exception(error)
        log = getattr(error, "train_log", None)
        if log is not None and code not in (2, 3, 6):
            line += f" (details: {log})"
        elif code == EXIT_UNEXPECTED and not debug:
            line += " (rerun with --debug to see the traceback)"
        print(f"error: {line}", file=sys.stderr, flush=True)
        return code
    return 128 + result.signum if result.signum else 0


def _after_interrupt(out: str | None) -> str:
    if out and (pathlib.Path(out) / "config.json").is_file():
        return f"the run keeps its newest checkpoint; continue with: python -m train.main --resume --out {out}"
    return "nothing was trained yet; run the same command again to start."


def _one_line(error: Exception) -> str:
    return re.sub(r"\s+", " ", str(error)).strip()


def _exit_failed_process(code: int) -> None:
    """Ends a failed process of a multi-process job at once, naming it on stderr.

    A normal exit would first wait in `jax.distributed`'s shutdown barrier for processes that
    never reach it, hiding this process's error behind minutes of silence. (No JAX call here may
    start the backend: that too waits for every process.)
    """
    import jax

    if code and jax.distributed.is_initialized():
        flag = _early_flags(sys.argv[1:]).process_id
        which = "this process" if flag is None else f"process {flag}"
        print(f"error: {which} of the multi-process job failed (exit code {code}) and exits now; "
              "the others stop at their next collective or timeout, or stop them yourself.",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(code)


if __name__ == "__main__":
    reexec_with_hugepage_malloc("train.main", sys.argv[1:])  # see train.xla_env
    try:
        exit_code = main()
    except SystemExit as stop:  # argparse errors and --help
        exit_code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except Exception:
        import traceback

        traceback.print_exc()
        exit_code = 1
    if exit_code and exit_code < 128 and "jax" in sys.modules:  # interrupted processes stop together
        _exit_failed_process(exit_code)
    sys.exit(exit_code)
