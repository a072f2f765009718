"""Run a linked firmware image's startup code under the unicorn instruction emulator with the
peripheral space replaced by a register file that records every access.

Used by the clock-tree tests: the real ``fw.bin`` executes from its reset vector on an emulated
Cortex-M core; reads and writes to 0x40000000-0x5FFFFFFF and the system control space go to
``RegisterFile``, whose ready bits follow the enable bits the firmware writes (``ReadyRule``).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field, replace

from unicorn import UC_ARCH_ARM, UC_HOOK_CODE, UC_MODE_MCLASS, UC_MODE_THUMB, Uc, UcError
from unicorn.arm_const import (
    UC_ARM_REG_LR,
    UC_ARM_REG_PC,
    UC_ARM_REG_R0,
    UC_ARM_REG_R1,
    UC_ARM_REG_R2,
    UC_ARM_REG_R3,
    UC_ARM_REG_SP,
    UC_CPU_ARM_CORTEX_M4,
    UC_CPU_ARM_CORTEX_M7,
)

from edgeq.toolchain.boards import Board
from edgeq.toolchain.compiler import FirmwareBuild, find_tool

PERIPHERALS = (0x40000000, 0x20000000)  # 0x40000000-0x5FFFFFFF: APB/AHB/D1-D3 buses, nRF GPIO
SYSTEM = (0xE0000000, 0x00100000)  # SCB, FPU, DWT, cache maintenance


@dataclass(frozen=True)
class ReadyRule:
    """``status_addr & ready`` reads as set once ``enable_addr & enable == enable`` has held for
    ``delay`` reads of the status register (an oscillator taking time to start), clear otherwise.
    A ``never`` rule (or any rule at a RegisterFile.broken address) never reports ready."""

    enable_addr: int
    enable: int
    status_addr: int
    ready: int
    delay: int = 3
    inverted: bool = False  # flag that reads 1 while busy (e.g. VOSF), 0 once done
    never: bool = False  # the part never gets there (a crystal that does not start)


@dataclass
class Access:
    kind: str  # "w" | "r" | "call" (a marked function entered, see StartupRun.mark_calls)
    addr: int
    value: int
    icount: int  # instructions executed inside the counted function (eq_clock_init) so far


@dataclass
class RegisterFile:
    reset: dict[int, int]
    rules: list[ReadyRule]
    mirrors: list[tuple[int, int, int]] = field(default_factory=list)  # (addr, src mask, shift)
    broken: set[int] = field(default_factory=set)  # status addresses whose rule never fires
    fixed: dict[int, int] = field(default_factory=dict)  # bits that always read as set (UART TXE)
    dma_tx: tuple[int, int] | None = None  # (start-task register, pointer register): nRF UARTE
    dma_bytes: bytearray = field(default_factory=bytearray)  # one byte per task trigger
    writes: list[Access] = field(default_factory=list)
    reads: list[Access] = field(default_factory=list)
    log: list[Access] = field(default_factory=list)  # reads, writes and marks, in order
    icount: int = 0

    def __post_init__(self) -> None:
        self.values: dict[int, int] = dict(self.reset)
        self._polls: dict[ReadyRule, int] = {}

    def never_ready(self, status_addr: int, ready: int) -> None:
        """Make the rule for that ready bit never fire; for a status mirror (SWS) drop it."""
        hits = [r for r in self.rules if (r.status_addr, r.ready) == (status_addr, ready)]
        mirrors = [m for m in self.mirrors if m[0] == status_addr and m[1] << m[2] == ready]
        assert hits or mirrors, f"no ready rule for {status_addr:#010x} & {ready:#x}"
        self.rules = [replace(r, never=True) if r in hits else r for r in self.rules]
        self.mirrors = [m for m in self.mirrors if m not in mirrors]

    def value(self, addr: int) -> int:
        return self.values.get(addr, 0)

    def read(self, addr: int) -> int:
        v = self.value(addr) | self.fixed.get(addr, 0)
        for rule in self.rules:
            if rule.status_addr != addr:
                continue
            on = (self.value(rule.enable_addr) & rule.enable) == rule.enable
            n = self._polls.get(rule, 0) + 1 if on else 0
            self._polls[rule] = n
            ready = on and n > rule.delay and not rule.never and addr not in self.broken
            if rule.inverted:
                ready = not ready if on else False
            v = (v | rule.ready) if ready else (v & ~rule.ready)
        for maddr, mask, shift in self.mirrors:  # e.g. SWS follows SW
            if maddr == addr:
                v = (v & ~(mask << shift)) | ((v & mask) << shift)
        self.reads.append(Access("r", addr, v, self.icount))
        self.log.append(self.reads[-1])
        return v

    def write(self, addr: int, value: int) -> None:
        self.writes.append(Access("w", addr, value, self.icount))
        self.log.append(self.writes[-1])
        self.values[addr] = value

    def write_index(self, addr: int, mask: int, value: int, start: int = 0) -> int:
        """Index of the first recorded write from ``start`` on that leaves ``addr & mask`` equal
        to ``value``; a missing write fails the calling test with the address named."""
        for i in range(start, len(self.writes)):
            w = self.writes[i]
            if w.addr == addr and w.value & mask == value:
                return i
        raise AssertionError(f"no write to {addr:#010x} with (value & {mask:#x}) == {value:#x}")

    def value_before(self, index: int, addr: int) -> int:
        """The register's value just before recorded write ``index`` (replaying the writes)."""
        v = self.reset.get(addr, 0)
        for w in self.writes[:index]:
            if w.addr == addr:
                v = w.value
        return v


@dataclass
class StartupRun:
    regs: RegisterFile
    reached: list[str]  # watched symbols in the order first executed
    symbols: dict[str, tuple[int, int]]
    uc: Uc
    sp: int
    return_addr: int

    def call(self, fn: str, *args: int, max_instructions: int = 50_000_000) -> int:
        """Call a firmware function (AAPCS, up to four word arguments) from where startup
        stopped; returns r0."""
        for reg, val in zip((UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3)[
                :len(args)], args, strict=True):
            self.uc.reg_write(reg, val)
        self.uc.reg_write(UC_ARM_REG_SP, self.sp - 64)
        self.uc.reg_write(UC_ARM_REG_LR, self.return_addr | 1)
        self.uc.emu_start(self.symbols[fn][0] | 1, self.return_addr, count=max_instructions)
        return self.uc.reg_read(UC_ARM_REG_R0)

    def mark_calls(self, fn: str) -> None:
        """Log an ("call", address of fn) entry in regs.log each time ``fn`` is entered."""
        addr = self.symbols[fn][0] & ~1
        self.uc.hook_add(UC_HOOK_CODE,
                         lambda *_: self.regs.log.append(Access("call", addr, 0, self.regs.icount)),
                         None, addr, addr)


def symbols(elf: str) -> dict[str, tuple[int, int]]:
    """name -> (address, size) of the ELF's sized symbols."""
    out = subprocess.run([find_tool("nm"), "-S", elf], capture_output=True, text=True,
                         check=True).stdout
    table: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            table[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    return table


def run_startup(fw: FirmwareBuild, regs: RegisterFile, *, stop_at: str = "eq_uart_getc",
                watch: tuple[str, ...] = ("main", "eq_clock_init", "eq_uart_init"),
                counted: str = "eq_clock_init", max_instructions: int = 30_000_000) -> StartupRun:
    """Execute ``fw`` from its reset vector until ``stop_at`` is first entered; instructions
    inside ``counted`` are counted one by one (only there: per-instruction hooks are slow)."""
    board: Board = fw.board
    cpu = UC_CPU_ARM_CORTEX_M7 if board.core == "cortex-m7" else UC_CPU_ARM_CORTEX_M4
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(cpu)
    image = fw.bin.read_bytes()
    for region in board.memory:
        uc.mem_map(region.origin, region.length)
    uc.mem_write(board.flash.origin, image)

    def on_read(_uc, offset, _size, base):
        return regs.read(base + offset)

    def on_write(u, offset, _size, value, base):
        regs.write(base + offset, value)
        if regs.dma_tx and base + offset == regs.dma_tx[0] and value == 1:
            regs.dma_bytes += u.mem_read(regs.value(regs.dma_tx[1]), 1)

    for base, size in (PERIPHERALS, SYSTEM):
        uc.mmio_map(base, size, on_read, base, on_write, base)

    syms = symbols(str(fw.elf))
    reached: list[str] = []

    def on_entry(u, _address, _size, name):
        if name not in reached:
            reached.append(name)
        if name == stop_at:
            u.emu_stop()

    def on_counted(_u, _address, _size, _data):
        regs.icount += 1

    for name in (*watch, stop_at):
        if name in syms:
            addr = syms[name][0] & ~1
            uc.hook_add(UC_HOOK_CODE, on_entry, name, addr, addr)
    if counted in syms:
        addr, size = syms[counted]
        uc.hook_add(UC_HOOK_CODE, on_counted, None, addr & ~1, (addr & ~1) + size - 1)
    sp = int.from_bytes(image[0:4], "little")
    reset = int.from_bytes(image[4:8], "little")
    uc.reg_write(UC_ARM_REG_SP, sp)
    try:
        uc.emu_start(reset | 1, 0xFFFFFFFF, count=max_instructions)
    except UcError as exc:
        pc = uc.reg_read(UC_ARM_REG_PC)
        raise AssertionError(f"emulation stopped at pc={pc:#x}: {exc}") from None
    if stop_at not in reached:
        raise AssertionError(f"{stop_at} not reached within {max_instructions} instructions")
    return StartupRun(regs=regs, reached=reached, symbols=syms, uc=uc, sp=sp,
                      return_addr=board.flash.origin + board.flash.length - 16)


# Register maps (reset values and ready bits) per clock-tree family, from the reference manuals.

CCSIDR = 0xE000ED80  # Cortex-M7 cache size ID (selected by CSSELR)


def _bits(value: int, hi: int, lo: int) -> int:
    assert 0 <= value < 1 << (hi - lo + 1)
    return value << lo



def f4_model(board: Board) -> RegisterFile:
    """RM0090 (F405/F407) / RM0390 (F446): RCC 0x40023800, PWR 0x40007000, FLASH 0x40023C00."""
    cr, csr = 0x40023800, 0x40007004
    f446 = board.clock.voltage == "scale1-overdrive"
    return RegisterFile(
        reset={cr: 0x83, 0x40023804: 0x24003010, 0x40007000: 0xC000 if f446 else 0x4000},
        rules=[ReadyRule(cr, 1 << 0, cr, 1 << 1), ReadyRule(cr, 1 << 16, cr, 1 << 17),
               ReadyRule(cr, 1 << 24, cr, 1 << 25),
               ReadyRule(0x40007000, 1 << 16, csr, 1 << 16),  # ODEN -> ODRDY
               ReadyRule(0x40007000, 1 << 17, csr, 1 << 17)],  # ODSWEN -> ODSWRDY
        mirrors=[(0x40023808, 0x3, 2)],  # CFGR.SWS follows SW
        fixed={board.uart_base + (0x00 if board.uart_driver == "stm32_usart_v1" else 0x1C): 0x80})


def l4_model(board: Board) -> RegisterFile:
    """RM0432 (L4R5): RCC 0x40021000, PWR 0x40007000, FLASH 0x40022000."""
    cr = 0x40021000
    return RegisterFile(
        reset={cr: 0x63, 0x4002100C: 0x1000, 0x40007000: 0x200, 0x40007080: 0x100,
               0x40022000: 0x600},
        rules=[ReadyRule(cr, 1 << 8, cr, 1 << 10), ReadyRule(cr, 1 << 16, cr, 1 << 17),
               ReadyRule(cr, 1 << 24, cr, 1 << 25),
               ReadyRule(0x40007000, 1 << 9, 0x40007014, 1 << 10, inverted=True)],  # VOSF busy
        mirrors=[(0x40021008, 0x3, 2)],
        fixed={board.uart_base + 0x1C: 0x80})


def h7_model(board: Board) -> RegisterFile:
    """RM0433 (H743): RCC 0x58024400, PWR 0x58024800, FLASH 0x52002000, M7 SCB cache ids."""
    cr, d3cr = 0x58024400, 0x58024818
    ccsidr = _bits(128 - 1, 27, 13) | _bits(4 - 1, 12, 3) | _bits(1, 2, 0)  # 16 KB, 4-way, 32 B
    return RegisterFile(
        reset={0x5802480C: 0x6, d3cr: 0x4000, cr: 0x25, 0x52002000: 0x37,
               0x58024428: 0x02020200, 0x5802442C: 0x01FF0000, 0x58024430: 0x01010280,
               CCSIDR: ccsidr},
        rules=[ReadyRule(0x5802480C, 1 << 1, 0x58024804, 1 << 13),  # LDOEN -> ACTVOSRDY
               ReadyRule(d3cr, 3 << 14, d3cr, 1 << 13),  # VOS1 -> VOSRDY
               ReadyRule(cr, 1 << 0, cr, 1 << 2), ReadyRule(cr, 1 << 16, cr, 1 << 17),
               ReadyRule(cr, 1 << 24, cr, 1 << 25)],
        mirrors=[(0x58024410, 0x7, 3)],
        fixed={board.uart_base + 0x1C: 0x80})


def nrf_model(board: Board) -> RegisterFile:
    """nRF52840 PS: CLOCK 0x40000000 (HFCLKSTART task/event, HFCLKSTAT), NVMC 0x4001E000,
    UARTE EVENTS_ENDTX reads as done."""
    return RegisterFile(
        reset={},
        rules=[ReadyRule(0x40000000, 1, 0x40000100, 1),
               ReadyRule(0x40000000, 1, 0x4000040C, 0x10001, delay=0)],  # set with the event
        fixed={board.uart_base + 0x120: 1},
        dma_tx=(board.uart_base + 0x008, board.uart_base + 0x544))  # TASKS_STARTTX, TXD.PTR


MODELS = {"stm32f4": f4_model, "stm32l4": l4_model, "stm32h7": h7_model, "nrf52": nrf_model}
