"""Launch `python -m train.main` as N cooperating processes on this machine (a local multi-host job).

Every process gets the same flags plus `--coordinator localhost:PORT --num-processes N
--process-id I`; on CPU each process brings its own host devices and JAX connects them with its
CPU collectives (gloo), so a `--mesh=2x4` job runs as 2 processes x 4 devices.

    python tests/multihost_launch.py --processes 2 -- --mesh 2x4 --steps 20 --out runs/mh

Waiting is bounded: when one process fails the others get a short grace period and are then
killed, and the whole job is killed at `timeout`; the error names every process's exit code and
ends with the tail of its stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


class LaunchError(RuntimeError):
    """A process of the job failed, or the job ran past its time limit."""


@dataclasses.dataclass
class ProcessResult:
    """One process's exit code and captured output."""

    process_id: int
    returncode: int | None
    stdout: str
    stderr: str


def free_port() -> int:
    """**Returns:** a TCP port on localhost that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _report(results: list[ProcessResult], why: str) -> str:
    lines = [why]
    for r in results:
        lines.append(f"--- process {r.process_id}: exit code {r.returncode}; stdout tail:")
        lines.append(r.stdout[-1000:] or "(empty)")
        lines.append(f"--- process {r.process_id}: stderr tail:")
        lines.append(r.stderr[-3000:] or "(empty)")
    return "\n".join(lines)


def _stop(proc: subprocess.Popen) -> None:
    """Kills a process and its children (each process leads its own group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


def launch(
    flags: list[str],
    *,
    processes: int,
    timeout: float = 300.0,
    grace: float = 10.0,
    env: dict[str, str] | None = None,
    cwd: str | pathlib.Path = REPO,
    process_flags: dict[int, list[str]] | None = None,
    signal_when: tuple[str, int, int] | None = None,
    expect_code: int = 0,
) -> list[ProcessResult]:
    """Runs `python -m train.main FLAGS` as `processes` processes joined by `jax.distributed`.

    **Arguments:**

    - `flags`: trainer flags shared by all processes (not the multi-host ones).
    - `processes`: how many processes; 1 runs a plain single-process job.
    - `timeout`: seconds the whole job may take before every process is killed.
    - `grace`: seconds the others may still run after one process failed.
    - `env`: environment of the processes (default: this one's).
    - `cwd`: working folder of the processes.
    - `process_flags`: extra flags for some processes only, by process id.
    - `signal_when`: `(text, process_id, signal)`: send `signal` to that process once process 0
        has printed `text`.
    - `expect_code`: the exit code every process must end with (e.g. 143 after a SIGTERM).

    **Returns:** one `ProcessResult` per process, in process order, when all exited with `expect_code`.
    Raises `LaunchError` with every process's exit code and stderr tail otherwise.
    """
    if processes < 1:
        raise ValueError(f"processes={processes} must be >= 1; pass the number of processes to start.")
    coordinator = f"localhost:{free_port()}"  # one address for all processes
    extra = [[]] if processes == 1 else [
        ["--coordinator", coordinator, "--num-processes", str(processes), "--process-id", str(i)]
        for i in range(processes)
    ]
    logs = tempfile.TemporaryDirectory(prefix="multihost_launch_")
    procs, files = [], []
    try:
        for i, own in enumerate(extra):
            out = open(pathlib.Path(logs.name) / f"{i}.out", "w+")
            err = open(pathlib.Path(logs.name) / f"{i}.err", "w+")
            files.append((out, err))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "train.main", *flags, *own, *(process_flags or {}).get(i, [])],
                stdout=out, stderr=err,
                env=env, cwd=cwd, start_new_session=True,
            ))
        deadline, failed_at, why = time.monotonic() + timeout, None, None
        while any(p.poll() is None for p in procs):
            now = time.monotonic()
            if signal_when is not None and signal_when[0] in pathlib.Path(files[0][0].name).read_text():
                text, target, signum = signal_when
                procs[target].send_signal(signum)
                signal_when = None
            if failed_at is None and any(p.poll() not in (None, expect_code) for p in procs):
                failed_at = now
            if failed_at is not None and now > failed_at + grace:
                why = "a process failed; the others were killed after the grace period"
                break
            if now > deadline:
                why = f"the job ran past its {timeout:.0f} s limit and was killed"
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            _stop(p)
    results = []
    for i, (p, (out, err)) in enumerate(zip(procs, files)):
        out.seek(0)
        err.seek(0)
        results.append(ProcessResult(i, p.returncode, out.read(), err.read()))
        out.close()
        err.close()
    logs.cleanup()
    if why is None and any(r.returncode != expect_code for r in results):
        why = f"a process exited with another code than {expect_code}"
    if why is not None:
        raise LaunchError(_report(results, why))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2, help="number of processes")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before the job is killed")
    parser.add_argument("flags", nargs=argparse.REMAINDER, help="-- then the train.main flags")
    args = parser.parse_args(argv)
    flags = args.flags[1:] if args.flags[:1] == ["--"] else args.flags
    try:
        results = launch(flags, processes=args.processes, timeout=args.timeout)
    except LaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(results[0].stdout, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
