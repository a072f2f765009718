"""The build directory of ``edgeq build``: where each artifact lives, and its manifest.

Every stage writes into one directory and records a section in ``manifest.json``, so a later
command (``edgeq bench``, ``edgeq flash``, ``edgeq run``) can find what an earlier one made. The
file names are spelled here and nowhere else::

    build/<model>-<board>/
      model_int8.tflite        the quantized model (copied when the input is already a .tflite)
      model_int8.edgeq.json    its sidecar (dataset, normalization)
      edgeq_rt/                generated C: model.c, model.h, ...
      tflm_model/              or, with --runtime tflm: model.h, model_data.c, eq_tflm_data.h
      firmware/                fw.elf, fw.bin, fw.hex, fw.map, size.txt, build.log
      firmware_profile/        the per-layer profiling firmware (``edgeq bench --per-layer``)
      manifest.json            one section per stage: quantize, evaluate, codegen, build, device
      .edgeq-build.lock        held (flock) by the build running in this directory
    build/last_build.json      the last build directory made for each board: what ``edgeq run``,
                               ``bench`` and ``flash`` use when no ``--build-dir`` is given

Each manifest section records the sha256 of the files it was made from (``inputs``). Every write
re-checks all sections against the files now on disk and drops those whose inputs changed or
vanished, so the manifest never claims, say, a device validation for firmware that was rebuilt
since (``edgeq build --no-run`` after a full build used to keep it).

A build holds the lock file with ``flock`` for its whole run: a second build into the same
directory fails at once naming the holder's pid, and the kernel releases the lock if the holder
dies, so there is never a stale lock to clean up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeq.errors import BuildError, EdgeqError

log = logging.getLogger(__name__)

MODEL = "model_int8.tflite"
SIDECAR = "model_int8.edgeq.json"
GENERATED = "edgeq_rt"
TFLM_GENERATED = "tflm_model"  # the model files of a TFLite Micro firmware (--runtime tflm)
FIRMWARE = "firmware"
PROFILE_FIRMWARE = "firmware_profile"
MANIFEST = "manifest.json"
LOCK = ".edgeq-build.lock"
FIRMWARE_STEM = "fw"  # the toolchain names its outputs fw.elf / fw.bin / fw.hex
DEFAULT_MODEL_NAME = "digits_cnn"
BUILD_ROOT = "build"
LAST_BUILD = "last_build.json"  # {board name: build directory}, under BUILD_ROOT


@dataclass(frozen=True)
class BuildDir:
    """Paths inside one build directory (nothing is created by asking)."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / MODEL

    @property
    def sidecar(self) -> Path:
        return self.root / SIDECAR

    @property
    def generated(self) -> Path:
        return self.root / GENERATED

    @property
    def tflm_generated(self) -> Path:
        return self.root / TFLM_GENERATED

    @property
    def firmware(self) -> Path:
        return self.root / FIRMWARE

    @property
    def elf(self) -> Path:
        return self.firmware / f"{FIRMWARE_STEM}.elf"

    @property
    def profile_firmware(self) -> Path:
        return self.root / PROFILE_FIRMWARE

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    def read_manifest(self) -> dict[str, Any]:
        return read_manifest(self.manifest)

    def manifest_section(self, section: str) -> dict[str, Any]:
        value = self.read_manifest().get(section)
        return value if isinstance(value, dict) else {}

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    def update_manifest(self, section: str, value: Any, inputs: Sequence[Path] = ()) -> None:
        update_manifest(self.manifest, section, value, inputs)


def build_dir(path: str | os.PathLike[str]) -> BuildDir:
    return BuildDir(Path(path))


def default_build_dir(board_name: str, model: str = DEFAULT_MODEL_NAME) -> BuildDir:
    """``build/<model>-<board>``: where ``edgeq build`` puts a model built for a board."""
    return BuildDir(Path("build") / f"{model}-{board_name}")


def record_last_build(bd: BuildDir, board_name: str) -> None:
    """Remember ``bd`` as the last build for ``board_name`` (in ``build/last_build.json``)."""
    from edgeq.fileio import atomic_write_json

    path = Path(BUILD_ROOT) / LAST_BUILD
    doc = read_manifest(path)
    doc[board_name] = str(bd.root.resolve())
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, doc)


def last_build_dir(board_name: str) -> BuildDir:
    """The last build recorded for ``board_name`` when it still exists, else the default
    ``build/digits_cnn-<board>``."""
    recorded = read_manifest(Path(BUILD_ROOT) / LAST_BUILD).get(board_name)
    if isinstance(recorded, str) and Path(recorded).is_dir():
        return BuildDir(Path(recorded))
    return default_build_dir(board_name)


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest as a dict; empty when it does not exist yet."""
    p = Path(path)
    if not p.is_file():
        return {}
    try:
        doc = json.loads(p.read_text())
    except ValueError:
        raise EdgeqError(f"{p}: existing manifest is not valid JSON; delete it") from None
    return doc if isinstance(doc, dict) else {}


def update_manifest(path: str | os.PathLike[str], section: str, value: Any,
                    inputs: Sequence[Path] = ()) -> None:
    """Replace one stage's section, tied to the current sha256 of the files it was made from
    (``inputs``); sections whose recorded inputs changed since are dropped (atomic write)."""
    from edgeq.fileio import atomic_write_json

    p = Path(path)
    doc = read_manifest(p)
    if inputs:
        value = {**value, "inputs": input_digests(p.parent, inputs)}
    doc[section] = value
    dropped = prune_manifest(p.parent, doc)
    if dropped:
        log.info("manifest: dropped %s (made from files that have changed)", ", ".join(dropped))
    atomic_write_json(p, doc)


def _input_key(root: Path, path: Path) -> str:
    """Inputs inside the build directory are named relative to it, others absolutely."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def input_digests(root: Path, paths: Sequence[Path]) -> dict[str, str]:
    from edgeq.fileio import sha256_file

    return {_input_key(root, p): sha256_file(p) for p in paths}


def _still_valid(root: Path, section: Any) -> bool:
    """A section without recorded inputs cannot be checked and is kept as it is."""
    from edgeq.fileio import sha256_file

    inputs = section.get("inputs") if isinstance(section, dict) else None
    if not isinstance(inputs, dict):
        return True
    for key, digest in inputs.items():
        f = Path(key) if os.path.isabs(key) else root / key
        if not f.exists() or sha256_file(f) != digest:
            return False
    return True


def prune_manifest(root: Path, doc: dict[str, Any]) -> list[str]:
    """Drop the sections whose input files changed or vanished; returns their names."""
    stale = [name for name, section in doc.items() if not _still_valid(root, section)]
    for name in stale:
        del doc[name]
    return stale


def refresh_manifest(bd: BuildDir) -> list[str]:
    """Re-check a build directory's manifest against its files (at the start of a build)."""
    from edgeq.fileio import atomic_write_json

    doc = read_manifest(bd.manifest)
    dropped = prune_manifest(bd.root, doc)
    if dropped:
        atomic_write_json(bd.manifest, doc)
    return dropped


@contextlib.contextmanager
def build_lock(bd: BuildDir) -> Iterator[Path]:
    """Hold the build directory for this process; ``BuildError`` if another build holds it."""
    import fcntl

    from edgeq.fileio import write_failed

    try:
        bd.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(bd.lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise write_failed(bd.lock, exc) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise BuildError(f"build directory {bd.root} in use by pid {holder}; wait for that "
                             "build to finish or pass another -o") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield bd.lock
    finally:
        os.close(fd)  # releases the flock; the file stays (removing it would race)
