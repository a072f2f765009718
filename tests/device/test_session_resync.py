"""Replies are matched to requests strictly, and a session starts by flushing the line.

Stale frames are injected two ways: left on the real line by garbage sent to the QEMU firmware
before the session opens (the device's own sequence-0 error replies), and spliced into the
reply stream in front of the real answer while a request is in flight.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers_device import FaultyLink, build_echo

from edgeq.device import protocol as P
from edgeq.device.qemu import QemuInstance
from edgeq.device.session import DeviceSession
from edgeq.errors import DeviceError


@pytest.fixture(scope="module")
def echo_fw(tmp_path_factory):
    return build_echo("mps2-an386", tmp_path_factory.mktemp("resync") / "fw")


@pytest.fixture
def qemu(echo_fw):
    with QemuInstance("mps2-an386", echo_fw.elf) as q:
        yield q


def _noise_error(err: int = P.E_CRC) -> bytes:
    return P.encode_frame(P.ERROR, 0, bytes([err, 0]))


class StaleLink:
    """A real port whose next replies are preceded by ``stale`` frames, as if they had been
    waiting on the line; ``swallow`` drops the device's real replies."""

    def __init__(self, port: Any, stale: bytes = b"", *, swallow: bool = False) -> None:
        self.port, self.stale, self.swallow = port, bytearray(stale), swallow
        self.writes: list[bytes] = []

    @property
    def timeout(self) -> float:
        return self.port.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self.port.timeout = value

    @property
    def in_waiting(self) -> int:
        return len(self.stale) or (0 if self.swallow else self.port.in_waiting)

    def write(self, data: bytes) -> int:
        self.writes.append(bytes(data))
        return self.port.write(data)

    def read(self, n: int = 1) -> bytes:
        if self.stale:
            out = bytes(self.stale[:n])
            del self.stale[:n]
            return out
        got = self.port.read(n)
        return b"" if self.swallow else got


def test_noise_left_on_the_line_does_not_break_the_handshake(qemu):
    # Six damaged frames reach the firmware before the session: it answers each with a
    # sequence-0 error frame, which sits in the host's receive buffer.
    for k in range(6):
        qemu.port.write(b"\x00" + bytes([0x05, 1 + k, 2]) + b"\x00")
    time.sleep(0.3)
    # FaultyLink (with no faults) hands them over one frame per read, as a slow line would.
    s = DeviceSession(FaultyLink(qemu.port), name="qemu", retries=3, alive=qemu.check_alive)
    assert s.hello().model_name == "fw_echo"


def test_stale_frames_in_front_of_the_answer_are_not_taken_for_it(qemu):
    base = DeviceSession(qemu.port, name="qemu")
    base.resync()
    seq_now = base._seq % 255 + 1
    other = seq_now % 255 + 1
    stale = b"".join([_noise_error(P.E_CRC), _noise_error(P.E_FRAMING), _noise_error(P.E_SHORT),
                      _noise_error(P.E_OVERSIZE), _noise_error(P.E_CRC),
                      P.encode_frame(P.CMD_LAYER_INFO | P.REPLY, other, b"\x00" * 4 + b"X"),
                      P.encode_frame(P.ERROR, other, bytes([P.E_ARG, P.CMD_HELLO])),
                      P.encode_frame(P.CMD_HELLO | P.REPLY, 0, b"junk")])
    link = StaleLink(qemu.port, stale)
    s = DeviceSession(link, name="qemu", retries=3)
    s._seq, s._synced = base._seq, True  # the line is clean apart from what we splice in
    info = s.hello()
    assert info.model_name == "fw_echo" and info.board == "mps2-an386"
    assert len(link.writes) == 1  # answered at the first attempt: nothing stale counted
    assert s.layer_info(0) == ("FULLY_CONNECTED", 640)


def test_a_request_reported_damaged_is_resent_promptly_then_fails_clearly(qemu):
    link = StaleLink(qemu.port, _noise_error() * 2, swallow=True)
    s = DeviceSession(link, name="qemu", timeout=5.0, retries=1)
    s._synced = True
    with pytest.raises(DeviceError, match=r"no valid reply to HELLO after 2 attempts \(no reply "
                                          r"within 5 s\)"):
        s.hello()
    assert len(link.writes) == 2
    link = StaleLink(qemu.port, _noise_error() * 3, swallow=True)
    s = DeviceSession(link, name="qemu", timeout=5.0, retries=0)
    s._synced = True
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=r"after 1 attempts \(device saw a damaged frame "
                                          r"\(bad CRC\)\)"):
        s.hello()
    assert time.monotonic() - t0 < 2.0  # the grace period, not the 5 s timeout


def test_session_start_flushes_and_closes_a_partial_frame(qemu):
    qemu.port.write(bytes([0x7E]) * 100)  # half a frame sits in the firmware's receiver
    time.sleep(0.2)
    link = StaleLink(qemu.port)
    s = DeviceSession(link, name="qemu", retries=0, timeout=2.0)
    assert s.hello().model_name == "fw_echo"
    assert link.writes[0] == b"\x00\x00" and len(link.writes) == 2
