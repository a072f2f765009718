"""netduinoplus2 in QEMU with its real STM32F405 clock setup compiled in: QEMU has no RCC model
(the HSE ready bit reads 0), so the firmware must time out, fall back to the reset clock, say so
over the UART and keep serving the protocol (the QEMU build normally skips the clock tree)."""

from __future__ import annotations

import time

import numpy as np
from helpers_device import build_echo, echo_reference

from edgeq.device.qemu import QemuInstance
from edgeq.device.session import DeviceSession


def test_clock_fallback_reports_and_keeps_serving(tmp_path):
    fw = build_echo("netduinoplus2", tmp_path / "fw", clock_setup=True, link="uart")
    with QemuInstance("netduinoplus2", fw.elf) as q:
        q.port.timeout = 0.2
        got = bytearray()
        deadline = time.monotonic() + 20
        while b"Hz\r\n" not in got and time.monotonic() < deadline:
            got += q.port.read(256)
        text = bytes(got)
        assert text.startswith(b"\x00edgeq: clock setup failed (oscillator not ready); running "
                               b"at the reset clock, 16000000 Hz\r\n"), text[:120]
        s = DeviceSession(q.port, alive=q.check_alive)
        info = s.hello()
        assert info.clock_hz == 16_000_000  # the clock it runs at, not the 168 MHz target
        x = np.arange(64, dtype=np.int8).reshape(1, 8, 8, 1)
        (y,), _ = s.infer([x], runs=1, warmup=0)
        np.testing.assert_array_equal(y, echo_reference(x))


def test_qemu_build_skips_the_clock_tree(tmp_path):
    fw = build_echo("netduinoplus2", tmp_path / "fw")
    with QemuInstance("netduinoplus2", fw.elf) as q:
        info = DeviceSession(q.port, alive=q.check_alive).hello()
        assert info.clock_hz == 168_000_000
    assert "clock_stm32f4.c" not in (fw.out_dir / "build.log").read_text()
