"""Shared helpers for the firmware/QEMU/protocol tests (the echo fixture and raw frame I/O)."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.device import protocol as P
from edgeq.toolchain.boards import resolve_target
from edgeq.toolchain.compiler import FirmwareBuild, build_firmware

DATA = Path(__file__).resolve().parent / "fixtures"
ECHO_MODEL = DATA / "fw_echo_model"
ECHO_RUNTIME = ECHO_MODEL / "runtime"
FUZZ_DIR = DATA / "fw_fuzz"
BULK_MODEL = DATA / "fw_bulk_model"


def build_echo(board: str, out: Path, **kw: Any) -> FirmwareBuild:
    """Firmware around the hand-written echo model (transport/protocol fixture)."""
    return build_firmware(resolve_target(board=board), ECHO_MODEL, out,
                          runtime_dir=ECHO_RUNTIME, **kw)


def build_bulk(board: str, out: Path, **kw: Any) -> FirmwareBuild:
    """Firmware around the bulk-transfer fixture (a 96x96x3 input, its CRC-32 as output)."""
    return build_firmware(resolve_target(board=board), BULK_MODEL, out, runtime_dir=ECHO_RUNTIME,
                          input_bytes=96 * 96 * 3, **kw)


def bulk_reference(x: np.ndarray) -> np.ndarray:
    """Python twin of tests/fixtures/fw_bulk_model/model.c: {zlib CRC-32, int8 sum}."""
    raw = np.ascontiguousarray(x, dtype=np.int8).tobytes()
    crc = np.array(zlib.crc32(raw), dtype=np.uint32).view(np.int32)
    return np.array([[crc, int(np.frombuffer(raw, np.int8).astype(np.int64).sum())]],
                    dtype=np.int32)


def echo_reference(x: np.ndarray) -> np.ndarray:
    """Python twin of tests/fixtures/fw_echo_model/model.c."""
    flat = x.astype(np.int64).reshape(-1)
    i = np.arange(64)
    w = (i[None, :] % 7) - 3 + np.arange(10)[:, None]
    acc = w @ flat
    return np.clip(acc >> 4, -128, 127).astype(np.int8).reshape(1, 10)


def read_frames(port: Any, timeout: float, want: int = 1) -> list[P.Frame]:
    """Read raw frames from a port until ``want`` arrived or the timeout passed."""
    buf = bytearray()
    frames: list[P.Frame] = []
    deadline = time.monotonic() + timeout
    while len(frames) < want and time.monotonic() < deadline:
        port.timeout = max(0.01, min(0.2, deadline - time.monotonic()))
        buf += port.read(1)
        while 0 in buf:
            idx = buf.index(0)
            chunk, buf = bytes(buf[:idx]), buf[idx + 1:]
            if chunk:
                frames.append(P.decode_frame(chunk))
    return frames


class FaultyLink:
    """Wraps a real port and damages what the host reads: drops or corrupts the first ``n``
    reply frames, or everything (``drop_all``). Writes pass through untouched."""

    def __init__(self, port: Any, *, drop: int = 0, corrupt: int = 0, drop_all: bool = False):
        self.port, self.drop, self.corrupt, self.drop_all = port, drop, corrupt, drop_all
        self.writes = 0
        self._pending = bytearray()

    @property
    def timeout(self) -> float:
        return self.port.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self.port.timeout = value

    @property
    def in_waiting(self) -> int:
        return len(self._pending)

    def write(self, data: bytes) -> int:
        self.writes += 1
        return self.port.write(data)

    def read(self, n: int = 1) -> bytes:
        if not self._pending:
            chunk = self.port.read(1)
            if not chunk:
                return b""
            self._pending += chunk
            # pull the rest of the frame so whole frames can be dropped or damaged
            while not self._pending.endswith(b"\x00"):
                more = self.port.read(1)
                if not more:
                    break
                self._pending += more
            if self.drop_all or (self._pending.endswith(b"\x00") and self.drop > 0):
                self.drop = max(0, self.drop - 1)
                self._pending.clear()
                return b""
            if self.corrupt > 0 and len(self._pending) > 3:
                self.corrupt -= 1
                self._pending[2] ^= 0x10 if self._pending[2] != 0x10 else 0x20
        out = bytes(self._pending[:n])
        del self._pending[:n]
        return out


def quantized_digits(out_dir: Path) -> Path:
    """digits_cnn quantized to int8 (PTQ, per-channel) into ``out_dir``; returns the .tflite."""
    from edgeq.quantize.ptq import quantize_model

    repo = Path(__file__).resolve().parents[1]
    tflite = out_dir / "digits_cnn_int8.tflite"
    quantize_model(repo / "models" / "digits_cnn" / "digits_cnn.h5", tflite, data="digits")
    return tflite
