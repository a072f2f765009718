"""Flashing real boards: thin adapters over pyocd and openocd command lines."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from edgeq.errors import DeviceError
from edgeq.toolchain.boards import Board

log = logging.getLogger(__name__)


def flash_command(board: Board, firmware: Path, *, probe: str | None = None,
                  tool: str | None = None) -> list[str]:
    """The command that programs ``firmware`` (.hex for pyocd, .elf for openocd) on ``board``."""
    if board.emulated:
        raise DeviceError(f"{board.name} is emulated: nothing to flash; use `edgeq bench "
                          f"--board {board.name} --emulator`")
    tool = tool or board.flasher or ("pyocd" if board.pyocd_target else "openocd")
    if tool == "pyocd":
        if not board.pyocd_target:
            raise DeviceError(f"{board.name} has no pyocd target; add flasher.pyocd_target")
        cmd = ["pyocd", "flash", "--target", board.pyocd_target]
        if probe:
            cmd += ["--uid", probe]
        return [*cmd, str(firmware.with_suffix(".hex"))]
    if tool == "openocd":
        if not board.openocd_config:
            raise DeviceError(f"{board.name} has no openocd config; add flasher.openocd_config")
        cmd = ["openocd"]
        for cfg in board.openocd_config:
            cmd += ["-f", cfg]
        if probe:
            cmd += ["-c", f"adapter serial {probe}"]
        return [*cmd, "-c", f"program {firmware.with_suffix('.elf')} verify reset exit"]
    raise DeviceError(f"unknown flasher {tool!r}; use pyocd or openocd")


def flash_firmware(board: Board, firmware: Path, *, probe: str | None = None,
                   tool: str | None = None, timeout: float = 120.0) -> list[str]:
    """Program the board; returns the command that ran."""
    cmd = flash_command(board, firmware, probe=probe, tool=tool)
    image = Path(cmd[-1]) if cmd[0] == "pyocd" else firmware.with_suffix(".elf")
    if not image.is_file():
        raise DeviceError(f"firmware {image} not found; run `edgeq build --board {board.name}`")
    if shutil.which(cmd[0]) is None:
        hint = ("pip install 'edgeq[device]' (pyocd)" if cmd[0] == "pyocd"
                else "sudo apt-get install openocd")
        raise DeviceError(f"{cmd[0]} not found on PATH; install it: {hint}")
    try:
        log.debug("flashing: %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{cmd[0]} did not finish within {timeout:g} s; check the probe "
                          "connection") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise DeviceError(f"{cmd[0]} failed to flash {board.name}: "
                          f"{lines[-1] if lines else 'no output'}; check the probe and board")
    return cmd
