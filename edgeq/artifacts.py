"""The build directory of ``edgeq build``: where each artifact lives, and its manifest.

Every stage writes into one directory and records a section in ``manifest.json``, so a later
command (``edgeq bench``, ``edgeq flash``, ``edgeq run``) can find what an earlier one made. The
file names are spelled here and nowhere else::

    build/<model>-<board>/
      model_int8.tflite        the quantized model (copied when the input is already a .tflite)
      model_int8.edgeq.json    its sidecar (dataset, normalization)
      edgeq_rt/                generated C: model.c, model.h, ...
      firmware/                fw.elf, fw.bin, fw.hex, fw.map, size.txt, build.log
      firmware_profile/        the per-layer profiling firmware (``edgeq bench --per-layer``)
      manifest.json            one section per stage: quantize, evaluate, codegen, build, device
    build/last_build.json      the last build directory made for each board: what ``edgeq run``,
                               ``bench`` and ``flash`` use when no ``--build-dir`` is given
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeq.errors import EdgeqError

MODEL = "model_int8.tflite"
SIDECAR = "model_int8.edgeq.json"
GENERATED = "edgeq_rt"
FIRMWARE = "firmware"
PROFILE_FIRMWARE = "firmware_profile"
MANIFEST = "manifest.json"
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

    def update_manifest(self, section: str, value: Any) -> None:
        update_manifest(self.manifest, section, value)


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


def update_manifest(path: str | os.PathLike[str], section: str, value: Any) -> None:
    """Replace one stage's section, keeping the others (written atomically)."""
    from edgeq.fileio import atomic_write_json

    doc = read_manifest(path)
    doc[section] = value
    atomic_write_json(path, doc)
