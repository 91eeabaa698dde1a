"""Each workspace member declares exactly the third-party packages its code imports.

Oracle: the import statements themselves (parsed with `ast`, including imports inside functions),
matched to distributions through the installed packages' own metadata
(`importlib.metadata.packages_distributions`) and, for workspace members, their `src/` folders.
Source imports must be runtime dependencies (or an optional extra when the import is guarded);
test imports may also come from the member's `dev` group.
"""

from __future__ import annotations

import ast
import importlib.metadata
import pathlib
import re
import sys
import tomllib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
ROOT = tomllib.loads((REPO / "pyproject.toml").read_text())
MEMBERS = ROOT["tool"]["uv"]["workspace"]["members"]
# Imported only where present and never a dependency: torch is the PyTorch side of the speed and
# exactness comparisons (`evals.bench_step`, `evals.torch_reference`), installed by hand.
NEVER_DECLARED = {"torch"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _import_to_distribution() -> dict[str, str]:
    mapping = {top: dists[0].lower().replace("_", "-") for top, dists in importlib.metadata.packages_distributions().items()}
    for member in MEMBERS:
        project = tomllib.loads((REPO / member / "pyproject.toml").read_text())["project"]
        for package in (REPO / member / "src").iterdir():
            if (package / "__init__.py").is_file():
                mapping[package.name] = project["name"].lower()
    return mapping


def _is_guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether an import sits in a `try` that catches ImportError (an optional import)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                names = [n.id for n in ast.walk(handler.type) if isinstance(n, ast.Name)] if handler.type else []
                if {"ImportError", "ModuleNotFoundError"} & set(names):
                    return True
    return False


def _imports(folder: pathlib.Path) -> tuple[set[str], set[str]]:
    """Top-level modules imported under `folder`: (unconditional, guarded by `except ImportError`)."""
    plain, guarded = set(), set()
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                (guarded if _is_guarded(node, parents) else plain).add(name.split(".")[0])
    return plain, guarded


def _third_party(modules: set[str], own: set[str]) -> set[str]:
    return {m for m in modules if m not in sys.stdlib_module_names and m not in own and m != "__future__"}


def _declared(member: str) -> tuple[set[str], set[str], set[str]]:
    config = tomllib.loads((REPO / member / "pyproject.toml").read_text())
    runtime = {_name(r) for r in config["project"].get("dependencies", [])}
    optional = {_name(r) for reqs in config["project"].get("optional-dependencies", {}).values() for r in reqs}
    dev = {_name(r) for r in config.get("dependency-groups", {}).get("dev", [])}
    return runtime, optional, dev


@pytest.mark.parametrize("member", MEMBERS)
def test_member_declares_exactly_what_it_imports(member):
    to_dist = _import_to_distribution()
    own = {p.name for p in (REPO / member / "src").iterdir() if (p / "__init__.py").is_file()}
    runtime, optional, dev = _declared(member)

    def distributions(modules):
        unknown = {m for m in modules if m not in to_dist and m not in NEVER_DECLARED}
        assert not unknown, f"{member}: imports {sorted(unknown)} that no installed distribution provides"
        return {to_dist[m] for m in modules if m not in NEVER_DECLARED}

    plain, guarded = _imports(REPO / member / "src")
    src_needs = distributions(_third_party(plain, own))
    src_optional = distributions(_third_party(guarded, own) - _third_party(plain, own))
    assert src_needs <= runtime, f"{member}: source imports undeclared {sorted(src_needs - runtime)}"
    assert src_optional <= runtime | optional, f"{member}: optional imports undeclared {sorted(src_optional - runtime - optional)}"
    assert runtime <= src_needs, f"{member}: declares {sorted(runtime - src_needs)} but its source never imports them"

    tests = REPO / member / "tests"
    if tests.is_dir():
        test_plain, test_guarded = _imports(tests)
        test_needs = distributions(_third_party(test_plain | test_guarded, own)) - {"pytest"}
        available = runtime | optional | dev
        assert test_needs <= available, f"{member}: tests import undeclared {sorted(test_needs - available)}"
        assert "pytest" in dev, f"{member}: the dev group needs pytest"


def test_root_depends_on_every_member():
    names = {tomllib.loads((REPO / m / "pyproject.toml").read_text())["project"]["name"].lower() for m in MEMBERS}
    assert names <= {_name(r) for r in ROOT["project"]["dependencies"]}
