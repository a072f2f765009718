"""Exact instruction counts in QEMU through a TCG plugin (``firmware/qemu_plugin``).

SysTick under ``-icount shift=0`` counts instructions in steps of 1e9/clock_hz (40 on MPS2).
The plugin counts every executed instruction between the entry of ``edgeq_model_invoke`` and
the entry of ``eq_counter_now`` (the end of a timed run), which cross-checks and refines those
figures. Needs the host gcc; QEMU 7.2 loads plugins written against API version 1.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from edgeq.errors import DeviceError
from edgeq.toolchain.compiler import FIRMWARE_DIR, find_tool

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


def plugin_args(elf: Path, plugin: Path, counts_file: Path) -> list[str]:
    """QEMU arguments that write one exact count per timed run into ``counts_file``."""
    start = symbol_address(elf, "edgeq_model_invoke")
    stop = symbol_address(elf, "eq_counter_now")
    return ["-plugin", f"{plugin},start={start:#x},stop={stop:#x},out={counts_file}"]


def read_counts(counts_file: Path) -> list[int]:
    """Exact counts of every window so far (warm-up runs have no stop, so are not listed)."""
    if not counts_file.is_file():
        return []
    return [int(line) for line in counts_file.read_text().split()]
