"""Power monitors (Nordic PPK2, Joulescope): thin adapters that record current around a burst of
inferences; the energy math lives in ``edgeq.bench.energy`` and is tested on recorded arrays.

The host marks the command window (monotonic clock at INVOKE sent and reply received) and the
monitor's samples are timestamped on the same clock, so ∫V·I dt over that window / N is the
energy per inference (plus the little UART traffic inside the window). Device paths are covered
by ``hardware`` tests only.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import numpy as np

from edgeq.errors import DeviceError


class PowerMonitor(Protocol):
    def start(self) -> None: ...

    def stop(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times_s on time.monotonic, current_a, voltage_v) of everything recorded."""
        ...


class Ppk2Monitor:
    """Nordic PPK2 in source-meter mode (powers the board at ``supply_mv``), 100 kS/s."""

    RATE_HZ = 100_000.0

    def __init__(self, port: str, supply_mv: int = 3300) -> None:
        try:
            from ppk2_api.ppk2_api import PPK2_API
        except ImportError:
            raise DeviceError("the PPK2 needs ppk2-api: pip install ppk2-api") from None
        self.supply_v = supply_mv / 1000.0
        self._ppk = PPK2_API(port, timeout=1, write_timeout=1, exclusive=True)
        self._ppk.get_modifiers()
        self._ppk.use_source_meter()
        self._ppk.set_source_voltage(supply_mv)
        self._ppk.toggle_DUT_power("ON")
        self._chunks: list[tuple[float, np.ndarray]] = []
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
            time.sleep(0.001)

    def start(self) -> None:
        self._ppk.start_measuring()
        self._stop.clear()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def stop(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._ppk.stop_measuring()
        return chunks_to_series(self._chunks, self.RATE_HZ, self.supply_v)


class JoulescopeMonitor:
    """Joulescope JS110/JS220 through the ``joulescope`` package: one contiguous read."""

    def __init__(self, duration_s: float = 5.0) -> None:
        try:
            import joulescope
        except ImportError:
            raise DeviceError("the Joulescope needs its package: pip install joulescope") from None
        self._js = joulescope.scan_require_one(config="auto")
        self._js.open()
        self.duration_s = duration_s
        self._t0 = 0.0
        self._data: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        def read() -> None:
            self._data = self._js.read(contiguous_duration=self.duration_s)

        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=read, daemon=True)
        self._thread.start()

    def stop(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._thread is not None:
            self._thread.join()
        self._js.close()
        data = np.asarray(self._data, dtype=np.float64)
        fs = float(self._js.sampling_frequency)
        times = self._t0 + np.arange(len(data)) / fs
        return times, data[:, 0], data[:, 1]


def chunks_to_series(chunks: list[tuple[float, np.ndarray]], rate_hz: float,
                     supply_v: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join timestamped sample chunks (stamp = host time when the chunk's last sample arrived)."""
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
    return t[keep], i[keep], np.full(int(keep.sum()), supply_v)


def open_monitor(kind: str, port: str | None) -> PowerMonitor:
    if kind == "ppk2":
        if not port:
            raise DeviceError("the PPK2 needs --monitor-port (its serial port)")
        return Ppk2Monitor(port)
    if kind == "joulescope":
        return JoulescopeMonitor()
    raise DeviceError(f"unknown power monitor {kind!r}; use ppk2 or joulescope")
