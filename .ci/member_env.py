"""Checks that the active environment holds exactly one workspace member's dependency closure.

Run inside `uv run --package M` after `uv sync --package M`: every installed distribution must be
reachable from M's declared dependencies (runtime and `dev` group), following each installed
package's own requirements; anything else means the environment leaks another member's packages.
Usage: python .ci/member_env.py <member folder>
"""

from __future__ import annotations

import importlib.metadata as metadata
import pathlib
import re
import sys
import tomllib

from packaging.requirements import Requirement


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in roots]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = _norm(req.name)
        wanted = [""] + sorted(req.extras)
        key_seen = {f"{name}[{e}]" for e in wanted}
        if key_seen <= seen:
            continue
        seen |= key_seen | {name}
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue  # an unmet marker-free requirement shows up as a missing import in the tests
        for child in requires:
            for e in wanted:
                todo.append((Requirement(child), e))
    return {s for s in seen if "[" not in s}


def main(member: str) -> int:
    config = tomllib.loads((pathlib.Path(member) / "pyproject.toml").read_text())
    roots = [*config["project"].get("dependencies", []), *config.get("dependency-groups", {}).get("dev", [])]
    expected = closure(roots) | {_norm(config["project"]["name"])}
    installed = {_norm(d.metadata["Name"]) for d in metadata.distributions()}
    extra = sorted(installed - expected)
    if extra:
        print(f"{member}: environment holds packages outside its dependency closure: {extra}", file=sys.stderr)
        return 1
    print(f"{member}: {len(installed)} distributions, all in its declared closure")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
