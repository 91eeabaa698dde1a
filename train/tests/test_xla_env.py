"""Process settings applied before JAX starts: the huge-page malloc restart and the Eigen flag."""

import os
import subprocess
import sys
import textwrap

import pytest

from train import xla_env

_PROBE = textwrap.dedent("""
    import os, sys
    from train.xla_env import reexec_with_hugepage_malloc
    if __name__ == "__main__":
        print("start", os.getpid(), flush=True)
        reexec_with_hugepage_malloc("probe_mod", sys.argv[1:])
        print("args", *sys.argv[1:])
        print("tunables", os.environ.get("GLIBC_TUNABLES", ""))
        print("pid", os.getpid())
""")


def _run_probe(tmp_path, **env_extra):
    (tmp_path / "probe_mod.py").write_text(_PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", xla_env.MALLOC_ENV)}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-m", "probe_mod", "--a", "b c"], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in out.splitlines())
    return out, lines


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tunables are Linux-only")
def test_reexec_sets_hugepage_tunable_once_and_keeps_args_and_pid(tmp_path):
    out, lines = _run_probe(tmp_path, GLIBC_TUNABLES="glibc.malloc.arena_max=2")
    assert out.count("start") == 2, out  # restarted exactly once
    assert lines["tunables"].split(":") == ["glibc.malloc.arena_max=2", xla_env.HUGEPAGE_TUNABLE]
    assert lines["args"] == "--a b c"
    assert lines["pid"] == lines["start"]  # execve keeps the process: signals and launchers unaffected


def test_reexec_opt_out(tmp_path):
    out, lines = _run_probe(tmp_path, **{xla_env.MALLOC_ENV: "default"})
    assert out.count("start") == 1, out
    assert xla_env.HUGEPAGE_TUNABLE not in lines["tunables"]


def test_eigen_flag_added_unless_user_set_it(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    xla_env.avoid_cpu_eigen_pool_hang()
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=false"
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
    xla_env.avoid_cpu_eigen_pool_hang()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=true"
