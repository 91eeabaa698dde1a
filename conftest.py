"""Set-up for pytest run from the workspace root (runs before any test module imports JAX).

- pytest's importlib mode names a test module after its folders, so `evals/tests/test_x.py` would
  make `evals` (the member folder) a namespace package and shadow the installed `evals`; the same
  holds for `train` and `pallas_kernels`. Importing the installed packages here, first, keeps them.
- In one member's environment (`uv sync --package M && uv run --package M pytest`, run here at the
  root), only the members whose every declared dependency (runtime and `dev` group) is installed are
  collected, and the cross-package `tests/` only when the whole workspace is: the other folders
  would fail at import for want of packages that environment rightly lacks.
"""

import importlib.metadata
import importlib.util
import os
import pathlib
import re
import tomllib

# XLA CPU's multi-threaded Eigen pool can wedge on jax 0.10; set before JAX starts (explicit wins).
if "--xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()

for _package in ("evals", "pallas_kernels", "train"):
    if importlib.util.find_spec(_package) is not None:
        importlib.import_module(_package)

_ROOT = pathlib.Path(__file__).resolve().parent
_CONFIG = tomllib.loads((_ROOT / "pyproject.toml").read_text())


def _installed(requirement: str) -> bool:
    name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _complete(project_file: pathlib.Path) -> bool:
    config = tomllib.loads(project_file.read_text())
    needed = [*config["project"].get("dependencies", []), *config.get("dependency-groups", {}).get("dev", [])]
    return all(_installed(r) for r in needed)


_SKIP = {_ROOT / member for member in _CONFIG["tool"]["uv"]["workspace"]["members"]
         if not _complete(_ROOT / member / "pyproject.toml")}
if not _complete(_ROOT / "pyproject.toml"):
    _SKIP.add(_ROOT / "tests")


def pytest_ignore_collect(collection_path: pathlib.Path, config) -> bool | None:
    # The root's testpaths name each tests/ folder directly, so look at every enclosing folder.
    return True if not _SKIP.isdisjoint((collection_path, *collection_path.parents)) else None
