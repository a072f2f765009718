"""Exact instruction counts and timing events in QEMU through a TCG plugin (``firmware/qemu_plugin``).

SysTick under ``-icount shift=0`` counts instructions in steps of 1e9/clock_hz (40 on MPS2).
The plugin counts every executed instruction between the entry of ``edgeq_model_invoke`` and
the entry of ``eq_counter_now`` (the end of a timed run), which cross-checks and refines those
figures. The same plugin classifies each instruction for the cycle estimate
(``edgeq.device.timing``) and, given the per-layer hook as ``mark``, attributes counts to layers.
Needs the host gcc; QEMU 7.2 loads plugins written against API version 1.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from edgeq.errors import DeviceError
from edgeq.toolchain.boards import Board
from edgeq.toolchain.compiler import FIRMWARE_DIR, find_tool

if TYPE_CHECKING:
    from edgeq.device.timing import Window

PLUGIN_SOURCE = FIRMWARE_DIR / "qemu_plugin" / "icount_window.c"


def build_plugin(out_dir: Path) -> Path:
    """Compile the plugin with the host gcc into ``out_dir`` (once)."""
    so = out_dir / "icount_window.so"
    if so.is_file() and so.stat().st_mtime >= PLUGIN_SOURCE.stat().st_mtime:
        return so
    gcc = shutil.which("gcc")
    if gcc is None:
        raise DeviceError("host gcc not found; install it (sudo apt-get install gcc) to count "
                          "exact instructions")
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
                           "-fvisibility=hidden", str(PLUGIN_SOURCE), "-o", str(so)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise DeviceError(f"could not compile the QEMU plugin: {proc.stderr.strip()[:200]}")
    return so


def symbol_address(elf: Path, name: str) -> int:
    """Address of a function in the firmware (Thumb bit cleared)."""
    out = subprocess.run([find_tool("nm"), str(elf)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16) & ~1
    raise DeviceError(f"{elf} has no symbol {name}; rebuild the firmware with edgeq")


def plugin_args(elf: Path, plugin: Path, counts_file: Path, *, start: str = "edgeq_model_invoke",
                stop: str = "eq_counter_now", layers: bool = False,
                flash: tuple[int, int] | None = None) -> list[str]:
    """QEMU arguments that write one line of counts per timed run into ``counts_file``;
    ``layers`` also marks each call of the per-layer hook, ``flash`` (lo, hi) counts data reads
    and branch targets in flash."""
    a, b = symbol_address(elf, start), symbol_address(elf, stop)
    spec = f"{plugin},start={a:#x},stop={b:#x},out={counts_file}"
    if layers:
        spec += f",mark={symbol_address(elf, 'edgeq_layer_hook'):#x}"
    if flash is not None:
        spec += f",flash={flash[0]:#x}:{flash[1]:#x}"
    return ["-plugin", spec]


def read_counts(counts_file: Path) -> list[int]:
    """Exact instruction counts of every window so far (warm-up runs have no stop, so are not
    listed)."""
    from edgeq.device.timing import read_windows

    return [w.total.insns for w in read_windows(counts_file)]


class PluginCounter:
    """The plugin arguments for one QEMU run of ``elf`` on ``board`` and its windows afterwards.

    Per-layer marks are on when the firmware has the per-layer hook; flash reads are counted in
    the board's flash region (its wait states enter the cycle estimate)."""

    def __init__(self, board: Board, elf: Path, work_dir: Path) -> None:
        from edgeq.device.timing import flash_range

        work_dir.mkdir(parents=True, exist_ok=True)
        self.counts_file = work_dir / f"plugin_counts_{elf.stem}.txt"
        self.counts_file.unlink(missing_ok=True)
        self.layers = has_symbol(elf, "edgeq_layer_hook")
        self.args = plugin_args(elf, build_plugin(work_dir / "plugin"), self.counts_file,
                                layers=self.layers, flash=flash_range(board))

    def windows(self) -> list[Window]:
        from edgeq.device.timing import read_windows

        return read_windows(self.counts_file)


def has_symbol(elf: Path, name: str) -> bool:
    try:
        symbol_address(elf, name)
    except DeviceError:
        return False
    return True
