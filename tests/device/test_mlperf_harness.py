"""MLPerf Tiny / EEMBC harness firmware (``--protocol mlperf``) in QEMU, driven through the
pseudo-terminal of ``-serial pty`` exactly as a serial tool (the MLPerf Tiny runner) would:
pyserial opens /dev/pts/N at 115200 baud, commands end with ``%``, answers with ``\\r\\n``."""

from __future__ import annotations

import re

import numpy as np
import pytest
import serial
from helpers_device import build_echo, echo_reference

from edgeq.device.mlperf import RUNNER_DB_BYTES, MlperfClient
from edgeq.device.qemu import QemuInstance
from edgeq.errors import DeviceError


@pytest.fixture(scope="module")
def echo_mlperf(tmp_path_factory):
    return build_echo("mps2-an386", tmp_path_factory.mktemp("mlperf") / "fw", protocol="mlperf",
                      input_bytes=64)


@pytest.fixture
def pty_client(echo_mlperf):
    with QemuInstance("mps2-an386", echo_mlperf.elf, pty=True, paused=True) as q:
        assert q.pty_path and q.pty_path.startswith("/dev/")
        port = serial.Serial(q.pty_path, 115200, timeout=1.0, exclusive=True)
        q.resume()  # power on with the port open: the boot banner is not lost
        try:
            yield q, port
        finally:
            port.close()


def _read_until_ready(port) -> bytes:
    buf = b""
    while not buf.endswith(b"m-ready\r\n"):
        chunk = port.read(1)
        assert chunk, f"no m-ready; got {buf!r}"
        buf += chunk
    return buf


def test_raw_wire_format_boot_banner_and_line_endings(pty_client):
    _, port = pty_client
    boot = _read_until_ready(port)
    assert boot == b"m-timestamp-mode-performance\r\nm-init-done\r\nm-ready\r\n"
    port.write(b"name%")
    assert _read_until_ready(port) == b"m-name-dut-[edgeq mps2-an386]\r\nm-ready\r\n"
    port.write(b"profile%")
    assert _read_until_ready(port) == (b"m-profile-[edgeq MLPerf Tiny harness 1.0]\r\n"
                                       b"m-model-[fw_echo]\r\nm-ready\r\n")
    port.write(b"bogus 1 2%")
    assert _read_until_ready(port) == b"e-[Unknown command: bogus]\r\nm-ready\r\n"


def test_full_command_set_and_results_match_the_reference(pty_client):
    _, port = pty_client
    c = MlperfClient(port, name="qemu", db_bytes=RUNNER_DB_BYTES)  # as the runner chunks it
    c.sync()
    assert c.name_() == "edgeq mps2-an386"
    assert c.profile() == {"profile": "edgeq MLPerf Tiny harness 1.0", "model": "fw_echo"}
    helptext = "\n".join(c.help())
    for cmd in ("name", "timestamp", "db SUBCMD", "load N", "print", "infer N", "results"):
        assert cmd in helptext
    t0, t1 = c.timestamp(), c.timestamp()
    assert t0 is not None and t1 is not None and t1 >= t0
    rng = np.random.default_rng(4)
    for _ in range(5):
        x = rng.integers(-128, 128, size=(1, 8, 8, 1), dtype=np.int8)
        c.load(x.tobytes())
        assert c.buffer() == x.tobytes()  # db print reads back every byte
        r = c.infer(3, 2)
        want = (echo_reference(x).astype(np.float64).reshape(-1) + 128) * 0.00390625
        assert r.results == tuple(float(f"{v:.3f}") for v in want)  # printf's %.3f
        assert c.results() == r.results
        assert len(r.laps_us) == 2 and r.laps_us[1] > r.laps_us[0]


def test_errors_are_reported_and_the_device_keeps_serving(pty_client):
    _, port = pty_client
    c = MlperfClient(port, name="qemu")
    c.sync()
    with pytest.raises(DeviceError, match=r"e-\[Command 'db load' requires a byte count"):
        c.command("db load 0")
    with pytest.raises(DeviceError, match=r"exceeds the buffer of 64 bytes"):
        c.command("db load 65")
    c.command("db load 64")
    with pytest.raises(DeviceError, match=r"Insufficient number of hex digits"):
        c.command("db abc")
    with pytest.raises(DeviceError, match=r"Invalid hex digit"):
        c.command("db zz")
    with pytest.raises(DeviceError, match=r"Input has 0 bytes, the model takes 64"):
        c.command("infer 1 0")
    with pytest.raises(DeviceError, match=r"N > 0 inferences"):
        c.command("infer 0")
    with pytest.raises(DeviceError, match=r"Command too long"):
        c.command("db " + "ab" * 600)
    assert c.name_() == "edgeq mps2-an386"


def test_energy_mode_pulses_the_marker_instead_of_printing(tmp_path):
    fw = build_echo("mps2-an386", tmp_path / "fw", protocol="mlperf",
                    defines=("EQ_MLPERF_ENERGY_MODE=1",))
    with QemuInstance("mps2-an386", fw.elf, pty=True, paused=True) as q:
        port = serial.Serial(q.pty_path, 115200, timeout=1.0)
        q.resume()
        try:
            assert _read_until_ready(port).startswith(b"m-timestamp-mode-energy\r\n")
            c = MlperfClient(port, name="qemu")
            assert c.timestamp() is None
            c.load(bytes(64))
            assert not any(re.match("m-lap-us", ln) for ln in c.command("infer 1 0"))
        finally:
            port.close()


def _ae_reference(x: np.ndarray) -> np.ndarray:
    """Python twin of tests/fixtures/fw_ae_model/model.c."""
    v = ((3 * x.astype(np.int64).reshape(-1)) >> 2) + (np.arange(64) % 5) - 2
    return np.clip(v, -128, 127).astype(np.int8)


def test_autoencoder_result_is_the_reconstruction_error(tmp_path):
    from helpers_device import DATA, ECHO_RUNTIME

    from edgeq.bench.mlperf import harness_mse
    from edgeq.toolchain.boards import resolve_target
    from edgeq.toolchain.compiler import build_firmware

    fw = build_firmware(resolve_target(board="mps2-an386"), DATA / "fw_ae_model", tmp_path / "fw",
                        runtime_dir=ECHO_RUNTIME, input_bytes=64, protocol="mlperf",
                        defines=("EQ_MLPERF_RESULT_MSE=1",))
    rng = np.random.default_rng(9)
    with QemuInstance("mps2-an386", fw.elf, pty=True) as q:
        port = serial.Serial(q.pty_path, 115200, timeout=1.0)
        try:
            c = MlperfClient(port, name="qemu")
            c.sync()
            for _ in range(4):
                x = rng.integers(-128, 128, size=64, dtype=np.int8)
                c.load(x.tobytes())
                got = c.infer(1, 0).results
                y = _ae_reference(x)
                s_in = float(np.float32(0.05))  # the firmware's float scale, exactly
                want = harness_mse(x, y, (s_in, 3), (0.0625, -5))
                d = (y.astype(np.float64) + 5) * 0.0625 - (x.astype(np.float64) - 3) * s_in
                assert want == (float(f"{np.mean(d * d):.3f}"),)  # numpy, written out here
                assert got == want and got[0] > 0.05
        finally:
            port.close()
