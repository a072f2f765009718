"""Board configs (``board_configs/*.toml``): load, validate, and resolve ``--target``.

A board config is the single description of a board every later stage reads: core and FPU flags
for the compiler, memory regions for the linker script, the UART and cycle counter for the
firmware, the QEMU machine for emulation, the flasher, and a power model for energy estimates.
Validation happens at load time so that a typo fails with the file and field named, not as a
compiler or emulator error later.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeq.errors import BuildError

CORES = ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
UART_DRIVERS = ("cmsdk", "stm32_usart_v1", "stm32_usart_v2", "nrf52_uarte")
COUNTER_KINDS = ("systick_icount", "dwt")
# Clock-tree procedures in firmware/startup/clock_<tree>.c ("none": the part runs as reset/QEMU).
CLOCK_TREES = ("none", "stm32f4", "stm32l4", "stm32h7", "nrf52")
CLOCK_SOURCES = ("reset", "hsi", "hse", "msi", "hfxo")
VOLTAGES = ("default", "scale1", "scale1-overdrive", "range1", "range1-boost", "vos1")
# Regulator modes each clock_<tree>.c implements (H7 VOS0 for 480 MHz is not implemented).
TREE_VOLTAGES = {"stm32f4": ("scale1", "scale1-overdrive"), "stm32l4": ("range1", "range1-boost"),
                 "stm32h7": ("vos1",), "nrf52": ("default",)}
UART_BUSES = ("core", "apb1", "apb2")
FPUS = ("none", "fpv4-sp-d16", "fpv5-sp-d16", "fpv5-d16")


def board_dir() -> Path:
    """Directory of the shipped board configs (``EDGEQ_BOARD_DIR`` overrides it)."""
    env = os.environ.get("EDGEQ_BOARD_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "board_configs"


@dataclass(frozen=True)
class MemoryRegion:
    name: str
    kind: str  # "flash" | "ram"
    origin: int
    length: int


@dataclass(frozen=True)
class PowerModel:
    """Run-mode current per MHz from the datasheet, or a reference board to borrow it from."""

    supply_v: float | None = None
    run_ua_per_mhz: float | None = None
    source: str = ""
    reference_board: str | None = None


@dataclass(frozen=True)
class MarkerPin:
    """GPIO driven high for exactly the timed window (one pulse per timed inference)."""

    port: str  # "PA".."PK" (STM32) or "P0"/"P1" (nRF52)
    pin: int
    set_addr: int  # write set_value here to drive the pin high (BSRR / OUTSET)
    set_value: int
    clear_addr: int  # ... and clear_value here to drive it low (BSRR upper half / OUTCLR)
    clear_value: int
    init: tuple[tuple[int, int, int], ...]  # [address, clear, set]: clock enable, output mode


@dataclass(frozen=True)
class ClockConfig:
    """The operating point the startup code establishes (``[clock]``), as the reference manual
    defines it: PLL factors, bus dividers, flash wait states, regulator mode, caches.

    ``pll_*`` are the divider/multiplier values (not register encodings); 0 means "not used".
    """

    tree: str = "none"
    source: str = "reset"
    source_hz: int = 0
    hse_bypass: bool = False
    pll_m: int = 0
    pll_n: int = 0
    pll_p: int = 0
    pll_q: int = 0
    pll_r: int = 0
    ahb_div: int = 1
    apb1_div: int = 1
    apb2_div: int = 1
    flash_ws: int = 0
    flash_delay: int = 0  # STM32H7 FLASH_ACR.WRHIGHFREQ (programming delay) for the AXI clock
    voltage: str = "default"
    prefetch: bool = False
    icache: bool = False
    dcache: bool = False

    @property
    def configured(self) -> bool:
        """True when the firmware changes the clock at all."""
        return self.tree != "none"

    @property
    def bus_ahb_div(self) -> int:
        """AHB divider between the core clock and the APB buses: on the STM32H7 HPRE divides
        the bus clock only (the core runs at SYSCLK / D1CPRE); elsewhere the core runs at HCLK."""
        return self.ahb_div if self.tree == "stm32h7" else 1

    def pll_hz(self) -> int:
        """PLL output used as SYSCLK: source / M * N / (P, or R on the L4 family)."""
        if not self.pll_m or not self.pll_n:
            return self.source_hz
        post = self.pll_r if self.tree == "stm32l4" else self.pll_p
        return self.source_hz * self.pll_n // (self.pll_m * post)


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    core: str
    mcpu: str
    fpu: str
    float_abi: str
    clock_hz: int  # core clock (HCLK to the Cortex-M) after startup: the operating point
    max_clock_hz: int  # datasheet maximum
    reset_clock_hz: int  # core clock after reset; the firmware falls back here if setup fails
    clock: ClockConfig
    memory: tuple[MemoryRegion, ...]
    uart_driver: str
    uart_base: int
    uart_baud: int
    uart_clock_hz: int  # UART kernel clock at the operating point
    uart_reset_clock_hz: int  # ... and at the reset clock (the fallback's baud divisor)
    uart_lpuart: bool
    uart_pins: tuple[int, int]
    init_writes: tuple[tuple[int, int, int], ...]
    counter: str
    stack_bytes: int
    frame_payload: int  # protocol frame payload (EQP_MAX_PAYLOAD): 3 buffers of it in RAM
    qemu_machine: str | None
    emulator_link: str  # "semihosting" (fast, QEMU only) or "uart" (the board's UART model)
    pyocd_target: str | None
    openocd_config: tuple[str, ...]
    flasher: str | None
    power: PowerModel
    marker: MarkerPin | None
    verified_emulation: tuple[str, ...]
    verified_hardware: tuple[str, ...]
    clock_setup: bool  # False: this build skips the clock tree (QEMU has no RCC model)
    default_for_core: bool
    path: Path
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def emulated(self) -> bool:
        return self.qemu_machine is not None

    @property
    def flash(self) -> MemoryRegion:
        return next(m for m in self.memory if m.kind == "flash")

    @property
    def ram(self) -> MemoryRegion:
        return next(m for m in self.memory if m.kind == "ram")

    @property
    def counter_unit(self) -> str:
        return "instructions" if self.counter == "systick_icount" else "cycles"

    def gcc_cpu_flags(self) -> list[str]:
        flags = [f"-mcpu={self.mcpu}", "-mthumb"]
        if self.fpu == "none":
            flags.append("-mfloat-abi=soft")
        else:
            flags += [f"-mfpu={self.fpu}", f"-mfloat-abi={self.float_abi}"]
        return flags


class _Fields:
    """Typed access to one TOML table that names the file and key in every error."""

    def __init__(self, data: dict[str, Any], path: Path, table: str = "") -> None:
        self.data, self.path, self.table = data, path, table

    def _where(self, key: str) -> str:
        return f"{self.path.name}: {self.table + '.' if self.table else ''}{key}"

    def get(self, key: str, typ: type | tuple[type, ...], default: Any = ..., choices=None) -> Any:
        if key not in self.data:
            if default is ...:
                raise BuildError(f"{self._where(key)} is missing; add it to the board config")
            return default
        value = self.data[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise BuildError(f"{self._where(key)} has the wrong type ({type(value).__name__}); "
                             "fix the board config")
        if choices is not None and value not in choices:
            raise BuildError(f"{self._where(key)} = {value!r} is not one of {', '.join(choices)}; "
                             "fix the board config")
        return value

    def sub(self, key: str, required: bool = True) -> _Fields:
        value = self.data.get(key)
        if value is None and not required:
            return _Fields({}, self.path, key)
        if not isinstance(value, dict):
            raise BuildError(f"{self._where(key)} table is missing; add [{key}] to the board config")
        return _Fields(value, self.path, key)


def load_board_file(path: str | os.PathLike[str]) -> Board:
    """Parse and validate one board config file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise BuildError(f"board config {p} not found; see `edgeq boards`") from None
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{p.name} is not valid TOML ({exc}); fix the board config") from None
    top = _Fields(data, p)
    cpu, clock, uart = top.sub("cpu"), top.sub("clock"), top.sub("uart")
    counter, fw, emu = top.sub("counter"), top.sub("firmware", False), top.sub("emulator", False)
    flasher_t, power_t = top.sub("flasher", False), top.sub("power", False)
    verified_t = top.sub("verified", False)

    regions = []
    mem = data.get("memory")
    if not isinstance(mem, list) or not mem:
        raise BuildError(f"{p.name}: [[memory]] regions are missing; add flash and ram regions")
    for i, m in enumerate(mem):
        f = _Fields(m, p, f"memory[{i}]")
        region = MemoryRegion(f.get("name", str), f.get("kind", str, choices=("flash", "ram")),
                              f.get("origin", int), f.get("length", int))
        if region.length <= 0 or region.origin < 0 or region.origin + region.length > 1 << 32:
            raise BuildError(f"{p.name}: memory region {region.name} lies outside the 32-bit "
                             "address space or is empty; fix origin/length")
        regions.append(region)
    for kind in ("flash", "ram"):
        if not any(r.kind == kind for r in regions):
            raise BuildError(f"{p.name}: no {kind} memory region; add a [[memory]] with "
                             f"kind = \"{kind}\"")

    init = []
    for entry in uart.get("init", list, []):
        if (not isinstance(entry, list) or len(entry) != 3
                or not all(isinstance(v, int) and 0 <= v < 1 << 32 for v in entry)):
            raise BuildError(f"{p.name}: uart.init entries must be [address, clear, set] 32-bit "
                             "integers; fix the board config")
        init.append((entry[0], entry[1], entry[2]))

    fpu = cpu.get("fpu", str, choices=FPUS)
    float_abi = cpu.get("float_abi", str, choices=("soft", "softfp", "hard"))
    if fpu == "none" and float_abi != "soft":
        raise BuildError(f"{p.name}: cpu.float_abi must be \"soft\" when cpu.fpu = \"none\"")
    openocd = flasher_t.get("openocd_config", list, [])
    power = PowerModel(
        supply_v=power_t.get("supply_v", (int, float), None),
        run_ua_per_mhz=power_t.get("run_ua_per_mhz", (int, float), None),
        source=power_t.get("source", str, ""),
        reference_board=power_t.get("reference_board", str, None),
    )
    if power.reference_board is None and (power.supply_v is None or power.run_ua_per_mhz is None):
        raise BuildError(f"{p.name}: [power] needs supply_v and run_ua_per_mhz (datasheet) or "
                         "reference_board")
    clk = _clock_config(clock, p)
    hz = clock.get("hz", int)
    reset_hz = clock.get("reset_hz", int, hz)
    bus = uart.get("bus", str, "core", choices=UART_BUSES)
    bus_div = {"core": 1, "apb1": clk.apb1_div, "apb2": clk.apb2_div}[bus]
    if bus != "core":
        bus_div *= clk.bus_ahb_div
    marker = _marker_pin(top.sub("marker", False), clk.tree, p)
    board = Board(
        name=top.get("name", str),
        description=top.get("description", str, ""),
        core=top.get("core", str, choices=CORES),
        mcpu=cpu.get("mcpu", str),
        fpu=fpu,
        float_abi=float_abi,
        clock_hz=hz,
        max_clock_hz=clock.get("max_hz", int, hz),
        reset_clock_hz=reset_hz,
        clock=clk,
        memory=tuple(regions),
        uart_driver=uart.get("driver", str, choices=UART_DRIVERS),
        uart_base=uart.get("base", int),
        uart_baud=uart.get("baud", int, 115200),
        uart_clock_hz=uart.get("clock_hz", int, hz // bus_div),
        uart_reset_clock_hz=uart.get("reset_clock_hz", int, reset_hz),
        uart_lpuart=uart.get("lpuart", bool, False),
        uart_pins=(uart.get("tx_pin", int, 0), uart.get("rx_pin", int, 0)),
        init_writes=tuple(init),
        counter=counter.get("kind", str, choices=COUNTER_KINDS),
        stack_bytes=fw.get("stack_bytes", int, 8192),
        frame_payload=fw.get("frame_payload", int, 4096),
        qemu_machine=emu.get("qemu_machine", str, None),
        emulator_link=emu.get("link", str, "semihosting", choices=("semihosting", "uart")),
        pyocd_target=flasher_t.get("pyocd_target", str, None),
        openocd_config=tuple(str(c) for c in openocd),
        flasher=flasher_t.get("default", str, None, choices=("pyocd", "openocd")),
        power=power,
        marker=marker,
        verified_emulation=tuple(str(v) for v in verified_t.get("emulation", list, [])),
        verified_hardware=tuple(str(v) for v in verified_t.get("hardware", list, [])),
        clock_setup=emu.get("clock_setup", bool, True) and clk.configured,
        default_for_core=top.get("default_for_core", bool, False),
        path=p,
        raw=data,
    )
    if board.name != p.stem:
        raise BuildError(f"{p.name}: name = {board.name!r} differs from the file name; make them "
                         "equal")
    if board.counter == "systick_icount" and not board.emulated:
        raise BuildError(f"{p.name}: counter kind systick_icount needs an [emulator]; real boards "
                         "use \"dwt\"")
    if not 64 <= board.frame_payload <= 4096:
        raise BuildError(f"{p.name}: firmware.frame_payload must be in 64..4096 bytes")
    if board.clock_hz <= 0 or board.clock_hz > board.max_clock_hz:
        raise BuildError(f"{p.name}: clock.hz must be in 1..clock.max_hz")
    _check_operating_point(board, p)
    return board


def _clock_config(clock: _Fields, p: Path) -> ClockConfig:
    tree = clock.get("tree", str, "none", choices=CLOCK_TREES)
    if tree == "none":
        return ClockConfig()
    factors = {k: clock.get(k, int, 0) for k in ("pll_m", "pll_n", "pll_p", "pll_q", "pll_r")}
    if any(v < 0 for v in factors.values()):
        raise BuildError(f"{p.name}: clock.pll_* factors must be positive; fix the board config")
    return ClockConfig(
        tree=tree,
        source=clock.get("source", str, choices=CLOCK_SOURCES),
        source_hz=clock.get("source_hz", int),
        hse_bypass=clock.get("hse_bypass", bool, False),
        **factors,
        ahb_div=clock.get("ahb_div", int, 1),
        apb1_div=clock.get("apb1_div", int, 1),
        apb2_div=clock.get("apb2_div", int, 1),
        flash_ws=clock.get("flash_ws", int, 0),
        flash_delay=clock.get("flash_delay", int, 0),
        voltage=clock.get("voltage", str, "default", choices=VOLTAGES),
        prefetch=clock.get("prefetch", bool, False),
        icache=clock.get("icache", bool, False),
        dcache=clock.get("dcache", bool, False),
    )


def _check_operating_point(board: Board, p: Path) -> None:
    """The stated ``hz`` must be what the PLL factors and AHB divider produce."""
    c = board.clock
    if not c.configured:
        return
    if c.voltage not in TREE_VOLTAGES[c.tree]:
        raise BuildError(f"{p.name}: clock.voltage = \"{c.voltage}\" is not implemented for "
                         f"clock.tree = \"{c.tree}\"; use one of "
                         f"{', '.join(TREE_VOLTAGES[c.tree])}")
    if c.tree == "nrf52":
        if board.clock_hz != 64_000_000 or c.source != "hfxo":
            raise BuildError(f"{p.name}: the nRF52 core always runs at 64 MHz; set clock.hz = "
                             "64_000_000 and clock.source = \"hfxo\"")
        return
    for div, name in ((c.ahb_div, "ahb_div"), (c.apb1_div, "apb1_div"), (c.apb2_div, "apb2_div")):
        if div not in (1, 2, 4, 8, 16):
            raise BuildError(f"{p.name}: clock.{name} = {div} is not 1, 2, 4, 8 or 16")
    if min(c.pll_m, c.pll_n, c.pll_p if c.tree != "stm32l4" else c.pll_r) <= 0:
        raise BuildError(f"{p.name}: clock.pll_m, pll_n and pll_p (pll_r on stm32l4) are needed "
                         f"for clock.tree = \"{c.tree}\"")
    got = c.pll_hz() // (1 if c.tree == "stm32h7" else c.ahb_div)
    if got != board.clock_hz:
        raise BuildError(f"{p.name}: the PLL factors give {got} Hz (source {c.source_hz} / M "
                         f"{c.pll_m} x N {c.pll_n} / {'R' if c.tree == 'stm32l4' else 'P'} / AHB "
                         f"{c.ahb_div}), not clock.hz = {board.clock_hz}; fix the factors or hz")
    if not 0 <= c.flash_ws <= 15:
        raise BuildError(f"{p.name}: clock.flash_ws must be 0..15")


def _marker_pin(t: _Fields, tree: str, p: Path) -> MarkerPin | None:
    """Registers of the timing-marker GPIO from its port letter and pin, per family."""
    if not t.data:
        return None
    port, pin = t.get("port", str), t.get("pin", int)
    if tree == "nrf52":
        if port not in ("P0", "P1") or not 0 <= pin < 32:
            raise BuildError(f"{p.name}: marker must be P0/P1 pin 0..31 on the nRF52")
        base = 0x50000000 if port == "P0" else 0x50000300
        return MarkerPin(port, pin, base + 0x508, 1 << pin, base + 0x50C, 1 << pin,
                         ((base + 0x518, 0, 1 << pin),))  # OUTSET, OUTCLR, DIRSET
    layout = {"stm32f4": (0x40020000, 0x40023830), "stm32l4": (0x48000000, 0x4002104C),
              "stm32h7": (0x58020000, 0x580244E0)}  # GPIOA base, RCC AHBxENR (port clocks)
    if tree not in layout or len(port) != 2 or port[0] != "P" or not "A" <= port[1] <= "K" \
            or not 0 <= pin < 16:
        raise BuildError(f"{p.name}: marker needs an STM32/nRF52 clock.tree and a port PA..PK "
                         "with pin 0..15")
    gpio0, enr = layout[tree]
    idx = ord(port[1]) - ord("A")
    base = gpio0 + 0x400 * idx
    return MarkerPin(port, pin, base + 0x18, 1 << pin, base + 0x18, 1 << (pin + 16), (
        (enr, 0, 1 << idx),                            # port clock on
        (base + 0x00, 3 << (2 * pin), 1 << (2 * pin)),  # MODER: general-purpose output
    ))


def list_boards(directory: Path | None = None) -> list[Board]:
    """Every board config in ``directory`` (default: the shipped ones), sorted by name."""
    d = directory or board_dir()
    files = sorted(d.glob("*.toml"))
    if not files:
        raise BuildError(f"no board configs in {d}; set EDGEQ_BOARD_DIR or restore board_configs/")
    return [load_board_file(f) for f in files]


def board_names(directory: Path | None = None) -> list[str]:
    """Names of the board configs (file stems), without parsing them: cheap enough for option
    checks in other stages."""
    return sorted(f.stem for f in (directory or board_dir()).glob("*.toml"))


def default_boards(boards: list[Board]) -> dict[str, Board]:
    """Core name -> its default board (an emulated one)."""
    out: dict[str, Board] = {}
    for b in boards:
        if b.default_for_core:
            if b.core in out:
                raise BuildError(f"two default boards for {b.core}: {out[b.core].name} and "
                                 f"{b.name}; keep default_for_core on one")
            out[b.core] = b
    return out


def resolve_target(target: str | None = None, board: str | None = None) -> Board:
    """Resolve ``--target`` (a core or board name) and ``--board`` (a name or a .toml path)."""
    if board and (board.endswith(".toml") or os.sep in board):
        return load_board_file(board)
    boards = list_boards()
    by_name = {b.name: b for b in boards}
    if board:
        if board not in by_name:
            raise BuildError(f"unknown board {board!r}; choose one of: {', '.join(by_name)}")
        chosen = by_name[board]
        if target and target not in (chosen.core, chosen.name):
            raise BuildError(f"board {board} has a {chosen.core}, not {target}; drop --target or "
                             "pick a matching board")
        return chosen
    target = target or "cortex-m4"
    if target in by_name:
        return by_name[target]
    defaults = default_boards(boards)
    if target in defaults:
        return defaults[target]
    raise BuildError(f"unknown target {target!r}; use a core ({', '.join(sorted(defaults))}) or a "
                     f"board ({', '.join(by_name)})")


def power_model(board: Board) -> tuple[PowerModel, str]:
    """The board's power model, following ``reference_board``; returns (model, board it is from)."""
    if board.power.reference_board is None:
        return board.power, board.name
    ref = resolve_target(board=board.power.reference_board)
    if ref.power.reference_board is not None:
        raise BuildError(f"{board.name}: reference_board {ref.name} has no own power model")
    return ref.power, ref.name
