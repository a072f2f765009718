"""The host side of the edgeq wire protocol.

A frame is ``COBS(raw) + b"\\x00"`` with ``raw = version | code | seq | payload | crc32_le``; the
CRC-32 is zlib's. Decoding is strict: anything that is not valid COBS, has a wrong CRC, version
or length raises ``FrameError`` — the session never acts on a corrupt frame.

The numbers (version, sizes, command and error codes) are defined once, in the firmware's
``firmware/include/eq_proto.h``, and read from it here, so the two sides cannot drift.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

_FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
PROTO_HEADER = _FIRMWARE / "include" / "eq_proto.h"
HAL_HEADER = _FIRMWARE / "include" / "eq_hal.h"  # counter kinds in HELLO
RUNTIME_HEADER = _FIRMWARE / "runtime" / "include" / "edgeq_rt.h"  # dtypes in HELLO


def header_constants(path: Path = PROTO_HEADER, prefix: str = "EQP_") -> dict[str, int]:
    """``prefix*`` names -> values from a header's integer ``#define``s and enumerators."""
    text = re.sub(r"/\*.*?\*/", " ", path.read_text(), flags=re.S)
    found: dict[str, int] = {}
    for name, value in re.findall(rf"#define\s+({prefix}\w+)\s+\(?(0x[0-9A-Fa-f]+|\d+)u?\)?\s*$",
                                  text, flags=re.M):
        found.setdefault(name, int(value, 0))  # the first (default) value of an #ifndef
    for name, value in re.findall(rf"\b({prefix}\w+)\s*=\s*(0x[0-9A-Fa-f]+|\d+)\s*[,}}]",
                                  text):
        found[name] = int(value, 0)
    return found


_C = header_constants()
VERSION = _C["EQP_VERSION"]
MAX_PAYLOAD = _C["EQP_MAX_PAYLOAD"]  # the largest any firmware uses; HELLO says what it takes
HEADER_BYTES = _C["EQP_HEADER_BYTES"]
CRC_BYTES = _C["EQP_CRC_BYTES"]

CMD_HELLO = _C["EQP_CMD_HELLO"]
CMD_LOAD_INPUT = _C["EQP_CMD_LOAD_INPUT"]
CMD_INVOKE = _C["EQP_CMD_INVOKE"]
CMD_READ_OUTPUT = _C["EQP_CMD_READ_OUTPUT"]
CMD_READ_TIMING = _C["EQP_CMD_READ_TIMING"]
CMD_LAYER_INFO = _C["EQP_CMD_LAYER_INFO"]
ERROR = _C["EQP_ERROR"]
REPLY = _C["EQP_REPLY"]

E_CRC = _C["EQP_E_CRC"]
E_VERSION = _C["EQP_E_VERSION"]
E_OVERSIZE = _C["EQP_E_OVERSIZE"]
E_FRAMING = _C["EQP_E_FRAMING"]
E_UNKNOWN_CMD = _C["EQP_E_UNKNOWN_CMD"]
E_ARG = _C["EQP_E_ARG"]
E_INVOKE = _C["EQP_E_INVOKE"]
E_SHORT = _C["EQP_E_SHORT"]

ERROR_NAMES = {
    E_CRC: "bad CRC",
    E_VERSION: "unsupported protocol version",
    E_OVERSIZE: "frame too long",
    E_FRAMING: "bad framing",
    E_UNKNOWN_CMD: "unknown command",
    E_ARG: "bad argument",
    E_INVOKE: "invoke failed",
    E_SHORT: "frame too short",
}

_HAL = header_constants(HAL_HEADER, "EQ_COUNTER_")
COUNTER_KINDS = {_HAL["EQ_COUNTER_INSTRUCTIONS"]: "instructions", _HAL["EQ_COUNTER_CYCLES"]: "cycles"}
# eq_dtype enumerators EQ_INT8 ... -> "int8" ...
DTYPES = {v: k.removeprefix("EQ_").lower()
          for k, v in header_constants(RUNTIME_HEADER, "EQ_").items()
          if k in ("EQ_INT8", "EQ_INT16", "EQ_FLOAT32", "EQ_INT32", "EQ_UINT8")}


class FrameError(ValueError):
    """A received frame is corrupt or malformed (never acted upon)."""


def cobs_encode(data: bytes) -> bytes:
    """COBS, block by block (bytes.split and slices, not a Python loop per byte: a 4 KB
    frame is encoded in microseconds, which matters at the top of a real UART's line rate)."""
    out = bytearray()
    for seg in bytes(data).split(b"\x00"):
        view = memoryview(seg)
        while len(view) >= 254:  # a full block: code 0xFF, no zero implied after it
            out.append(0xFF)
            out += view[:254]
            view = view[254:]
        out.append(len(view) + 1)
        out += view
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        i += 1
        if code == 0:
            raise FrameError("zero byte inside a COBS frame")
        block = data[i:i + code - 1]
        if len(block) != code - 1 or 0 in block:
            raise FrameError("truncated COBS block")
        out += block
        i += code - 1
        if code != 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def encode_frame(code: int, seq: int, payload: bytes = b"", *, version: int = VERSION) -> bytes:
    """Wire bytes of one frame, with the trailing delimiter."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    raw = bytes([version, code, seq & 0xFF]) + payload
    raw += struct.pack("<I", zlib.crc32(raw))
    return cobs_encode(raw) + b"\x00"


@dataclass(frozen=True)
class Frame:
    code: int
    seq: int
    payload: bytes


def decode_frame(encoded: bytes) -> Frame:
    """Parse one frame (without the delimiter); raise FrameError on any defect."""
    raw = cobs_decode(encoded)
    if len(raw) < HEADER_BYTES + CRC_BYTES:
        raise FrameError(f"frame of {len(raw)} bytes is too short")
    if len(raw) > HEADER_BYTES + MAX_PAYLOAD + CRC_BYTES:
        raise FrameError(f"frame of {len(raw)} bytes is too long")
    body, crc = raw[:-CRC_BYTES], struct.unpack("<I", raw[-CRC_BYTES:])[0]
    if zlib.crc32(body) != crc:
        raise FrameError("CRC mismatch")
    if body[0] != VERSION:
        raise FrameError(f"protocol version {body[0]}, expected {VERSION}")
    return Frame(code=body[1], seq=body[2], payload=bytes(body[HEADER_BYTES:]))


@dataclass(frozen=True)
class IoInfo:
    dtype: str
    shape: tuple[int, ...]
    bytes: int
    scale: float
    zero_point: int


@dataclass(frozen=True)
class DeviceInfo:
    """What the firmware reports in the handshake."""

    protocol_version: int
    firmware_version: str
    counter: str  # "instructions" | "cycles"
    clock_hz: int
    arena_bytes: int
    num_layers: int
    profile_layers: bool
    max_payload: int
    max_runs: int
    staging_bytes: int
    model_hash: str
    model_name: str
    board: str
    inputs: tuple[IoInfo, ...]
    outputs: tuple[IoInfo, ...]


def parse_hello(p: bytes) -> DeviceInfo:
    try:
        (proto, major, minor, counter, clock, arena, layers, profile, n_in, n_out, max_payload,
         max_runs, staging) = struct.unpack_from("<BBBBIIHBBBHHI", p, 0)
        model_hash = p[25:41].rstrip(b"\x00").decode("ascii")
        k = 41
        names = []
        for _ in range(2):
            n = p[k]
            names.append(p[k + 1:k + 1 + n].decode("utf-8", "replace"))
            k += 1 + n
        ios = []
        for _ in range(n_in + n_out):
            dtype, rank = p[k], p[k + 1]
            dims = struct.unpack_from(f"<{rank}i", p, k + 2)
            nbytes, scale, zp = struct.unpack_from("<Ifi", p, k + 2 + 4 * rank)
            ios.append(IoInfo(DTYPES.get(dtype, f"dtype{dtype}"), tuple(dims), nbytes, scale, zp))
            k += 2 + 4 * rank + 12
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise FrameError(f"malformed handshake reply ({exc})") from None
    return DeviceInfo(
        protocol_version=proto, firmware_version=f"{major}.{minor}",
        counter=COUNTER_KINDS.get(counter, f"counter{counter}"), clock_hz=clock,
        arena_bytes=arena, num_layers=layers, profile_layers=bool(profile),
        max_payload=max_payload, max_runs=max_runs, staging_bytes=staging,
        model_hash=model_hash, model_name=names[0], board=names[1],
        inputs=tuple(ios[:n_in]), outputs=tuple(ios[n_in:]),
    )
