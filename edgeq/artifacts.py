"""The build directory's manifest and lock: what was made from what, and one build at a time.

Each manifest section records the sha256 of the files it was made from (``inputs``). Every
write re-checks all sections against the files now on disk and drops those whose inputs changed
or vanished, so the manifest never claims, say, a device validation for firmware that was
rebuilt since (``edgeq build --no-run`` after a full build used to keep it).

A build holds ``<dir>/.edgeq-build.lock`` with ``flock`` for its whole run: a second build into
the same directory fails at once naming the holder's pid, and the kernel releases the lock if
the holder dies, so there is never a stale lock to clean up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from edgeq.errors import BuildError
from edgeq.fileio import atomic_write_json, sha256_file, write_failed

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".edgeq-build.lock"


# --- manifest ----------------------------------------------------------------------------------


def _key(build_dir: Path, path: Path) -> str:
    """Inputs inside the build directory are named relative to it, others absolutely."""
    try:
        return path.resolve().relative_to(build_dir.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def digests(build_dir: Path, paths: Sequence[Path]) -> dict[str, str]:
    return {_key(build_dir, p): sha256_file(p) for p in paths}


def read_manifest(build_dir: Path) -> dict[str, Any]:
    path = build_dir / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("%s: unreadable manifest, starting a new one", path)
        return {}
    return doc if isinstance(doc, dict) else {}


def _still_valid(build_dir: Path, section: Any) -> bool:
    if not isinstance(section, dict):
        return True  # plain values (model path, board) describe the request, not artifacts
    inputs = section.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        return False  # cannot be checked against anything: do not vouch for it
    for key, digest in inputs.items():
        path = Path(key) if os.path.isabs(key) else build_dir / key
        if not path.exists() or sha256_file(path) != digest:
            return False
    return True


def prune(build_dir: Path, doc: dict[str, Any]) -> list[str]:
    """Drop the sections whose input files changed; returns their names."""
    stale = [name for name, section in doc.items() if not _still_valid(build_dir, section)]
    for name in stale:
        del doc[name]
    return stale


def record(build_dir: Path, section: str, value: dict[str, Any], inputs: Sequence[Path]) -> None:
    """Write ``section`` tied to the current hashes of ``inputs``; drop every stale section."""
    doc = read_manifest(build_dir)
    doc[section] = {**value, "inputs": digests(build_dir, inputs)}
    dropped = prune(build_dir, doc)
    if dropped:
        log.info("manifest: dropped %s (made from files that have changed)", ", ".join(dropped))
    atomic_write_json(build_dir / MANIFEST_NAME, doc)


def refresh(build_dir: Path) -> list[str]:
    """Re-check the manifest against the files on disk (e.g. at the start of a build)."""
    doc = read_manifest(build_dir)
    dropped = prune(build_dir, doc)
    if dropped:
        atomic_write_json(build_dir / MANIFEST_NAME, doc)
    return dropped


# --- lock --------------------------------------------------------------------------------------


@contextlib.contextmanager
def build_lock(build_dir: Path) -> Iterator[Path]:
    """Hold ``build_dir`` for this process; raises ``BuildError`` if another build holds it."""
    import fcntl

    lock = build_dir / LOCK_NAME
    try:
        build_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise write_failed(lock, exc) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise BuildError(f"build directory {build_dir} in use by pid {holder}; wait for "
                             "that build to finish or pass another -o") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield lock
    finally:
        os.close(fd)  # releases the flock; the file stays (removing it would race)
