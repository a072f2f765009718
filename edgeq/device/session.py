"""A protocol session with one device: requests with timeouts and retries, then the high-level
operations (handshake, load input, invoke, read output/timing) built on them.

Works over anything pyserial-like (``read``, ``write``, ``timeout``, ``in_waiting``): a real
serial port, QEMU's UART on ``socket://`` and QEMU's semihosting pipes take the same path.

Replies are matched to requests strictly: only a frame carrying the request's sequence number
answers it. The session starts by flushing whatever an earlier user left on the line (stale
replies, error frames the device sent about noise), so it never mistakes them for answers.
"""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeq.device import protocol as P
from edgeq.errors import DeviceError

log = logging.getLogger(__name__)

# Device errors that mean "your request arrived damaged": resend it.
_TRANSMISSION_ERRORS = {P.E_CRC, P.E_OVERSIZE, P.E_FRAMING, P.E_SHORT}
# After an unattributable (sequence 0) damage report, wait this long for the real answer
# before resending: the report may be about old noise, and our request may still be answered.
_GRACE_S = 0.25
# At session start, the line counts as flushed once it stayed quiet this long.
_QUIET_S = 0.05
_COMMAND_NAMES = {P.CMD_HELLO: "HELLO", P.CMD_LOAD_INPUT: "LOAD_INPUT", P.CMD_INVOKE: "INVOKE",
                  P.CMD_READ_OUTPUT: "READ_OUTPUT", P.CMD_READ_TIMING: "READ_TIMING",
                  P.CMD_LAYER_INFO: "LAYER_INFO"}
_NP_DTYPES = {"int8": np.int8, "int16": np.int16, "float32": np.float32, "int32": np.int32,
              "uint8": np.uint8}


@dataclass(frozen=True)
class InvokeResult:
    counts: list[int]  # per timed run, in the device's unit (instructions or cycles)
    unit: str


@dataclass
class TransferStats:
    """Input bytes moved to the device and the wall time it took (acknowledged chunks)."""

    bytes: int = 0
    seconds: float = 0.0

    @property
    def bytes_per_s(self) -> float | None:
        return self.bytes / self.seconds if self.seconds > 0 else None

    def to_dict(self) -> dict[str, float | int | None]:
        return {"bytes": self.bytes, "seconds": self.seconds, "bytes_per_s": self.bytes_per_s}


class DeviceSession:
    """One request/reply conversation; sequence numbers discard stale or duplicate replies."""

    def __init__(self, port: Any, *, timeout: float = 2.0, retries: int = 3,
                 name: str = "device", alive: Callable[[], None] | None = None) -> None:
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.name = name
        self._alive = alive
        self._seq = random.randrange(255)  # another session's late replies rarely match
        self._buf = bytearray()
        self._info: P.DeviceInfo | None = None
        self._synced = False
        self.transfer = TransferStats()

    # --- transport level ---------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 is what the device uses when it cannot tell
        return self._seq

    def _read_frame(self, deadline: float) -> bytes | None:
        """Next non-empty encoded frame (without delimiter), or None at the deadline."""
        while True:
            if 0 in self._buf:
                idx = self._buf.index(0)
                frame = bytes(self._buf[:idx])
                del self._buf[:idx + 1]
                if frame:
                    return frame
                continue
            if len(self._buf) > 4 * P.MAX_PAYLOAD:
                self._buf.clear()  # no delimiter in far too many bytes: line noise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                self.port.timeout = min(remaining, 0.5)
                chunk = self.port.read(1)
                if chunk:
                    waiting = self.port.in_waiting
                    if waiting:
                        chunk += self.port.read(waiting)
            except Exception as exc:  # noqa: BLE001 - pyserial raises SerialException (an OSError)
                raise self._connection_lost(exc) from None
            if not chunk and self._alive is not None:
                self._alive()
            self._buf += chunk

    def _connection_lost(self, exc: Exception) -> Exception:
        """The error to raise for a failed port read/write: the DeviceError itself, "emulator
        exited" when that is the cause (``alive`` raises it), else "connection lost"."""
        if isinstance(exc, DeviceError):
            return exc
        if self._alive is not None:
            time.sleep(0.3)
            try:
                self._alive()
            except DeviceError as dead:
                return dead
        return DeviceError(f"{self.name}: connection lost ({exc}); check the port or emulator")

    def resync(self) -> None:
        """Drop whatever is on the line: bytes already received, a partial frame in the device's
        receiver (closed by delimiters), and the device's error replies about it."""
        reset = getattr(self.port, "reset_input_buffer", None)
        try:
            if reset is not None:
                reset()
            self.port.write(b"\x00\x00")
            deadline = time.monotonic() + 10 * _QUIET_S
            self.port.timeout = _QUIET_S
            while time.monotonic() < deadline:
                if not self.port.read(max(1, self.port.in_waiting)):
                    break
        except Exception as exc:  # noqa: BLE001 - pyserial/socket errors vary by transport
            raise self._connection_lost(exc) from None
        self._buf.clear()
        self._synced = True

    def request(self, code: int, payload: bytes = b"", *, timeout: float | None = None) -> bytes:
        """Send one command and return the payload of its valid reply (retrying as needed)."""
        if not self._synced:
            self.resync()
        seq = self._next_seq()
        wire = b"\x00" + P.encode_frame(code, seq, payload)
        name = _COMMAND_NAMES.get(code, f"command {code:#x}")
        wait = self.timeout if timeout is None else timeout
        problem = "no reply"
        for attempt in range(self.retries + 1):
            if attempt:
                log.debug("%s: retrying %s (%s)", self.name, name, problem)
            damage: str | None = None
            try:
                self.port.write(wire)
            except Exception as exc:  # noqa: BLE001 - pyserial/socket errors vary by transport
                raise DeviceError(f"{self.name}: write failed ({exc}); check the port or "
                                  "emulator") from None
            deadline = time.monotonic() + wait
            while True:
                enc = self._read_frame(deadline)
                if enc is None:
                    problem = damage or f"no reply within {wait:g} s"
                    break
                try:
                    frame = P.decode_frame(enc)
                except P.FrameError as exc:
                    problem = f"corrupt reply ({exc})"
                    break
                if frame.seq != seq:
                    if frame.code == P.ERROR and frame.seq == 0 and frame.payload[:1] and \
                            frame.payload[0] in _TRANSMISSION_ERRORS:
                        # damage the device cannot attribute: maybe ours, maybe old noise
                        damage = ("device saw a damaged frame "
                                  f"({P.ERROR_NAMES[frame.payload[0]]})")
                        deadline = min(deadline, time.monotonic() + _GRACE_S)
                    continue  # stale reply to an earlier request or attempt
                if frame.code == P.ERROR and len(frame.payload) >= 2:
                    err = frame.payload[0]
                    if err in _TRANSMISSION_ERRORS:
                        problem = f"device saw a damaged request ({P.ERROR_NAMES[err]})"
                        break
                    raise DeviceError(f"{self.name} rejected {name}: "
                                      f"{P.ERROR_NAMES.get(err, f'error {err}')}")
                if frame.code != (code | P.REPLY):
                    problem = f"unexpected reply code {frame.code:#x}"
                    continue
                return frame.payload
            self._buf.clear()
        raise DeviceError(f"{self.name}: no valid reply to {name} after {self.retries + 1} "
                          f"attempts ({problem}); check that the firmware runs and the port/baud")

    # --- operations -------------------------------------------------------------------------
    def hello(self) -> P.DeviceInfo:
        try:
            self._info = P.parse_hello(self.request(P.CMD_HELLO))
        except P.FrameError as exc:
            raise DeviceError(f"{self.name}: {exc}; rebuild the firmware with this edgeq") from None
        if self._info.protocol_version != P.VERSION:
            raise DeviceError(f"{self.name} speaks protocol {self._info.protocol_version}, edgeq "
                              f"speaks {P.VERSION}; rebuild and flash the firmware")
        return self._info

    @property
    def info(self) -> P.DeviceInfo:
        return self._info if self._info is not None else self.hello()

    def check_model(self, model_hash: str) -> None:
        """Refuse to validate against a device that runs another model."""
        got = self.info.model_hash
        if got != model_hash[:16]:
            raise DeviceError(f"{self.name} runs model {self.info.model_name} hash {got}, "
                              f"expected {model_hash[:16]}; rebuild and flash the firmware")

    def load_input(self, index: int, data: bytes) -> None:
        info = self.info.inputs[index]
        if len(data) != info.bytes:
            raise DeviceError(f"input {index} has {len(data)} bytes, the model expects "
                              f"{info.bytes}")
        step = self.max_payload - 5
        t0 = time.perf_counter()
        for off in range(0, len(data), step):
            chunk = data[off:off + step]
            rep = self.request(P.CMD_LOAD_INPUT, struct.pack("<BI", index, off) + chunk)
            if rep != struct.pack("<IH", off, len(chunk)):
                raise DeviceError(f"{self.name} acknowledged the wrong input chunk")
        self.transfer.seconds += time.perf_counter() - t0
        self.transfer.bytes += len(data)

    @property
    def max_payload(self) -> int:
        """The largest payload both sides take (the firmware says its own in HELLO)."""
        return max(64, min(self.info.max_payload, P.MAX_PAYLOAD))

    def invoke(self, runs: int = 1, warmup: int = 0, timeout: float = 120.0) -> InvokeResult:
        max_runs = self.info.max_runs
        counts: list[int] = []
        remaining, first = runs, True
        while remaining > 0:
            n = min(remaining, max_runs)
            rep = self.request(P.CMD_INVOKE, struct.pack("<HH", warmup if first else 0, n),
                               timeout=timeout)
            status, done = struct.unpack("<BH", rep)
            if status != 0:
                raise DeviceError(f"model invoke failed on {self.name} with eq_status {status}")
            counts += self._read_timing(0, done)
            remaining -= n
            first = False
        return InvokeResult(counts=[self.to_units(c) for c in counts], unit=self.info.counter)

    def _read_timing(self, kind: int, total: int) -> list[int]:
        out: list[int] = []
        step = self.max_payload // 4
        for first in range(0, total, step):
            n = min(step, total - first)
            rep = self.request(P.CMD_READ_TIMING, struct.pack("<BHH", kind, first, n))
            out += list(struct.unpack(f"<{n}I", rep))
        return out

    def to_units(self, raw: int) -> int:
        """Counter ticks -> instructions (SysTick under icount: 1 ns/instruction) or cycles."""
        if self.info.counter == "instructions":
            return round(raw * 1_000_000_000 / self.info.clock_hz)
        return raw

    def layer_counts(self) -> list[int]:
        """Per-layer counts of the last timed run (firmware built with per-layer profiling)."""
        if not self.info.profile_layers:
            raise DeviceError(f"{self.name} firmware has no per-layer profiling; rebuild with "
                              "--per-layer")
        return [self.to_units(c) for c in self._read_timing(1, self.info.num_layers)]

    def layer_info(self, layer: int) -> tuple[str, int]:
        rep = self.request(P.CMD_LAYER_INFO, struct.pack("<H", layer))
        return rep[4:].decode("utf-8", "replace"), struct.unpack_from("<I", rep)[0]

    def read_output(self, index: int) -> bytes:
        total = self.info.outputs[index].bytes
        out = bytearray()
        step = self.max_payload
        for off in range(0, total, step):
            n = min(step, total - off)
            rep = self.request(P.CMD_READ_OUTPUT, struct.pack("<BIH", index, off, n))
            if len(rep) != n:
                raise DeviceError(f"{self.name} returned {len(rep)} output bytes, asked {n}")
            out += rep
        return bytes(out)

    def infer(self, inputs: Sequence[np.ndarray], *, runs: int = 1,
              warmup: int = 0) -> tuple[list[np.ndarray], InvokeResult]:
        """Run one sample: load every input, invoke, read every output (shaped as on device)."""
        info = self.info
        if len(inputs) != len(info.inputs):
            raise DeviceError(f"the model takes {len(info.inputs)} inputs, got {len(inputs)}")
        for i, (x, io) in enumerate(zip(inputs, info.inputs, strict=True)):
            arr = np.ascontiguousarray(np.asarray(x, dtype=_NP_DTYPES[io.dtype]))
            self.load_input(i, arr.tobytes())
        result = self.invoke(runs=runs, warmup=warmup)
        outs = []
        for i, io in enumerate(info.outputs):
            raw = self.read_output(i)
            outs.append(np.frombuffer(raw, dtype=_NP_DTYPES[io.dtype]).reshape(io.shape))
        return outs, result
