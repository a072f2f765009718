"""Latency statistics, per-layer tables and the clock they are converted at."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from edgeq.toolchain.boards import Board


@dataclass(frozen=True)
class LatencyStats:
    unit: str
    runs: int
    median: float
    min: int
    max: int
    clock_hz: int

    @property
    def median_ms(self) -> float | None:
        """Milliseconds for cycle counts on a real board; None for emulator instructions."""
        if self.unit != "cycles" or not self.clock_hz:
            return None
        return self.median * 1e3 / self.clock_hz

    def to_dict(self) -> dict[str, object]:
        return {"unit": self.unit, "runs": self.runs, "median": self.median, "min": self.min,
                "max": self.max, "median_ms": self.median_ms}


def latency_stats(counts: list[int], unit: str, clock_hz: int) -> LatencyStats:
    if not counts:
        raise ValueError("no runs to summarize")
    return LatencyStats(unit=unit, runs=len(counts), median=float(statistics.median(counts)),
                        min=min(counts), max=max(counts), clock_hz=clock_hz)


@dataclass(frozen=True)
class LayerRow:
    index: int
    op: str
    count: int
    macs: int

    @property
    def macs_per_count(self) -> float | None:
        return self.macs / self.count if self.count and self.macs else None


def layer_table(names: list[str], macs: list[int], counts: list[int]) -> list[LayerRow]:
    return [LayerRow(i, n, c, m) for i, (n, m, c) in enumerate(zip(names, macs, counts,
                                                                     strict=True))]


def render_layers(rows: list[LayerRow], unit: str) -> str:
    total = sum(r.count for r in rows) or 1
    head = f"{'#':>3} {'op':<22} {unit:>14} {'share':>7} {'MACs':>10} {'MACs/' + unit[:-1]:>14}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = f"{r.macs_per_count:.3f}" if r.macs_per_count else "-"
        lines.append(f"{r.index:>3} {r.op:<22} {r.count:>14,} {100 * r.count / total:>6.1f}% "
                     f"{r.macs:>10,} {ratio:>14}")
    macs = sum(r.macs for r in rows)
    lines.append(f"{'':>3} {'total':<22} {sum(r.count for r in rows):>14,} {'':>7} {macs:>10,} "
                 f"{(macs / total):>14.3f}")
    return "\n".join(lines)


def clock_status(board: Board, reported_hz: int) -> tuple[bool, str]:
    """Compare the clock the firmware reports (HELLO) with the board config's operating point.
    A real board below it failed its clock setup at boot and fell back to the reset clock."""
    want = board.clock_hz
    if reported_hz == want:
        where = "emulated machine clock" if board.emulated else "board config operating point"
        return True, f"{want / 1e6:g} MHz ({where})"
    note = (f"{board.name} runs at {reported_hz / 1e6:g} MHz, not the configured "
            f"{want / 1e6:g} MHz: its clock setup failed at boot (the firmware printed the "
            "failed step on the UART); figures are at the clock it runs at")
    if reported_hz == board.reset_clock_hz:
        note += " (the reset clock)"
    return False, note
