"""Host protocol codec: COBS framing, CRC, strict decoding (no corrupt frame is ever accepted)."""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from edgeq.device import protocol as P


@pytest.mark.parametrize("n", [0, 1, 2, 253, 254, 255, 256, 508, 509, 600])
def test_cobs_roundtrip_edge_lengths(n):
    rng = random.Random(n)
    for data in (bytes(n), bytes([0xAB]) * n, bytes(rng.randrange(256) for _ in range(n))):
        enc = P.cobs_encode(data)
        assert 0 not in enc
        assert len(enc) <= n + n // 254 + 1
        assert P.cobs_decode(enc) == data


def test_cobs_known_vectors():
    assert P.cobs_encode(b"") == b"\x01"
    assert P.cobs_encode(b"\x00") == b"\x01\x01"
    assert P.cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert P.cobs_encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255)) + b"\x01"


def test_frame_layout_and_crc():
    wire = P.encode_frame(P.CMD_INVOKE, 9, struct.pack("<HH", 1, 5))
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    raw = P.cobs_decode(wire[:-1])
    assert raw[:3] == bytes([P.VERSION, P.CMD_INVOKE, 9])
    assert struct.unpack("<I", raw[-4:])[0] == zlib.crc32(raw[:-4])
    f = P.decode_frame(wire[:-1])
    assert (f.code, f.seq, f.payload) == (P.CMD_INVOKE, 9, b"\x01\x00\x05\x00")


def test_every_single_bit_flip_is_rejected():
    wire = P.encode_frame(P.CMD_LOAD_INPUT | P.REPLY, 200, bytes(range(40)))[:-1]
    rejected = 0
    for i in range(len(wire)):
        for bit in range(8):
            bad = bytearray(wire)
            bad[i] ^= 1 << bit
            if 0 in bad:
                rejected += 1  # would split the frame on the wire: never one valid frame
                continue
            with pytest.raises(P.FrameError):
                P.decode_frame(bytes(bad))
            rejected += 1
    assert rejected == 8 * len(wire)


def test_truncated_oversized_and_wrong_version_frames_are_rejected():
    wire = P.encode_frame(P.CMD_HELLO, 1)[:-1]
    for cut in range(1, len(wire)):
        with pytest.raises(P.FrameError):
            P.decode_frame(wire[:cut])
    raw = bytes([P.VERSION, 1, 1]) + bytes(P.MAX_PAYLOAD + 1)
    with pytest.raises(P.FrameError, match="too long"):
        P.decode_frame(P.cobs_encode(raw + struct.pack("<I", zlib.crc32(raw))))
    with pytest.raises(P.FrameError, match="version 2"):
        P.decode_frame(P.encode_frame(P.CMD_HELLO, 1, version=2)[:-1])
    with pytest.raises(ValueError):
        P.encode_frame(P.CMD_HELLO, 1, bytes(P.MAX_PAYLOAD + 1))


def test_parse_hello_rejects_truncated_payload():
    with pytest.raises(P.FrameError, match="malformed handshake"):
        P.parse_hello(b"\x01\x01\x00")
