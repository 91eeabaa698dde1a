"""Where a benchmark's numbers go: one JSON file beside the table it prints."""

from __future__ import annotations

import json
import os
from typing import Any


def write_report(path: str, report: dict[str, Any]) -> None:
    """Writes `report` as indented JSON to `path` (creating its folder) and says where."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {path}")
