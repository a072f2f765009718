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
class Board:
    name: str
    description: str
    core: str
    mcpu: str
    fpu: str
    float_abi: str
    clock_hz: int
    max_clock_hz: int
    memory: tuple[MemoryRegion, ...]
    uart_driver: str
    uart_base: int
    uart_baud: int
    uart_clock_hz: int
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
    board = Board(
        name=top.get("name", str),
        description=top.get("description", str, ""),
        core=top.get("core", str, choices=CORES),
        mcpu=cpu.get("mcpu", str),
        fpu=fpu,
        float_abi=float_abi,
        clock_hz=clock.get("hz", int),
        max_clock_hz=clock.get("max_hz", int, clock.get("hz", int)),
        memory=tuple(regions),
        uart_driver=uart.get("driver", str, choices=UART_DRIVERS),
        uart_base=uart.get("base", int),
        uart_baud=uart.get("baud", int, 115200),
        uart_clock_hz=uart.get("clock_hz", int, clock.get("hz", int)),
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
    return board


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
