"""Energy per inference: an estimate from the board's power model, or a measurement from a power
monitor's recorded samples.

Estimate: run-mode current scales with clock (datasheet µA/MHz), so for ``cycles`` at clock f
E = V · (k·f) · (cycles / f) = V · k · cycles — independent of the clock. An emulated board has
no power model: the estimate is for a named real board (``--power-model``, else the emulated
board's ``power.reference_board``) from the cycles the timing model estimates for that board at
its clock and wait states, and the note says so.
Measurement: E = ∫ V·I dt over the window that bracketed N inferences, divided by N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeq.errors import DeviceError
from edgeq.toolchain.boards import Board, power_model


@dataclass(frozen=True)
class EnergyEstimate:
    joules: float
    supply_v: float
    current_a: float  # run-mode current at the clock used for the estimate
    clock_hz: int
    model_board: str
    source: str
    note: str

    @property
    def microjoules(self) -> float:
        return self.joules * 1e6

    def to_dict(self) -> dict[str, object]:
        return {"estimate": True, "microjoules": self.microjoules, "supply_v": self.supply_v,
                "current_a": self.current_a, "clock_hz": self.clock_hz,
                "power_model_board": self.model_board, "source": self.source, "note": self.note}


def estimate_energy_for(power_board: Board, cycles: float, emulated: Board) -> EnergyEstimate:
    """Energy on the real ``power_board`` of ``cycles`` estimated for it from a run of the same
    firmware code on the ``emulated`` board."""
    model = power_board.power
    if model.supply_v is None or model.run_ua_per_mhz is None:
        raise DeviceError(f"{power_board.name} has no power model of its own; pass a real board "
                          "with a datasheet current to --power-model (e.g. nucleo-l4r5zi)")
    clock = power_board.clock_hz
    current = model.run_ua_per_mhz * 1e-6 * clock / 1e6
    joules = model.supply_v * current * cycles / clock
    note = (f"estimate for {power_board.name}, not {emulated.name} (emulated, no power model): "
            f"{cycles:,.0f} estimated cycles at {clock / 1e6:g} MHz x "
            f"{model.run_ua_per_mhz:g} uA/MHz at {model.supply_v:g} V")
    return EnergyEstimate(joules=joules, supply_v=model.supply_v, current_a=current,
                          clock_hz=clock, model_board=power_board.name, source=model.source,
                          note=note)


def power_board_for(board: Board, name: str | None) -> Board:
    """The real board whose power model an emulated ``board``'s estimate uses."""
    from edgeq.toolchain.boards import resolve_target

    chosen = name or board.power.reference_board
    if chosen is None:
        raise DeviceError(f"{board.name} is emulated and names no power.reference_board; pass "
                          "--power-model <real board>")
    return resolve_target(board=chosen)


def estimate_energy(board: Board, count: float, unit: str) -> EnergyEstimate:
    """Estimated energy of one inference that took ``count`` cycles (or instructions)."""
    from edgeq.toolchain.boards import resolve_target

    model, model_board = power_model(board)
    assert model.supply_v is not None and model.run_ua_per_mhz is not None
    ref = board if model_board == board.name else resolve_target(board=model_board)
    clock = ref.clock_hz  # the operating point its firmware runs at (board config [clock])
    current = model.run_ua_per_mhz * 1e-6 * clock / 1e6
    joules = model.supply_v * current * count / clock
    if unit == "instructions":
        note = (f"estimate: {board.name} is emulated; instructions counted as cycles on "
                f"{model_board}'s power model ({model.run_ua_per_mhz:g} uA/MHz at "
                f"{model.supply_v:g} V)")
    else:
        note = (f"estimate: {model.run_ua_per_mhz:g} uA/MHz x {clock / 1e6:g} MHz at "
                f"{model.supply_v:g} V (datasheet run mode)")
    return EnergyEstimate(joules=joules, supply_v=model.supply_v, current_a=current,
                          clock_hz=clock, model_board=model_board, source=model.source, note=note)


def integrate_energy(current_a: np.ndarray, voltage_v: float | np.ndarray, *,
                     sample_rate_hz: float | None = None, times_s: np.ndarray | None = None,
                     window: tuple[float, float] | None = None, inferences: int = 1) -> float:
    """Joules per inference from recorded samples: trapezoidal ∫ V·I dt over ``window`` / N.

    Give either a uniform ``sample_rate_hz`` or per-sample ``times_s``; ``voltage_v`` is a
    constant supply or one sample per current sample. ``window`` (start, end) in seconds selects
    the bracket that held the N inferences (e.g. the GPIO-high span or the command window).
    """
    i = np.asarray(current_a, dtype=np.float64)
    if i.ndim != 1 or len(i) < 2:
        raise DeviceError("need at least two current samples to integrate; record longer")
    if times_s is None:
        if not sample_rate_hz or sample_rate_hz <= 0:
            raise DeviceError("pass sample_rate_hz or times_s for the recorded samples")
        t = np.arange(len(i)) / sample_rate_hz
    else:
        t = np.asarray(times_s, dtype=np.float64)
        if t.shape != i.shape or np.any(np.diff(t) <= 0):
            raise DeviceError("times_s must be increasing, one per current sample")
    v = np.broadcast_to(np.asarray(voltage_v, dtype=np.float64), i.shape)
    p = v * i
    if window is not None:
        lo, hi = window
        if not (t[0] <= lo < hi <= t[-1]):
            raise DeviceError(f"window {lo}..{hi} s lies outside the recording "
                              f"{t[0]}..{t[-1]} s")
        inner = (t > lo) & (t < hi)
        t_w = np.concatenate([[lo], t[inner], [hi]])
        p_w = np.concatenate([[np.interp(lo, t, p)], p[inner], [np.interp(hi, t, p)]])
        t, p = t_w, p_w
    if inferences <= 0:
        raise DeviceError("inferences must be positive")
    return float(np.sum((p[1:] + p[:-1]) * np.diff(t)) / 2.0) / inferences


def gpio_windows(times_s: np.ndarray, logic: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) of every complete high span of the marker channel, in order."""
    lv = np.asarray(logic).astype(bool)
    t = np.asarray(times_s, dtype=np.float64)
    rises = np.flatnonzero(~lv[:-1] & lv[1:]) + 1
    falls = np.flatnonzero(lv[:-1] & ~lv[1:]) + 1
    spans = []
    for r in rises:
        after = falls[falls > r]
        if len(after):
            spans.append((float(t[r]), float(t[after[0]])))
    return spans


def marked_energy(current_a: np.ndarray, voltage_v: float | np.ndarray, times_s: np.ndarray,
                  logic: np.ndarray, inferences: int) -> tuple[float, float]:
    """Joules per inference over the marker's high spans (one per timed inference), and the
    mean span in seconds. The span count must equal ``inferences``: a mismatch means a
    miswired or bouncing marker input, and the figure would be wrong."""
    spans = gpio_windows(times_s, logic)
    if len(spans) != inferences:
        raise DeviceError(f"the marker pin pulsed {len(spans)} times for {inferences} "
                          "inferences; check the wiring to the monitor's digital input (or "
                          "sample faster)")
    total = sum(integrate_energy(current_a, voltage_v, times_s=times_s, window=w)
                for w in spans)
    return total / inferences, sum(b - a for a, b in spans) / inferences


def gpio_window(times_s: np.ndarray, logic: np.ndarray) -> tuple[float, float]:
    """(start, end) of the first high span of a digital channel (the firmware's marker pin)."""
    lv = np.asarray(logic).astype(bool)
    t = np.asarray(times_s, dtype=np.float64)
    rise = np.flatnonzero(~lv[:-1] & lv[1:])
    if len(rise) == 0:
        raise DeviceError("the marker pin never went high in the recording; check the wiring")
    start = rise[0] + 1
    fall = np.flatnonzero(lv[start:-1] & ~lv[start + 1:])
    if len(fall) == 0:
        raise DeviceError("the marker pin did not go low again; record longer")
    end = start + fall[0]
    return float(t[start]), float(t[end])
