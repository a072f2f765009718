"""Firmware in QEMU with the echo fixture model: protocol round trip on every emulated board,
deterministic instruction counts, robustness against damaged frames, host retries/timeouts."""

from __future__ import annotations

import os
import struct
import time

import numpy as np
import pytest
from helpers_device import FaultyLink, build_echo, echo_reference, read_frames

from edgeq.device import protocol as P
from edgeq.device.qemu import QemuInstance
from edgeq.device.session import DeviceSession
from edgeq.errors import DeviceError

EMULATED = ["mps2-an386", "mps2-an500", "mps2-an385", "mps2-an505", "netduinoplus2"]


@pytest.fixture(scope="module")
def firmwares(tmp_path_factory):
    """Default link (semihosting) per board, plus the board's UART model as ``(board, "uart")``
    so every UART driver QEMU can emulate keeps running the protocol."""
    root = tmp_path_factory.mktemp("echo_fw")
    fws = {b: build_echo(b, root / b, profile_layers=(b == "mps2-an386")) for b in EMULATED}
    fws.update({(b, "uart"): build_echo(b, root / f"{b}-uart", link="uart") for b in EMULATED})
    return fws


@pytest.fixture
def an386(firmwares):
    with QemuInstance("mps2-an386", firmwares["mps2-an386"].elf) as q:
        yield q


def _inputs(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=(1, 8, 8, 1), dtype=np.int8) for _ in range(n)]


def test_round_trip_matches_reference_and_handshake(an386):
    s = DeviceSession(an386.port, name="qemu", alive=an386.check_alive)
    info = s.hello()
    assert (info.protocol_version, info.firmware_version) == (P.VERSION, "1.0")
    assert (info.model_name, info.model_hash, info.board) == ("fw_echo", "0123456789abcdef",
                                                              "mps2-an386")
    assert (info.counter, info.clock_hz, info.arena_bytes) == ("instructions", 25_000_000, 128)
    assert info.inputs[0].shape == (1, 8, 8, 1) and info.inputs[0].zero_point == -128
    assert info.inputs[0].scale == pytest.approx(0.0625) and info.outputs[0].bytes == 10
    for x in _inputs(30):
        (y,), res = s.infer([x], runs=2, warmup=1)
        np.testing.assert_array_equal(y, echo_reference(x))
        assert len(res.counts) == 2 and res.counts[0] == res.counts[1] > 1000
        assert res.counts[0] % 40 == 0  # 25 MHz SysTick: one tick per 40 instructions


def test_instruction_counts_identical_across_qemu_runs(firmwares):
    x = _inputs(1, seed=5)[0]
    seen = []
    for _ in range(2):
        with QemuInstance("mps2-an386", firmwares["mps2-an386"].elf) as q:
            s = DeviceSession(q.port, alive=q.check_alive)
            _, res = s.infer([x], runs=5)
            seen.append((res.counts, s.layer_counts()))
    assert seen[0] == seen[1]
    counts, layers = seen[0]
    assert len(set(counts)) == 1
    assert len(layers) == 2 and all(v > 0 for v in layers) and sum(layers) <= counts[0]


def test_more_runs_than_one_invoke_holds_are_split(an386):
    s = DeviceSession(an386.port)
    s.load_input(0, _inputs(1)[0].tobytes())
    res = s.invoke(runs=70, warmup=2)
    assert s.info.max_runs == 64 and len(res.counts) == 70 and len(set(res.counts)) == 1


def test_layer_info(an386):
    s = DeviceSession(an386.port)
    assert s.layer_info(0) == ("FULLY_CONNECTED", 640)
    assert s.layer_info(1) == ("RELU", 0)
    with pytest.raises(DeviceError, match="rejected LAYER_INFO: bad argument"):
        s.layer_info(2)


@pytest.mark.parametrize("link", ["semihosting", "uart"])
@pytest.mark.parametrize("board", EMULATED)
def test_round_trip_on_every_emulated_board_and_link(firmwares, board, link):
    fw = firmwares[board] if link == "semihosting" else firmwares[(board, link)]
    assert fw.link == link
    with QemuInstance(board, fw.elf) as q:
        assert q.link == link
        s = DeviceSession(q.port, name=board, alive=q.check_alive)
        assert s.hello().board == board
        for x in _inputs(5, seed=1):
            (y,), res = s.infer([x])
            np.testing.assert_array_equal(y, echo_reference(x))
            assert res.unit == "instructions" and res.counts[0] > 1000


def _send(port, data: bytes) -> list[P.Frame]:
    port.write(data)
    return read_frames(port, timeout=3.0)


def _hello_ok(port) -> bool:
    """A clean HELLO is answered (stale error replies to earlier garbage may come first)."""
    port.write(b"\x00" + P.encode_frame(P.CMD_HELLO, 42))
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        for f in read_frames(port, timeout=0.5):
            if f.code == P.CMD_HELLO | P.REPLY and f.seq == 42:
                return True
    return False


def _error(frames: list[P.Frame]) -> int:
    assert frames and frames[0].code == P.ERROR, frames
    return frames[0].payload[0]


def test_firmware_answers_damaged_frames_with_errors_and_keeps_serving(an386):
    port = an386.port
    good = P.encode_frame(P.CMD_HELLO, 3)
    flipped = bytearray(good)
    flipped[4] ^= 0x01
    assert _error(_send(port, bytes(flipped))) == 1  # bad CRC
    assert _hello_ok(port)
    assert _error(_send(port, good[:4] + b"\x00")) in (4, 8)  # truncated
    assert _hello_ok(port)
    assert _error(_send(port, bytes([0x05, 1, 2, 0x00]))) == 4  # COBS code past the end
    assert _error(_send(port, bytes([0x7E]) * (P.MAX_PAYLOAD + 3000) + b"\x00")) == 3  # oversized
    assert _hello_ok(port)
    rng = np.random.default_rng(7)
    garbage = rng.integers(0, 256, size=5000, dtype=np.uint8).tobytes()
    port.write(garbage)
    read_frames(port, timeout=1.0, want=10**6)  # drain whatever error replies came back
    assert _hello_ok(port)
    assert _error(_send(port, P.encode_frame(P.CMD_HELLO, 4, version=9))) == 2
    assert _error(_send(port, P.encode_frame(0x33, 5))) == 5
    bad_offset = struct.pack("<BI", 0, 60) + bytes(10)  # 60 + 10 > 64 input bytes
    assert _error(_send(port, P.encode_frame(P.CMD_LOAD_INPUT, 6, bad_offset))) == 6
    assert _error(_send(port, P.encode_frame(P.CMD_INVOKE, 7, struct.pack("<HH", 0, 999)))) == 6
    assert _hello_ok(port)


def test_host_retries_after_dropped_and_corrupted_replies(an386):
    link = FaultyLink(an386.port, drop=1)
    s = DeviceSession(link, timeout=0.5, retries=2)
    s.resync()
    link.writes = 0
    assert s.hello().model_name == "fw_echo"
    assert link.writes == 2  # the dropped reply cost one retry
    link.corrupt = 1
    x = _inputs(1, seed=3)[0]
    (y,), _ = s.infer([x])
    np.testing.assert_array_equal(y, echo_reference(x))
    assert link.writes > 2 + 3


def test_host_times_out_with_a_clear_message(an386):
    s = DeviceSession(FaultyLink(an386.port, drop_all=True), timeout=0.3, retries=1, name="qemu")
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=r"qemu: no valid reply to HELLO after 2 attempts "
                                          r"\(no reply within 0.3 s\)"):
        s.hello()
    assert time.monotonic() - t0 < 3


def test_wrong_model_hash_is_detected(an386):
    s = DeviceSession(an386.port, name="qemu")
    s.check_model("0123456789abcdef" + "00" * 24)
    with pytest.raises(DeviceError, match="runs model fw_echo hash 0123456789abcdef, expected "
                                          "ffffffffffffffff"):
        s.check_model("f" * 64)


def test_emulator_that_exits_early_is_reported(firmwares):
    with pytest.raises(DeviceError, match=r"QEMU \(mps2-an999\) exited early: .*machine"):
        QemuInstance("mps2-an999", firmwares["mps2-an386"].elf).start()


def test_crashing_firmware_never_hangs_the_host(tmp_path):
    bogus = tmp_path / "fw.elf"
    bogus.write_bytes(bytes(range(256)) * 4)  # loaded as a raw image: garbage vectors
    t0 = time.monotonic()
    with QemuInstance("mps2-an386", bogus) as q:
        s = DeviceSession(q.port, alive=q.check_alive, timeout=0.5, retries=1)
        with pytest.raises(DeviceError, match="exited with code|no valid reply"):
            s.hello()
    assert time.monotonic() - t0 < 10


def test_emulator_dying_mid_session_is_reported(firmwares):
    with QemuInstance("mps2-an386", firmwares["mps2-an386"].elf) as q:
        s = DeviceSession(q.port, alive=q.check_alive, timeout=1.0, retries=1)
        s.hello()
        q.proc.kill()
        q.proc.wait()
        with pytest.raises(DeviceError, match="exited|connection lost|write failed"):
            s.hello()


def test_missing_qemu_says_how_to_install(tmp_path, monkeypatch, firmwares):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DeviceError, match="qemu-system-arm not found.*apt-get install "
                                          "qemu-system-arm"):
        QemuInstance("mps2-an386", firmwares["mps2-an386"].elf).start()
    assert os.environ["PATH"] == str(tmp_path)
