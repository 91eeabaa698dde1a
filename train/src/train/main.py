"""`python -m train.main`: train a deep transformer without shortcuts on a ("data", "model") mesh.

JAX is imported only after the mesh flag is read, because the number of host (CPU) devices must be
fixed through `XLA_FLAGS` before JAX starts: `--mesh=4x8` on a CPU machine gets 32 host devices.
Exit codes: 0 finished or stopped cleanly by SIGTERM/SIGINT (with a checkpoint), 2 bad flags,
3 non-finite loss.
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
    if "-h" not in argv and "--help" not in argv:
        try:
            flags = _early_flags(argv)
            data, model = _mesh_for_launch(flags)
            processes = flags.num_processes or 1
            _request_host_devices(max(data * model // processes, 1))
            if wants_distributed(flags.coordinator, flags.num_processes, flags.process_id):
                initialize(flags.coordinator, flags.num_processes, flags.process_id)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    from .cli import build_parser, config_from_args  # imports JAX
    from .loop import NonFiniteLoss, run

    parser = build_parser()
    args = vars(parser.parse_args(argv))
    try:
        config, launch = config_from_args(args)
        run(config, resume=bool(launch.get("resume")), stop_after=launch.get("stop_after"),
            progress_bar=launch.get("progress"))
    except NonFiniteLoss as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 2
    return 0


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
    if exit_code and "jax" in sys.modules:
        _exit_failed_process(exit_code)
    sys.exit(exit_code)
