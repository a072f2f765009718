"""Power monitors (Nordic PPK2, Joulescope): thin adapters that record current around a burst of
inferences; the energy math lives in ``edgeq.bench.energy`` and is tested on recorded arrays.

The window: when the board has a timing-marker pin (board config ``[marker]``) wired to the
monitor's digital input (PPK2 D0, Joulescope IN0), the firmware drives it high for exactly each
timed inference and the recording carries that channel, so ∫V·I dt is taken over the marked
spans only. Without it the host marks the command window (monotonic clock at INVOKE sent and
reply received; the monitor's samples are stamped on the same clock), which also holds the
little UART traffic. Device paths are covered by ``hardware`` tests only.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edgeq.errors import DeviceError


@dataclass(frozen=True)
class Recording:
    """Samples on the host's time.monotonic clock; ``marker`` is the digital input the board's
    timing-marker pin drives (one bool per sample), or None when the monitor has none."""

    times_s: np.ndarray
    current_a: np.ndarray
    voltage_v: np.ndarray
    marker: np.ndarray | None = None


class PowerMonitor(Protocol):
    def start(self) -> None: ...

    def stop(self) -> Recording:
        """Everything recorded since start()."""
        ...


class Ppk2Monitor:
    """Nordic PPK2 in source-meter mode (powers the board at ``supply_mv``), 100 kS/s."""

    RATE_HZ = 100_000.0

    def __init__(self, port: str, supply_mv: int = 3300, marker_channel: int = 0) -> None:
        try:
            from ppk2_api.ppk2_api import PPK2_API
        except ImportError:
            raise DeviceError("the PPK2 needs ppk2-api: pip install ppk2-api") from None
        self.supply_v = supply_mv / 1000.0
        self.marker_channel = marker_channel
        self._ppk = PPK2_API(port, timeout=1, write_timeout=1, exclusive=True)
        self._ppk.get_modifiers()
        self._ppk.use_source_meter()
        self._ppk.set_source_voltage(supply_mv)
        self._ppk.toggle_DUT_power("ON")
        self._chunks: list[tuple[float, np.ndarray]] = []
        self._logic: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pump(self) -> None:
        while not self._stop.is_set():
            raw = self._ppk.get_data()
            now = time.monotonic()
            if raw:
                got = self._ppk.get_samples(raw)
                samples = got[0] if isinstance(got, tuple) else got
                self._chunks.append((now, np.asarray(samples, dtype=np.float64) * 1e-6))
                if isinstance(got, tuple) and len(got) > 1:  # ppk2-api >= 0.9: logic inputs
                    bits = self._ppk.digital_channels(got[1])[self.marker_channel]
                    self._logic.append(np.asarray(bits, dtype=bool))
            time.sleep(0.001)

    def start(self) -> None:
        self._ppk.start_measuring()
        self._stop.clear()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def stop(self) -> Recording:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._ppk.stop_measuring()
        logic = self._logic if len(self._logic) == len(self._chunks) else None
        return chunks_to_series(self._chunks, self.RATE_HZ, self.supply_v, logic)


class JoulescopeMonitor:
    """Joulescope JS110/JS220 through the ``joulescope`` package: one contiguous read."""

    def __init__(self, duration_s: float = 5.0) -> None:
        """Records current, voltage and IN0 (routed into the current LSB) for the marker."""
        try:
            import joulescope
        except ImportError:
            raise DeviceError("the Joulescope needs its package: pip install joulescope") from None
        self._js = joulescope.scan_require_one(config="auto")
        self._js.open()
        self._js.parameter_set("current_lsb", "gpi0")  # IN0 = the board's timing marker
        self.duration_s = duration_s
        self._t0 = 0.0
        self._data: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        def read() -> None:
            self._data = self._js.read(contiguous_duration=self.duration_s,
                                       out_format="samples_get")

        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=read, daemon=True)
        self._thread.start()

    def stop(self) -> Recording:
        if self._thread is not None:
            self._thread.join()
        self._js.close()
        signals = self._data["signals"]
        current = np.asarray(signals["current"]["value"], dtype=np.float64)
        voltage = np.asarray(signals["voltage"]["value"], dtype=np.float64)
        lsb = signals.get("current_lsb")
        marker = None if lsb is None else np.asarray(lsb["value"]).astype(bool)
        fs = float(self._js.sampling_frequency)
        times = self._t0 + np.arange(len(current)) / fs
        return Recording(times, current, voltage, marker)


def chunks_to_series(chunks: list[tuple[float, np.ndarray]], rate_hz: float, supply_v: float,
                     logic: list[np.ndarray] | None = None) -> Recording:
    """Join timestamped sample chunks (stamp = host time when the chunk's last sample arrived);
    ``logic`` holds the marker channel, one array per chunk, sample for sample."""
    if not chunks:
        raise DeviceError("the power monitor returned no samples; check its USB connection")
    times, currents = [], []
    for stamp, samples in chunks:
        n = len(samples)
        times.append(stamp - (n - 1 - np.arange(n)) / rate_hz)
        currents.append(samples)
    t = np.concatenate(times)
    i = np.concatenate(currents)
    order = np.argsort(t, kind="stable")
    t, i = t[order], i[order]
    keep = np.concatenate([[True], np.diff(t) > 0])
    marker = None
    if logic is not None and sum(len(x) for x in logic) == len(order):
        marker = np.concatenate(logic)[order][keep]
    return Recording(t[keep], i[keep], np.full(int(keep.sum()), supply_v), marker)


def open_monitor(kind: str, port: str | None) -> PowerMonitor:
    if kind == "ppk2":
        if not port:
            raise DeviceError("the PPK2 needs --monitor-port (its serial port)")
        return Ppk2Monitor(port)
    if kind == "joulescope":
        return JoulescopeMonitor()
    raise DeviceError(f"unknown power monitor {kind!r}; use ppk2 or joulescope")
