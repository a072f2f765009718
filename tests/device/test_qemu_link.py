"""The emulator's host link: semihosting by default, the board's UART on request, chosen at
build time and recognised from the ELF; the emulator ends when the host closes the link."""

from __future__ import annotations

import time

import pytest
from helpers_device import build_echo

from edgeq.device.qemu import QemuInstance, firmware_link
from edgeq.device.session import DeviceSession
from edgeq.errors import BuildError, DeviceError


@pytest.fixture(scope="module")
def fws(tmp_path_factory):
    root = tmp_path_factory.mktemp("links")
    return {link: build_echo("mps2-an386", root / link, link=link)
            for link in ("semihosting", "uart")}


def test_link_is_chosen_at_build_and_read_back_from_the_elf(fws, tmp_path):
    assert build_echo("mps2-an386", tmp_path / "default").link == "semihosting"
    for link, fw in fws.items():
        assert fw.link == link and firmware_link(fw.elf) == link
    with pytest.raises(BuildError, match="nucleo-l4r5zi is a real board: semihosting needs a "
                                         "debugger"):
        build_echo("nucleo-l4r5zi", tmp_path / "real", link="semihosting")
    with pytest.raises(BuildError, match="unknown link 'usb'"):
        build_echo("mps2-an386", tmp_path / "usb", link="usb")
    with pytest.raises(DeviceError, match="talks over semihosting, not a UART"):
        QemuInstance("mps2-an386", fws["semihosting"].elf, pty=True)


def test_emulator_ends_when_the_host_closes_the_semihosting_link(fws):
    with QemuInstance("mps2-an386", fws["semihosting"].elf) as q:
        assert DeviceSession(q.port, alive=q.check_alive).hello().board == "mps2-an386"
        q.port.close()  # only the pipes: no signal is sent
        deadline = time.monotonic() + 10
        while q.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert q.proc.poll() == 0  # the firmware saw end-of-file and called SYS_EXIT
