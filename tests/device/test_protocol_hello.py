"""Handshake parsing and frame-length limits of the host codec, against payloads packed here
field by field from the layout in firmware/app/eq_app.c (cmd_hello, put_str, put_io)."""

from __future__ import annotations

import struct
import zlib

import pytest

from edgeq.device import protocol as P


def _io(dtype: int, dims: tuple[int, ...], nbytes: int, scale: float, zp: int) -> bytes:
    return bytes([dtype, len(dims)]) + struct.pack(f"<{len(dims)}i", *dims) + struct.pack(
        "<Ifi", nbytes, scale, zp)


def _hello(**kw: object) -> bytes:
    f = {"proto": 1, "major": 3, "minor": 7, "counter": 1, "clock": 25_000_000,
         "arena": 70_000, "layers": 300, "profile": 1, "max_payload": 256, "max_runs": 50,
         "staging": 4096, "hash": b"feedfacecafe", "name": b"kws", "board": b"nucleo-f746zg",
         "ins": [(0, (1, 49, 40, 1), 1960, 0.5, -3), (9, (1, 2), 8, 1.0, 0)],
         "outs": [(2, (1, 4), 16, 0.25, 7)]}
    f.update(kw)
    p = struct.pack("<BBBBIIHBBBHHI", f["proto"], f["major"], f["minor"], f["counter"],
                    f["clock"], f["arena"], f["layers"], f["profile"], len(f["ins"]),
                    len(f["outs"]), f["max_payload"], f["max_runs"], f["staging"])
    assert len(p) == 25
    p += f["hash"].ljust(16, b"\x00")
    for s in (f["name"], f["board"]):
        p += bytes([len(s)]) + s
    for io in [*f["ins"], *f["outs"]]:
        p += _io(*io)
    return p


def test_hello_fields_land_where_the_firmware_puts_them() -> None:
    info = P.parse_hello(_hello())
    assert info == P.DeviceInfo(
        protocol_version=1, firmware_version="3.7", counter="cycles", clock_hz=25_000_000,
        arena_bytes=70_000, num_layers=300, profile_layers=True, max_payload=256, max_runs=50,
        staging_bytes=4096, model_hash="feedfacecafe", model_name="kws", board="nucleo-f746zg",
        inputs=(P.IoInfo("int8", (1, 49, 40, 1), 1960, 0.5, -3),
                P.IoInfo("dtype9", (1, 2), 8, 1.0, 0)),
        outputs=(P.IoInfo("float32", (1, 4), 16, 0.25, 7),))
    other = P.parse_hello(_hello(counter=0, profile=0, ins=[], hash=b"0123456789abcdef"))
    assert other.counter == "instructions" and other.profile_layers is False
    assert other.inputs == () and other.model_hash == "0123456789abcdef"
    assert P.parse_hello(_hello(counter=5)).counter == "counter5"
    # unsigned fields stay unsigned; a name that is not UTF-8 is shown, not refused
    odd = P.parse_hello(_hello(minor=201, name=b"k\xffs", staging=3_000_000_000))
    assert odd.firmware_version == "3.201" and odd.staging_bytes == 3_000_000_000
    assert odd.model_name == "k\ufffds"


@pytest.mark.parametrize("cut", [0, 10, 24, 30, 41, 44, 60, -1])
def test_truncated_hello_is_a_frame_error(cut: int) -> None:
    with pytest.raises(P.FrameError, match="malformed handshake reply"):
        P.parse_hello(_hello()[:cut])


def _raw_frame(body: bytes) -> bytes:
    return P.cobs_encode(body + struct.pack("<I", zlib.crc32(body)))


def test_frame_length_limits_are_exact() -> None:
    biggest = bytes(k % 251 + 1 for k in range(P.MAX_PAYLOAD))
    full = P.encode_frame(P.CMD_LOAD_INPUT, 300, biggest)
    f = P.decode_frame(full[:-1])
    assert f == P.Frame(P.CMD_LOAD_INPUT, 300 & 0xFF, biggest)
    with pytest.raises(ValueError, match=f"payload of {P.MAX_PAYLOAD + 1} bytes exceeds "
                                         f"{P.MAX_PAYLOAD}"):
        P.encode_frame(P.CMD_LOAD_INPUT, 0, bytes(P.MAX_PAYLOAD + 1))
    too_long = P.HEADER_BYTES + P.MAX_PAYLOAD + 1 + P.CRC_BYTES
    with pytest.raises(P.FrameError, match=f"frame of {too_long} bytes is too long"):
        P.decode_frame(_raw_frame(bytes([P.VERSION, 2, 0]) + bytes(P.MAX_PAYLOAD + 1)))
    assert P.decode_frame(_raw_frame(bytes([P.VERSION, 5, 9]))) == P.Frame(5, 9, b"")
    assert P.encode_frame(5, 9) == _raw_frame(bytes([P.VERSION, 5, 9])) + b"\x00"
    # two header bytes + CRC (6 bytes) is too short even with a matching CRC
    with pytest.raises(P.FrameError, match="frame of 6 bytes is too short"):
        P.decode_frame(_raw_frame(bytes([P.VERSION, 5])))
    with pytest.raises(P.FrameError, match="protocol version 2, expected 1"):
        P.decode_frame(_raw_frame(bytes([2, 5, 9])))
    with pytest.raises(P.FrameError, match="^CRC mismatch$"):
        P.decode_frame(P.cobs_encode(bytes([1, 5, 9, 0, 0, 0, 0])))


def test_cobs_errors_name_the_defect() -> None:
    with pytest.raises(P.FrameError, match="^zero byte inside a COBS frame$"):
        P.cobs_decode(b"\x02\x01\x00\x01")
    with pytest.raises(P.FrameError, match="^truncated COBS block$"):
        P.cobs_decode(b"\x05\x01\x02")
    with pytest.raises(P.FrameError, match="truncated COBS block"):
        P.cobs_decode(b"\x03\x01\x00")
