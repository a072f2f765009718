"""The arm-none-eabi-gcc driver: compile the firmware for a board, link, size, and refuse images
that do not fit.

Direct compiler invocations (no Make) keep the command lines visible in ``build.log`` and let the
driver turn compiler and linker failures into one-line ``BuildError``s. Output goes to a temp
directory renamed into place, so a failed build never leaves a half-written firmware directory.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from edgeq.artifacts import FIRMWARE_STEM
from edgeq.errors import BuildError
from edgeq.fileio import atomic_output_dir
from edgeq.toolchain.boards import Board
from edgeq.toolchain.fit import check_fit
from edgeq.toolchain.linker import board_header, linker_script
from edgeq.toolchain.tflm_library import CXXFLAGS as TFLM_CXXFLAGS
from edgeq.toolchain.tflm_library import TflmLibrary

logger = logging.getLogger(__name__)

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
RUNTIME_DIR = FIRMWARE_DIR / "runtime"
TFLM_MODEL_SOURCE = FIRMWARE_DIR / "tflm_rt" / "eq_tflm_model.cc"
CROSS_PREFIX = "arm-none-eabi-"
INSTALL_HINT = ("install it (Debian/Ubuntu: sudo apt-get install gcc-arm-none-eabi "
                "libnewlib-arm-none-eabi, or run `make setup`)")
UART_SOURCES = {
    "cmsdk": ("uart_cmsdk.c", []),
    "stm32_usart_v1": ("uart_stm32.c", ["-DEQ_STM32_USART_V1"]),
    "stm32_usart_v2": ("uart_stm32.c", ["-DEQ_STM32_USART_V2"]),
    "nrf52_uarte": ("uart_nrf52.c", []),
}
# Emulated boards talk over semihosting by default (see firmware/drivers/uart_semihost.c);
# link="uart" keeps the board's UART driver (as on the real part) in the emulator too.
LINKS = ("uart", "semihosting")
# What the firmware speaks to the host: edgeq's framed binary protocol, or the MLPerf Tiny
# (EEMBC) text test harness (firmware/app/eq_mlperf.c) that the MLPerf Tiny runner drives.
PROTOCOLS = ("edgeq", "mlperf")
SEMIHOST_SOURCE = ("uart_semihost.c", [])
COUNTER_SOURCES = {"systick_icount": "counter_systick.c", "dwt": "counter_dwt.c"}
# What a build optimizes for (`edgeq build --optimize`): compiler flags, runtime defines.
# speed: -O2 and every specialised kernel path. size: -Os and the runtime compiled with
# EDGEQ_RT_SIZE (the DSP register tiles stay, the per-call-site copies of pixel loops and
# requantization go; see firmware/runtime/include/eq_dsp.h), for parts with 64-128 KB of flash;
# without code hoisting, which under -Os raised register pressure in the tiles (measured: 4-10 %
# fewer cycles for 64 bytes). An explicit flag (`--opt`) replaces the mode's flags but keeps its
# defines. Both modes are bit-exact with TFLM.
OPTIMIZE_MODES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "speed": (("-O2",), ()),
    "size": (("-Os", "-fno-code-hoisting"), ("EDGEQ_RT_SIZE",)),
}


@dataclass(frozen=True)
class SizeReport:
    """Bytes per section group; flash = text+rodata+data, RAM = data+bss+stack."""

    text: int
    rodata: int
    data: int
    bss: int
    stack: int
    flash_capacity: int
    ram_capacity: int

    @property
    def flash(self) -> int:
        return self.text + self.rodata + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss + self.stack

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "flash": self.flash, "ram": self.ram}


@dataclass(frozen=True)
class FirmwareBuild:
    board: Board
    out_dir: Path
    elf: Path
    bin: Path
    hex: Path
    size: SizeReport
    arena_bytes: int
    profile_layers: bool
    link: str = "uart"
    protocol: str = "edgeq"
    optimize: str = "speed"
    opt: str = "-O2"


def resolve_optimize(optimize: str,
                     opt: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The compiler flags and runtime defines of an optimization mode; ``opt`` (a raw flag such
    as -O3) replaces the mode's flags."""
    if optimize not in OPTIMIZE_MODES:
        raise BuildError(f"unknown optimization mode {optimize!r}; use one of "
                         f"{', '.join(OPTIMIZE_MODES)}")
    flags, defines = OPTIMIZE_MODES[optimize]
    if opt is not None and not re.fullmatch(r"-O[0-3sgz]?|-Ofast", opt):
        raise BuildError(f"--opt {opt!r} is not a gcc optimization flag; use one of -O0, -O1, "
                         "-O2, -O3, -Os, -Oz, -Og")
    return ((opt,) if opt is not None else flags), defines


def find_tool(name: str) -> str:
    """Absolute path of a cross tool, or a BuildError saying how to install it."""
    path = shutil.which(CROSS_PREFIX + name)
    if path is None:
        raise BuildError(f"{CROSS_PREFIX}{name} not found on PATH; {INSTALL_HINT}")
    return path


def model_arena_bytes(model_dir: Path) -> int:
    """EDGEQ_MODEL_ARENA_BYTES from a generated model.h."""
    header = model_dir / "model.h"
    if not header.is_file():
        raise BuildError(f"{header} not found; generate the model first (`edgeq codegen "
                         "MODEL -o DIR --runtime edgeq`)")
    m = re.search(r"#define\s+EDGEQ_MODEL_ARENA_BYTES\s+\(?(\d+)", header.read_text())
    if m is None:
        raise BuildError(f"{header} has no EDGEQ_MODEL_ARENA_BYTES; regenerate the model")
    return int(m.group(1))


def parse_size(text: str, board: Board) -> SizeReport:
    """Sum ``arm-none-eabi-size -A`` sections into the report's groups."""
    sizes: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
    return SizeReport(
        text=sizes.get(".text", 0),
        rodata=sizes.get(".rodata", 0) + sizes.get(".ARM.exidx", 0),
        data=sizes.get(".data", 0),
        bss=sizes.get(".bss", 0),
        stack=sizes.get(".stack", 0),
        flash_capacity=board.flash.length,
        ram_capacity=board.ram.length,
    )


def _run(cmd: list[str], log: list[str], what: str) -> subprocess.CompletedProcess[str]:
    logger.debug("%s: %s", what, " ".join(cmd))
    log.append(" ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.stdout or proc.stderr:
        log.append(proc.stdout + proc.stderr)
    return proc


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if "error" in line.lower():
            return line.strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "no compiler output"


def resolve_link(board: Board, link: str | None, protocol: str = "edgeq") -> str:
    """The host link a firmware uses: ``uart`` on real boards, the board's choice in QEMU
    (MLPerf firmware keeps the UART: its runner opens a serial port, e.g. QEMU's pty)."""
    if link is None:
        return board.emulator_link if board.emulated and protocol == "edgeq" else "uart"
    if link not in LINKS:
        raise BuildError(f"unknown link {link!r}; use one of {', '.join(LINKS)}")
    if link == "semihosting" and not board.emulated:
        raise BuildError(f"{board.name} is a real board: semihosting needs a debugger attached; "
                         "use link uart")
    return link


def _sources(board: Board, model_dir: Path, runtime_dir: Path,
             kernel_sources: list[Path] | None, link: str, protocol: str,
             clock_setup: bool) -> list[tuple[Path, list[str]]]:
    uart_file, uart_flags = (SEMIHOST_SOURCE if link == "semihosting"
                             else UART_SOURCES[board.uart_driver])
    srcs: list[tuple[Path, list[str]]] = [
        (FIRMWARE_DIR / "startup" / "startup.c", []),
        *([(FIRMWARE_DIR / "startup" / f"clock_{board.clock.tree}.c", [])] if clock_setup else []),
        (FIRMWARE_DIR / "drivers" / uart_file, uart_flags),
        (FIRMWARE_DIR / "drivers" / COUNTER_SOURCES[board.counter], []),
    ]
    if protocol == "mlperf":
        srcs.append((FIRMWARE_DIR / "app" / "eq_mlperf.c", []))
    else:
        srcs += [(FIRMWARE_DIR / "proto" / "eq_proto.c", []),
                 (FIRMWARE_DIR / "app" / "eq_app.c", []),
                 (FIRMWARE_DIR / "app" / "main.c", [])]
    srcs += [(p, []) for p in sorted(model_dir.glob("*.c"))]
    kernels = runtime_dir / "kernels"
    if kernel_sources is not None:
        srcs += [(Path(p), []) for p in kernel_sources]
    elif kernels.is_dir():
        srcs += [(p, []) for p in sorted(kernels.rglob("*.c"))]
    srcs += [(p, []) for p in sorted(runtime_dir.glob("*.c"))]
    return srcs


def build_firmware(
    board: Board,
    model_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    runtime_dir: str | os.PathLike[str] | None = None,
    opt: str | None = None,
    optimize: str = "speed",
    profile_layers: bool = False,
    input_bytes: int | None = None,
    kernel_sources: list[Path] | None = None,
    defines: tuple[str, ...] = (),
    link: str | None = None,
    protocol: str = "edgeq",
    clock_setup: bool | None = None,
    tflm: TflmLibrary | None = None,
    progress: bool = False,
) -> FirmwareBuild:
    """Compile the app, drivers, generated model and runtime kernels into fw.elf/.bin/.hex.

    ``input_bytes`` (the sum of the model's input sizes) sizes the app's input staging buffer;
    without it the arena size is used as a safe upper bound. ``kernel_sources`` (from codegen)
    limits the runtime kernels compiled to those the model calls; default: all of them.
    ``link`` picks the host link (``uart`` or, emulated boards only, ``semihosting``);
    ``protocol`` what the firmware speaks (``edgeq`` framed binary, or ``mlperf``).
    ``clock_setup`` overrides whether the startup runs the board's clock tree (default: the
    board config's choice; QEMU boards without an RCC model skip it).
    ``tflm`` links a TFLite Micro firmware instead: ``model_dir`` then holds the files of
    ``codegen.tflm_model`` and ``firmware/tflm_rt/eq_tflm_model.cc`` runs the model through the
    library (compiled with g++ and the library's flags, no edgeq-rt kernels).
    ``progress`` draws a bar over the compiled files on stderr.
    ``optimize`` (``speed`` or ``size``, see OPTIMIZE_MODES) picks the compiler flags and the
    runtime's kernel paths; ``opt`` replaces the flags only.
    """
    if protocol not in PROTOCOLS:
        raise BuildError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    opt_flags, mode_defines = resolve_optimize(optimize, opt)
    defines = (*mode_defines, *defines)
    model_dir = Path(model_dir)
    setup = board.clock_setup if clock_setup is None else clock_setup and board.clock.configured
    runtime = Path(runtime_dir) if runtime_dir is not None else RUNTIME_DIR
    out = Path(out_dir)
    gcc, objcopy, size_tool = find_tool("gcc"), find_tool("objcopy"), find_tool("size")
    if not (runtime / "include").is_dir():
        raise BuildError(f"edgeq-rt runtime headers not found in {runtime / 'include'}; "
                         "restore firmware/runtime or pass runtime_dir")
    host_link = resolve_link(board, link, protocol)
    arena = model_arena_bytes(model_dir)
    staging = input_bytes if input_bytes is not None else arena
    check_fit(board, arena_bytes=arena, input_bytes=staging)
    cflags = [
        *board.gcc_cpu_flags(), *opt_flags, "-std=c99", "-g", "-Wall", "-Wextra", "-Werror",
        "-ffunction-sections", "-fdata-sections", "-fno-common",
        f"-DEQ_APP_STAGING_BYTES={max(staging, 1)}",
        *([] if any(d.startswith("EQP_MAX_PAYLOAD=") for d in defines)
          else [f"-DEQP_MAX_PAYLOAD={board.frame_payload}u"]),
        *[f"-D{d}" for d in defines],
    ]
    if profile_layers:
        cflags.append("-DEDGEQ_PROFILE_LAYERS")
    log: list[str] = []
    with atomic_output_dir(out) as tmp:
        (tmp / "board_config.h").write_text(board_header(board, clock_setup=setup))
        (tmp / "linker.ld").write_text(linker_script(board))
        includes = [f"-I{p}" for p in (tmp, FIRMWARE_DIR / "include", model_dir,
                                       runtime / "include")]
        (tmp / "obj").mkdir()
        jobs = []
        sources = _sources(board, model_dir, runtime, kernel_sources, host_link, protocol, setup)
        for i, (src, extra) in enumerate(sources):
            obj = tmp / "obj" / f"{i:03d}_{src.stem}.o"
            jobs.append((src, obj, [gcc, *cflags, *extra, *includes, "-c", str(src), "-o",
                                    str(obj)]))
        if tflm is not None:
            gxx = find_tool("g++")
            cxxflags = [*board.gcc_cpu_flags(), *opt_flags, "-g", *TFLM_CXXFLAGS, "-Wall",
                        "-Wextra", "-Werror", "-Wno-unused-parameter", *tflm.defines,
                        f"-DEQP_MAX_PAYLOAD={board.frame_payload}u"]
            obj = tmp / "obj" / f"{len(jobs):03d}_{TFLM_MODEL_SOURCE.stem}.o"
            tflm_inc = [f"-I{p}" for p in tflm.include_dirs]
            jobs.append((TFLM_MODEL_SOURCE, obj, [gxx, *cxxflags, *includes, *tflm_inc, "-c",
                                                  str(TFLM_MODEL_SOURCE), "-o", str(obj)]))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(jobs), desc="compiling", unit="file", leave=False)
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                results = []
                for item in pool.map(lambda j: (j, _run(j[2], log, "compile")), jobs):
                    results.append(item)
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        for (src, _, _), proc in results:
            if proc.returncode != 0:
                _write_log(out, log)
                raise BuildError(f"{CROSS_PREFIX}gcc failed on {src.name}: "
                                 f"{_first_error(proc.stderr)} (full log: {out / 'build.log'})")
        objs = [str(obj) for _, obj, _ in jobs]
        elf = tmp / f"{FIRMWARE_STEM}.elf"
        ldflags = [*board.gcc_cpu_flags(), *opt_flags, "-nostartfiles", "--specs=nano.specs",
                   "--specs=nosys.specs", "-Wl,--gc-sections",
                   f"-Wl,-Map={elf.with_suffix('.map')}"]
        libs = [str(tflm.library)] if tflm is not None else []
        driver = find_tool("g++") if tflm is not None else gcc
        link = [driver, *ldflags, "-T", str(tmp / "linker.ld"), *objs, *libs, "-lm", "-o",
                str(elf)]
        proc = _run(link, log, "link")
        if proc.returncode != 0:
            if "overflowed" in proc.stderr or "will not fit" in proc.stderr:
                (tmp / "measure.ld").write_text(linker_script(board, measure=True))
                measure = [*link[:-1], str(tmp / "measure.elf")]
                measure[measure.index(str(tmp / "linker.ld"))] = str(tmp / "measure.ld")
                if _run(measure, log, "measure").returncode == 0:
                    rep = parse_size(_run([size_tool, "-A", str(tmp / "measure.elf")], log,
                                          "size").stdout, board)
                    _write_log(out, log)
                    raise BuildError(_does_not_fit(board, rep))
            _write_log(out, log)
            raise BuildError(f"linking the firmware failed: {_first_error(proc.stderr)} "
                             f"(full log: {out / 'build.log'})")
        for fmt, suffix in (("binary", ".bin"), ("ihex", ".hex")):
            name = elf.with_suffix(suffix).name
            if _run([objcopy, "-O", fmt, str(elf), str(tmp / name)], log, fmt).returncode:
                _write_log(out, log)
                raise BuildError(f"{CROSS_PREFIX}objcopy could not write {name}; see build.log")
        size_out = _run([size_tool, "-A", str(elf)], log, "size").stdout
        if re.search(r"^\.(init|preinit)_array\s+[1-9]", size_out, re.M):
            _write_log(out, log)  # startup.c runs no C++ constructors
            raise BuildError("the firmware has C++ static constructors, which its startup does "
                             "not run; build objects in place at first use instead")
        (tmp / "size.txt").write_text(size_out)
        report = parse_size(size_out, board)
        (tmp / "build.log").write_text("\n".join(log) + "\n")
    stem = out / FIRMWARE_STEM
    return FirmwareBuild(board=board, out_dir=out, elf=stem.with_suffix(".elf"),
                         bin=stem.with_suffix(".bin"), hex=stem.with_suffix(".hex"),
                         size=report, arena_bytes=arena,
                         profile_layers=profile_layers, link=host_link, protocol=protocol,
                         optimize=optimize, opt=" ".join(opt_flags))


def _does_not_fit(board: Board, rep: SizeReport) -> str:
    parts = []
    if rep.flash > rep.flash_capacity:
        parts.append(f"flash needs {rep.flash} bytes, {board.name} has {rep.flash_capacity} "
                     f"(over by {rep.flash - rep.flash_capacity})")
    if rep.ram > rep.ram_capacity:
        parts.append(f"RAM needs {rep.ram} bytes, {board.name} has {rep.ram_capacity} "
                     f"(over by {rep.ram - rep.ram_capacity})")
    detail = "; ".join(parts) or "the image overflows a memory region"
    return f"model does not fit {board.name}: {detail}; pick a larger board or a smaller model"


def _write_log(out: Path, log: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "build.log").write_text("\n".join(log) + "\n")
