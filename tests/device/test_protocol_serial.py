"""Real serial transport and flashing adapters: the errors users hit, tested without a board."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeq.device.flash import flash_command, flash_firmware
from edgeq.device.transport import open_serial
from edgeq.errors import DeviceError
from edgeq.toolchain.boards import resolve_target


def test_absent_serial_port():
    with pytest.raises(DeviceError, match="serial port /dev/ttyEDGEQ_NOPE not found"):
        open_serial("/dev/ttyEDGEQ_NOPE")


def test_busy_serial_port_on_a_real_pty():
    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        first = open_serial(name)
        try:
            with pytest.raises(DeviceError, match=f"serial port {name} is busy"):
                open_serial(name)
        finally:
            first.close()
        open_serial(name).close()  # free again once the first user closed it
    finally:
        os.close(master)
        os.close(slave)


def test_serial_round_trip_over_pty():
    master, slave = os.openpty()
    try:
        port = open_serial(os.ttyname(slave), timeout=0.5)
        os.write(master, b"ping")
        assert port.read(4) == b"ping"
        port.write(b"pong")
        assert os.read(master, 4) == b"pong"
        port.close()
    finally:
        os.close(master)
        os.close(slave)


def test_flash_commands_for_pyocd_and_openocd():
    b = resolve_target(board="nucleo-l4r5zi")
    fw = Path("/x/firmware/fw.elf")
    assert flash_command(b, fw, probe="066DFF") == [
        "pyocd", "flash", "--target", "stm32l4r5zitx", "--uid", "066DFF", "/x/firmware/fw.hex"]
    cmd = flash_command(b, fw, tool="openocd")
    assert cmd[:5] == ["openocd", "-f", "interface/stlink.cfg", "-f", "target/stm32l4x.cfg"]
    assert cmd[-1] == "program /x/firmware/fw.elf verify reset exit"


def test_flash_refuses_emulated_board_missing_firmware_and_missing_tool(tmp_path, monkeypatch):
    with pytest.raises(DeviceError, match="mps2-an386 is emulated: nothing to flash"):
        flash_command(resolve_target(board="mps2-an386"), tmp_path / "fw.elf")
    b = resolve_target(board="nucleo-f446re")
    with pytest.raises(DeviceError, match="fw.hex not found; run `edgeq build"):
        flash_firmware(b, tmp_path / "fw.elf")
    (tmp_path / "fw.hex").write_text(":00000001FF\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(DeviceError, match="pyocd not found on PATH; install it"):
        flash_firmware(b, tmp_path / "fw.elf")
