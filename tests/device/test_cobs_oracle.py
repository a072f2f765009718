"""The firmware's COBS and frame codec (C, compiled for the host) against an independent COBS
implementation (the ``cobs`` package) and against the host's Python codec, both directions.

Runs of 253/254/255/508 non-zero bytes sit on the boundaries of COBS's 254-byte blocks (code
0xFF, a block with no implied zero after it): the cases a decoder gets wrong first. Frames are
1..4,200 bytes, past the largest frame the protocol sends (4,103 raw bytes).
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
import zlib

import pytest
from cobs import cobs
from helpers_device import DATA

from edgeq.device import protocol as P
from edgeq.toolchain.compiler import FIRMWARE_DIR

RUNS = (253, 254, 255, 508)


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
    gcc = shutil.which("gcc")
    assert gcc is not None, "host gcc is needed (make setup installs it)"
    exe = tmp_path_factory.mktemp("cobs") / "cobs_cli"
    proc = subprocess.run([gcc, "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror",
                           "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                           f"-I{FIRMWARE_DIR / 'include'}", str(DATA / "fw_cobs" / "cobs_cli.c"),
                           str(FIRMWARE_DIR / "proto" / "eq_proto.c"), "-o", str(exe)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

    def run(op: str, items: list[bytes]) -> list[str]:
        text = "".join(f"{op} {x.hex() or '-'}\n" for x in items)
        out = subprocess.run([str(exe)], input=text, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert len(lines) == len(items)
        return lines

    return run


def _bytes(line: str) -> bytes:
    assert not line.startswith("ERR"), line
    return b"" if line == "-" else bytes.fromhex(line)


def _nonzero(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(1, 256) for _ in range(n))


def samples() -> list[bytes]:
    """1..4,096-byte inputs: every length to 300, a spread beyond, and non-zero runs of the
    block-boundary lengths at the start, middle and end, alone and between zeros."""
    rng = random.Random(17)
    out = []
    lengths = list(range(1, 301)) + [509, 510, 762, 1016, 1017, 2047, 2048, 2049, 2055, 4095, 4096]
    lengths += [4103, 4200]  # the largest raw frame (4,096 + 7) and past it
    lengths += [rng.randrange(301, 4097) for _ in range(40)]
    for n in lengths:
        out.append(bytes(rng.randrange(256) for _ in range(n)))  # ~1 zero in 256
        out.append(_nonzero(rng, n))
    for run in RUNS:
        body = _nonzero(rng, run)
        out += [body, b"\x00" + body, body + b"\x00", b"\x00" + body + b"\x00",
                bytes(rng.randrange(256) for _ in range(100)) + b"\x00" + body + b"\x00" * 3,
                body + b"\x00" + _nonzero(rng, run), body + _nonzero(rng, 1)]
        for pos in (0, 1000, 4096 - run):
            x = bytearray(rng.randrange(256) for _ in range(4096))
            x[pos:pos + run] = body
            if pos > 0:
                x[pos - 1] = 0
            if pos + run < 4096:
                x[pos + run] = 0
            out.append(bytes(x))
    out.append(bytes(4096))
    return out


def test_sample_set_covers_the_block_boundaries():
    """The inputs really contain maximal non-zero runs of each boundary length."""
    def runs(x: bytes) -> set[int]:
        return {len(r) for r in x.split(b"\x00") if r}
    found = set().union(*(runs(x) for x in samples()))
    assert set(RUNS) <= found
    assert max(len(x) for x in samples()) >= 4096 and min(len(x) for x in samples()) == 1


def test_c_encoder_against_the_cobs_package_and_python(codec):
    data = samples()
    for x, line in zip(data, codec("E", data), strict=True):
        enc = _bytes(line)
        assert 0 not in enc
        assert cobs.decode(enc) == x  # the independent decoder reads what the firmware sends
        assert P.cobs_decode(enc) == x  # and so does the host
        assert enc == P.cobs_encode(x)
        ref = cobs.encode(x)
        # the firmware may close a final 254-byte block with an empty one (one byte longer)
        assert enc == ref or (enc[:-1] == ref and enc[-1] == 1 and ref[0] != 0), len(x)


# into a fresh buffer, in place, and byte by byte through the firmware's streaming receiver
@pytest.mark.parametrize("op", ["D", "I", "R"])
def test_c_decoder_reads_the_cobs_package_and_python(codec, op):
    data = samples()
    max_raw = P.HEADER_BYTES + P.MAX_PAYLOAD + P.CRC_BYTES  # the receiver's buffer
    for source in (cobs.encode, P.cobs_encode):
        for x, line in zip(data, codec(op, [source(x) for x in data]), strict=True):
            if op == "R" and len(x) > max_raw:
                assert line == "ERR 2", len(x)  # EQP_RX_OVERSIZE, dropped whole
            else:
                assert _bytes(line) == x, (source.__module__, len(x))


def test_c_decoder_rejects_what_the_cobs_package_rejects(codec):
    rng = random.Random(3)
    bad = [b"\x00", b"\x05\x01\x02", b"\xff" + bytes(range(1, 200)), b"\x03\x01\x00\x01"]
    bad += [cobs.encode(_nonzero(rng, 300))[:-k] for k in (1, 2, 50)]
    for x in bad:
        with pytest.raises(cobs.DecodeError):
            cobs.decode(x)
    assert all(line == "ERR" for line in codec("D", bad))
    # the streaming receiver: a block cut short by the delimiter is EQP_RX_BAD (4); a leading
    # zero is an empty frame (3), after which the rest is a frame of its own
    stream = codec("R", bad)
    assert stream[0] == "ERR 3" and all(line == "ERR 4" for line in stream[1:3] + stream[4:])


def test_frames_python_to_c_and_c_to_python(codec):
    rng = random.Random(5)
    payloads = [b"", b"\x00", bytes(P.MAX_PAYLOAD)] + [
        bytes(rng.randrange(256) for _ in range(n)) for n in (1, 250, 251, 252, 1000, 2048)]
    payloads += [_nonzero(rng, run) for run in RUNS]
    payloads += [bytes([0xAA]) * P.MAX_PAYLOAD]
    # C -> Python: eqp_build's wire bytes decode on the host to the same frame
    for p, line in zip(payloads, codec("B", payloads), strict=True):
        wire = _bytes(line)
        assert wire.endswith(b"\x00") and 0 not in wire[:-1]
        f = P.decode_frame(wire[:-1])
        assert (f.code, f.seq, f.payload) == (0x82, 0x5A, p)
        raw = cobs.decode(wire[:-1])
        assert struct.unpack("<I", raw[-4:])[0] == zlib.crc32(raw[:-4])  # zlib, not our CRC
    # Python -> C: the host's frames parse in the firmware to the same fields, decoded after
    # the frame (P) and while it arrives (Q, as the firmware receives)
    wires = [P.encode_frame(P.CMD_LOAD_INPUT, 200, p)[:-1] for p in payloads]
    for op in ("P", "Q"):
        for p, line in zip(payloads, codec(op, wires), strict=True):
            code, seq, hexp = line.split(" ")
            assert (int(code), int(seq), _bytes(hexp)) == (P.CMD_LOAD_INPUT, 200, p), op
    # one flipped bit anywhere is a CRC (or framing) error for the streaming receiver too
    rng2 = random.Random(11)
    flipped = []
    for w in wires[:6]:
        b = bytearray(w)
        b[rng2.randrange(1, len(b))] ^= 1 << rng2.randrange(8)
        flipped.append(bytes(b))
    for line in codec("Q", flipped):
        assert line.startswith("ERR "), line


def test_c_parser_refuses_a_payload_past_the_limit(codec):
    raw = bytes([P.VERSION, 1, 1]) + bytes(P.MAX_PAYLOAD + 1)
    wire = cobs.encode(raw + struct.pack("<I", zlib.crc32(raw)))
    assert codec("P", [wire]) == [f"ERR {P.E_OVERSIZE}"]
    assert codec("Q", [wire]) == ["ERR 2"]  # EQP_RX_OVERSIZE: dropped while receiving
    assert codec("B", [bytes(P.MAX_PAYLOAD + 1)]) == ["ERR"]
