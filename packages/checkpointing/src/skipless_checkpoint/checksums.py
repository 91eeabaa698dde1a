"""Content checksums of one checkpoint step: `checksums.sha256`, in the format of `sha256sum`.

The file lists the SHA-256 of every file of the step (arrays, data-iterator states, config) and
is written after them, inside the step's temporary folder, just before Orbax renames that folder
into place: a step that is listed as finished always carries it. `sha256sum -c checksums.sha256`
in the step folder checks it by hand.
"""

from __future__ import annotations

import hashlib
import os
import pathlib

CHECKSUM_FILE = "checksums.sha256"


def file_sha256(path: pathlib.Path) -> str:
    """**Returns:** the hex SHA-256 of a file's bytes (streamed by `hashlib.file_digest`)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _files(step_dir: pathlib.Path, exclude: frozenset[str]) -> list[str]:
    names = (p.relative_to(step_dir).as_posix() for p in step_dir.rglob("*") if p.is_file())
    return sorted(name for name in names if name != CHECKSUM_FILE and name not in exclude)


def write_checksums(step_dir: str | os.PathLike, exclude: frozenset[str] = frozenset()) -> pathlib.Path:
    """Hashes every file under `step_dir` (except the relative paths in `exclude`) and writes
    `step_dir/checksums.sha256` atomically (a temporary file, flushed to disk, then renamed).

    **Returns:** the path of the checksum file.
    """
    folder = pathlib.Path(step_dir)
    lines = "".join(f"{file_sha256(folder / name)}  {name}\n" for name in _files(folder, exclude))
    target = folder / CHECKSUM_FILE
    partial = folder / (CHECKSUM_FILE + ".partial")
    with open(partial, "w") as handle:
        handle.write(lines)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)
    return target


def verify_checksums(step_dir: str | os.PathLike) -> str | None:
    """Checks every file listed in `step_dir/checksums.sha256`.

    **Returns:** `None` when each listed file exists with its recorded content, else a short
    reason naming the first problem (missing checksum file, missing file, changed content).
    Files that are not listed are ignored.
    """
    folder = pathlib.Path(step_dir)
    listing = folder / CHECKSUM_FILE
    if not listing.is_file():
        return f"it has no {CHECKSUM_FILE} (written by an older version, or not a finished checkpoint)"
    try:
        entries = [line.split("  ", 1) for line in listing.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        return f"its {CHECKSUM_FILE} cannot be read ({error})"
    if not entries or any(len(entry) != 2 or len(entry[0]) != 64 for entry in entries):
        return f"its {CHECKSUM_FILE} is malformed"
    for expected, name in entries:
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        try:
            actual = file_sha256(path)
        except OSError as error:
            return f"{name} cannot be read ({error.strerror or error})"
        if actual != expected:
            return f"{name} does not match its checksum"
    return None
