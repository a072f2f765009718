"""Estimated Cortex-M cycles from the QEMU plugin's instruction classes (a timing model).

QEMU executes instructions, not cycles. The plugin (``firmware/qemu_plugin/icount_window.c``)
decodes every executed Thumb/Thumb-2 instruction into a timing class and counts the events the
encoding cannot show (taken branches, flash data reads, registers moved by LDM/STM). Here those
counts become cycles with the Cortex-M4 Technical Reference Manual's instruction timings plus the
board's flash wait states at its clock. Deterministic: the same firmware and input give the same
estimate. Assumptions and limits: docs/timing_model.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from edgeq.errors import DeviceError
from edgeq.toolchain.boards import Board

# The plugin's class order (C enum in icount_window.c); printed there as c0, c1, ...
CLASSES = ("alu", "mul", "div", "load", "load_pipelined", "store", "store_reg",
           "store_reg_pipelined", "ldrd", "ldm", "branch", "table_branch", "vfp", "vfp_mac",
           "vfp_div", "vfp_load", "vfp_store", "vfp_ldm")


@dataclass(frozen=True)
class CoreTiming:
    """Cycles per instruction class (before register counts, refills and wait states)."""

    name: str
    cost: dict[str, int]
    per_register: int  # LDM/STM/PUSH/POP/VLDM/VSTM: 1 + N
    refill: int  # P: pipeline refill after a taken branch (the TRM gives 1..3)
    note: str


# Cortex-M4 TRM (r0p1) tables 3-1 and 7-1. Loads are 2 cycles, 1 when pipelined after a load;
# STR with an immediate offset is 1 (address in decode, data through the write buffer); STR with
# a register offset 2, or 1 right after a load; divide 2..12 by operands, taken as 7.
CORTEX_M4 = CoreTiming(
    name="cortex-m4",
    cost={"alu": 1, "mul": 1, "div": 7, "load": 2, "load_pipelined": 1, "store": 1,
          "store_reg": 2, "store_reg_pipelined": 1, "ldrd": 3, "ldm": 1, "branch": 1,
          "table_branch": 2, "vfp": 1, "vfp_mac": 3, "vfp_div": 14, "vfp_load": 2,
          "vfp_store": 2, "vfp_ldm": 1},
    per_register=1, refill=2,
    note="Cortex-M4 TRM instruction timings")

CORE_TIMING = {
    "cortex-m4": CORTEX_M4,
    # No table of their own yet: the M4's, said so in every estimate (see docs/timing_model.md).
    "cortex-m3": CORTEX_M4, "cortex-m7": CORTEX_M4, "cortex-m33": CORTEX_M4,
    "cortex-m55": CORTEX_M4, "cortex-m0plus": CORTEX_M4,
}


@dataclass
class Events:
    """One window of plugin counts (or a difference of two)."""

    insns: int = 0
    taken: int = 0
    taken_flash: int = 0
    flash_reads: int = 0
    flash_line_misses: int = 0
    regs: int = 0
    classes: dict[str, int] = field(default_factory=dict)

    def __sub__(self, other: Events) -> Events:
        return Events(self.insns - other.insns, self.taken - other.taken,
                      self.taken_flash - other.taken_flash, self.flash_reads - other.flash_reads,
                      self.flash_line_misses - other.flash_line_misses, self.regs - other.regs,
                      {k: self.classes.get(k, 0) - other.classes.get(k, 0) for k in CLASSES})


@dataclass
class Window:
    """One timed run: totals, and cumulative counts at each per-layer hook call."""

    total: Events
    marks: list[Events] = field(default_factory=list)

    def layers(self) -> list[Events]:
        """Per-layer events: the hook is called before and after each layer, in order."""
        if len(self.marks) % 2:
            raise DeviceError(f"odd number of per-layer hook calls ({len(self.marks)}); the "
                              "firmware's per-layer profiling is broken")
        return [self.marks[i + 1] - self.marks[i] for i in range(0, len(self.marks), 2)]


def parse_events(line: str) -> Events:
    ev = Events()
    for tok in line.split():
        key, _, val = tok.partition("=")
        if not val:
            continue
        if key.startswith("c") and key[1:].isdigit():
            ev.classes[CLASSES[int(key[1:])]] = int(val)
        elif key in ("insns", "taken", "taken_flash", "flash_reads", "flash_line_misses", "regs"):
            setattr(ev, key, int(val))
    return ev


def read_windows(counts_file: Path) -> list[Window]:
    """Every completed window in the plugin's output (warm-up runs count as windows too when
    they reach the stop address)."""
    if not counts_file.is_file():
        return []
    windows: list[Window] = []
    marks: list[Events] = []
    for line in counts_file.read_text().splitlines():
        if line.strip() == "start":
            marks = []
        elif line.startswith("mark "):
            marks.append(parse_events(line[5:]))
        elif line.strip():
            windows.append(Window(parse_events(line), marks))
            marks = []
    return windows


def _clock_field(board: Board, key: str, default: object) -> object:
    return board.raw.get("clock", {}).get(key, default)


def flash_wait_states(board: Board, clock_hz: int) -> int:
    """Flash wait states at ``clock_hz``: ``clock.flash_ws`` holds them at ``clock.hz``; another
    clock keeps the access time they imply, (ws + 1) / hz, an upper bound: ceil((ws + 1) * f / hz)
    - 1. No ``flash_ws``: zero-wait-state code memory (the MPS2 boards' SSRAM)."""
    if _clock_field(board, "flash_ws", None) is None:
        return 0
    ws = int(_clock_field(board, "flash_ws", 0))  # type: ignore[call-overload]
    if clock_hz == board.clock_hz:
        return ws
    return max(0, math.ceil((ws + 1) * clock_hz / board.clock_hz - 1e-9) - 1)


def caches(board: Board) -> tuple[bool, bool]:
    """(instruction, data) flash caches on: ``clock.icache`` / ``clock.dcache`` (ART etc.)."""
    return bool(_clock_field(board, "icache", False)), bool(_clock_field(board, "dcache", False))


def core_cycles(ev: Events, core: CoreTiming = CORTEX_M4) -> int:
    """Cycles from the instruction classes alone (zero-wait-state memory)."""
    base = sum(core.cost[k] * ev.classes.get(k, 0) for k in CLASSES)
    return base + core.per_register * ev.regs + core.refill * ev.taken


def memory_cycles(ev: Events, board: Board, clock_hz: int) -> int:
    """Flash wait states: every branch target fetched from flash pays them unless an instruction
    cache is on (sequential fetches are assumed hidden by the prefetch buffer); every data read
    from flash pays them, or with a data cache only the reads that miss its lines."""
    ws = flash_wait_states(board, clock_hz)
    icache, dcache = caches(board)
    fetch = 0 if icache else ev.taken_flash
    data = ev.flash_line_misses if dcache else ev.flash_reads
    return ws * (fetch + data)


@dataclass(frozen=True)
class TimingEstimate:
    instructions: int
    cycles: int
    clock_hz: int
    board: str
    wait_states: int
    note: str

    @property
    def ms(self) -> float:
        return 1e3 * self.cycles / self.clock_hz

    def to_dict(self) -> dict[str, object]:
        return {"estimate": True, "instructions": self.instructions, "cycles": self.cycles,
                "clock_hz": self.clock_hz, "ms": self.ms, "board": self.board,
                "flash_wait_states": self.wait_states, "note": self.note}


def estimate(ev: Events, board: Board, clock_hz: int | None = None) -> TimingEstimate:
    """Estimated cycles and milliseconds of ``ev`` on ``board`` at ``clock_hz`` (default: the
    clock the board's firmware runs at)."""
    clock = clock_hz or board.clock_hz
    core = CORE_TIMING.get(board.core, CORTEX_M4)
    ws = flash_wait_states(board, clock)
    cycles = core_cycles(ev, core) + memory_cycles(ev, board, clock)
    note = f"estimate: {core.note}"
    if core.name != board.core:
        note += f" (no {board.core} table yet)"
    note += f", {ws} flash wait states at {clock / 1e6:g} MHz"
    icache, dcache = caches(board)
    if ws and (icache or dcache):
        note += " with " + " and ".join(n for n, on in (("I-cache", icache),
                                                         ("D-cache", dcache)) if on)
    return TimingEstimate(ev.insns, cycles, clock, board.name, ws, note)


def flash_range(board: Board) -> tuple[int, int]:
    f = board.flash
    return f.origin, f.origin + f.length
