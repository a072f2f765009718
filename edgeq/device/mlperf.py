"""Host client for the MLPerf Tiny / EEMBC test-harness protocol (``firmware/app/eq_mlperf.c``).

The text protocol the MLPerf Tiny runner speaks to a device under test: a command is text ended
by ``%``; the device answers with ``\\r\\n``-terminated lines and closes every answer with
``m-ready``. Errors are ``e-[...]`` lines. Input bytes travel as hex in ``db`` commands.
edgeq drives its ``--protocol mlperf`` firmware with this client (``edgeq bench --protocol
mlperf``); the official runner drives the same firmware unmodified (docs/mlperf.md).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from edgeq.errors import DeviceError

log = logging.getLogger(__name__)

READY = "m-ready"
# The runner sends 31 bytes per db command (its 80-character command buffer); the edgeq
# firmware takes up to 1024 characters, so its own client sends 500 bytes at a time.
RUNNER_DB_BYTES = 31
EDGEQ_DB_BYTES = 500


@dataclass(frozen=True)
class InferResult:
    laps_us: tuple[int, ...]  # the two m-lap-us timestamps around the timed inferences
    results: tuple[float, ...]
    inferences: int

    @property
    def us_per_inference(self) -> float | None:
        if len(self.laps_us) < 2:
            return None
        return (self.laps_us[-1] - self.laps_us[0]) / self.inferences


class MlperfClient:
    """One conversation with a device running the MLPerf Tiny harness over a serial port."""

    def __init__(self, port: Any, *, timeout: float = 10.0, name: str = "device",
                 db_bytes: int = EDGEQ_DB_BYTES) -> None:
        self.port = port
        self.timeout = timeout
        self.name = name
        self.db_bytes = db_bytes
        self._buf = bytearray()

    def sync(self) -> None:
        """Drop the boot banner or anything stale: ask ``name`` and read up to the ``m-ready``
        that follows its answer (a banner's own m-ready may come before or after a drain)."""
        reset = getattr(self.port, "reset_input_buffer", None)
        if reset is not None:
            reset()
        self._buf.clear()
        try:
            self.port.write(b"%name%")  # the first '%' ends a partial command the device holds
        except Exception as exc:  # noqa: BLE001 - pyserial/socket errors vary by transport
            raise DeviceError(f"{self.name}: write failed ({exc}); check the port") from None
        deadline = time.monotonic() + self.timeout
        named = False
        while True:
            line = self._line(deadline)
            if line is None:
                raise DeviceError(f"{self.name}: no answer to 'name' within {self.timeout:g} s; "
                                  "check the firmware was built with --protocol mlperf and the "
                                  "port/baud")
            named = named or line.startswith("m-name-dut-[")
            if named and line == READY:
                return

    def _line(self, deadline: float) -> str | None:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.port.timeout = min(left, 0.5)
            chunk = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
            self._buf += chunk
        i = self._buf.index(b"\n")
        raw = bytes(self._buf[:i])
        del self._buf[:i + 1]
        return raw.decode("ascii", "replace").strip()

    def command(self, text: str, *, timeout: float | None = None) -> list[str]:
        """Send ``text%`` and return the answer's lines up to (without) ``m-ready``."""
        try:
            self.port.write(text.encode("ascii") + b"%")
        except Exception as exc:  # noqa: BLE001 - pyserial/socket errors vary by transport
            raise DeviceError(f"{self.name}: write failed ({exc}); check the port") from None
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        lines: list[str] = []
        while True:
            line = self._line(deadline)
            if line is None:
                raise DeviceError(f"{self.name}: no m-ready after '{text}' within "
                                  f"{self.timeout:g} s; check the firmware was built with "
                                  "--protocol mlperf and the port/baud")
            if line == READY:
                break
            if line:
                lines.append(line)
        errors = [ln for ln in lines if ln.startswith("e-[")]
        if errors:
            raise DeviceError(f"{self.name} rejected '{text[:40]}': {errors[0]}")
        return lines

    def name_(self) -> str:
        for line in self.command("name"):
            m = re.fullmatch(r"m-name-dut-\[([^\]]+)\]", line)
            if m:
                return m.group(1)
        raise DeviceError(f"{self.name}: no m-name-dut-[...] line in the answer to 'name'")

    def profile(self) -> dict[str, str]:
        out = {}
        for line in self.command("profile"):
            m = re.fullmatch(r"m-(profile|model)-\[([^\]]+)\]", line)
            if m:
                out[m.group(1)] = m.group(2)
        return out

    def timestamp(self) -> int | None:
        """Microseconds since boot (performance mode); None in energy mode (a GPIO pulse)."""
        for line in self.command("timestamp"):
            m = re.fullmatch(r"m-lap-us-(\d+)", line)
            if m:
                return int(m.group(1))
        return None

    def load(self, data: bytes) -> None:
        lines = self.command(f"db load {len(data)}")
        if f"m-[Expecting {len(data)} bytes]" not in lines:
            raise DeviceError(f"{self.name}: unexpected answer to db load: {lines}")
        done = False
        for i in range(0, len(data), self.db_bytes):
            done = "m-load-done" in self.command(f"db {data[i:i + self.db_bytes].hex()}")
        if not done:
            raise DeviceError(f"{self.name} did not confirm the input (no m-load-done)")

    def buffer(self) -> bytes:
        """The device's db buffer, read back with ``db print``."""
        out = bytearray()
        for line in self.command("db print"):
            if line.startswith("m-buffer-"):
                out += bytes.fromhex(line[len("m-buffer-"):].replace("-", ""))
        return bytes(out)

    def infer(self, n: int = 1, warmup: int = 0, *, timeout: float = 300.0) -> InferResult:
        lines = self.command(f"infer {n} {warmup}", timeout=timeout)
        expect = [f"m-warmup-start-{warmup}", "m-warmup-done", f"m-infer-start-{n}",
                  "m-infer-done"]
        missing = [e for e in expect if e not in lines]
        if missing:
            raise DeviceError(f"{self.name}: answer to infer lacks {missing[0]}")
        laps = tuple(int(m.group(1)) for ln in lines
                     if (m := re.fullmatch(r"m-lap-us-(\d+)", ln)))
        return InferResult(laps_us=laps, results=self._results(lines), inferences=n)

    def results(self) -> tuple[float, ...]:
        return self._results(self.command("results"))

    def _results(self, lines: list[str]) -> tuple[float, ...]:
        for line in lines:
            m = re.fullmatch(r"m-results-\[([^\]]*)\]", line)
            if m:
                try:
                    return tuple(float(v) for v in m.group(1).split(",") if v)
                except ValueError:
                    break
        raise DeviceError(f"{self.name}: no well-formed m-results-[...] line")

    def help(self) -> list[str]:
        return self.command("help")
