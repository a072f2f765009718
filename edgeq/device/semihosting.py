"""Run a bare-metal benchmark firmware in QEMU to completion and collect its semihosting output.

The TFLM baseline firmware (``edgeq.toolchain.tflm_firmware``) has no UART protocol: it runs one
inference, prints one result line through Arm semihosting and exits the emulator.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from edgeq.device.qemu import INSTALL_HINT, QEMU
from edgeq.errors import DeviceError
from edgeq.toolchain.boards import Board
from edgeq.toolchain.tflm_firmware import TflmRun, parse_semihosting_output


def run_to_exit(board: Board, elf: Path, extra_args: list[str], timeout: float = 300.0) -> str:
    """stdout+stderr of QEMU running ``elf`` with semihosting until the firmware exits."""
    exe = shutil.which(QEMU)
    if exe is None:
        raise DeviceError(f"{QEMU} not found on PATH; {INSTALL_HINT}")
    cmd = [exe, "-M", board.qemu_machine or "", "-display", "none", "-monitor", "none",
           "-serial", "null", "-semihosting-config", "enable=on,target=native", "-kernel",
           str(elf), *extra_args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{elf.name} did not finish within {timeout:g} s in QEMU") from None
    return proc.stdout + proc.stderr


def run_tflm_firmware(board: Board, elf: Path, extra_args: list[str]) -> TflmRun:
    """Run the TFLM benchmark firmware; its status, arena use and output bytes."""
    return parse_semihosting_output(run_to_exit(board, elf, extra_args))
