"""edgeq-rt against TFLite Micro + CMSIS-NN and TFLM reference kernels, side by side in one run.

Every model is built five ways for mps2-an386 (Cortex-M4F, -O2, same arm-none-eabi-gcc) and run
in QEMU under the same TCG plugin: edgeq-rt firmware (this tree's kernels, DSP path; the size
build of `edgeq build --optimize size`, -Os -fno-code-hoisting with -DEDGEQ_RT_SIZE; and the
portable C path forced with -DEDGEQ_RT_PORTABLE), and a bare-metal TFLM
firmware linked with the TFLM library built with CMSIS-NN and with the reference kernels from
../shared/third_party/tflite-micro (built once, cached by edgeq.toolchain.tflm_library: the first
run takes several minutes per library). Printed per model and runtime: MACs (conv/depthwise/FC
only), exact instructions per inference, instructions/MAC, estimated cycles (Cortex-M4 timing
model, edgeq.device.timing; zero-wait-state MPS2 memory), cycles/MAC, ms at 120 MHz, arena, flash,
whether the output equals the TFLM Python interpreter's byte for byte, and the ratios
edgeq-rt / TFLM+CMSIS-NN of that run.

    .venv/bin/python benchmarks/runtime_speed.py [--models ds_cnn resnet8 ...] [--markdown F]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
SHARED_MODELS = REPO.parent / "shared" / "models" / "tflm"
LOOKALIKES = ["ds_cnn", "resnet8", "mobilenet_v1_025", "fc_autoencoder"]
SHIPPED = ["digits_cnn", "hello_world_int8", "micro_speech_quantized", "person_detect"]
BOARD = "mps2-an386"
CLOCK_HZ = 120_000_000
RUNTIMES = ("edgeq-rt", "edgeq-rt-size", "edgeq-rt-portable", "tflm+cmsis-nn", "tflm-ref")
REFERENCE_BOARD = "nucleo-l4r5zi"


@dataclass
class Row:
    model: str
    runtime: str
    macs: int
    instructions: int | None = None
    cycles: int | None = None
    arena: int | None = None
    flash: int | None = None
    bit_exact: bool | None = None
    error: str | None = None
    ref_ms: float | None = None  # estimate on the MLPerf Tiny reference board (wait states, ART)
    output: bytes | None = None
    oracle: str = "TFLM Python interpreter"


def reference_board_ms(ev: object) -> float:
    """Estimated ms on the STM32L4R5 at 120 MHz with its flash wait states and ART caches."""
    from edgeq.device.timing import estimate
    from edgeq.toolchain.boards import resolve_target

    return estimate(ev, resolve_target(board=REFERENCE_BOARD), CLOCK_HZ).ms  # type: ignore[arg-type]


def tflite_for(name: str, work: Path) -> Path:
    path = work / f"{name}_int8.tflite"
    if name in LOOKALIKES or name == "digits_cnn":
        if not path.is_file():  # else --work of an earlier run: same seeds, same model
            from device import quantize  # benchmarks/device.py: same quantization as its table

            quantize(name, work)
        if name == "mobilenet_v1_025":
            drop_final_softmax(path)
        return path
    path = SHARED_MODELS / f"{name}.tflite"
    if not path.is_file():
        raise SystemExit(f"{path} not found; check out ../shared next to the repository")
    return path


def drop_final_softmax(path: Path) -> None:
    """With random weights the look-alike MobileNet's two logits are all but constant; their
    quantization scale is so small that TFLM's SOFTMAX Prepare aborts (QuantizeMultiplier-
    GreaterThanOne), in the Python interpreter and on the device alike. Both runtimes then run
    the model without its final softmax (2 elements: no measurable cost)."""
    from edgeq.tflite import load_model_t, serialize_model_t

    mt = load_model_t(path.read_bytes())
    sg = mt.subgraphs[0]
    last = sg.operators[-1]
    if mt.operatorCodes[last.opcodeIndex].builtinCode == 25:  # SOFTMAX
        sg.operators = sg.operators[:-1]
        sg.outputs = [int(sg.operators[-1].outputs[0])]
        path.write_bytes(serialize_model_t(mt))


def graph_macs(tflite: Path) -> int:
    """MACs of the convolution, depthwise and fully connected layers (the field's count)."""
    from edgeq.bench.latency import MAC_OPS
    from edgeq.codegen.edgeq_rt import lower_model
    from edgeq.tflite import read_tflite

    calls = lower_model(read_tflite(tflite), str(tflite))
    return sum(int(c.macs) for c in calls if not c.view and c.op in MAC_OPS)


def random_input(tflite: Path) -> np.ndarray:
    from edgeq.tflite import read_tflite

    t = read_tflite(tflite).input_tensors[0]
    dt = np.dtype(t.dtype)
    rng = np.random.default_rng(1)
    return rng.integers(np.iinfo(dt).min, np.iinfo(dt).max + 1, size=(1, *t.shape[1:]),
                        dtype=dt)


def run_edgeq(name: str, tflite: Path, x: np.ndarray, want: np.ndarray | None, work: Path,
              macs: int, portable: bool = False, optimize: str = "speed") -> Row:
    """edgeq-rt firmware; ``portable`` forces the portable C kernels (-DEDGEQ_RT_PORTABLE) on the
    same Cortex-M4, the path cores without the DSP extension take; ``optimize`` is the build's
    mode (``size``: -Os and the runtime's EDGEQ_RT_SIZE paths)."""
    from edgeq.codegen.edgeq_rt import write_edgeq_rt
    from edgeq.device.icount import PluginCounter
    from edgeq.device.qemu import QemuInstance
    from edgeq.device.session import DeviceSession
    from edgeq.device.timing import estimate
    from edgeq.tflite import read_tflite
    from edgeq.toolchain.boards import resolve_target
    from edgeq.toolchain.compiler import build_firmware

    board = resolve_target(board=BOARD)
    gen = write_edgeq_rt(tflite, work / f"{name}_rt", name=name)
    info = read_tflite(tflite)
    tag = ("_portable" if portable else "") + ("_size" if optimize == "size" else "")
    fw = build_firmware(board, work / f"{name}_rt", work / f"{name}_fw{tag}",
                        input_bytes=sum(t.nbytes for t in info.input_tensors),
                        kernel_sources=gen.kernel_sources, optimize=optimize,
                        defines=("EDGEQ_RT_PORTABLE",) if portable else ())
    counter = PluginCounter(board, fw.elf, work / f"{name}_plugin{tag}")
    t_in = info.input_tensors[0]
    with QemuInstance(board.qemu_machine or "", fw.elf, extra_args=counter.args,
                      read_timeout=60.0) as q:
        s = DeviceSession(q.port, alive=q.check_alive)
        (got,), _ = s.infer([x[0].reshape(t_in.shape)], runs=1, warmup=0)
    ev = counter.windows()[-1].total
    out = np.ascontiguousarray(got).tobytes()
    runtime = "edgeq-rt" + tag.replace("_", "-")
    return Row(name, runtime, macs, ev.insns,
               estimate(ev, board).cycles, gen.arena_bytes,
               fw.size.flash, None if want is None else out == want.tobytes(),
               ref_ms=reference_board_ms(ev), output=out)


def run_tflm(name: str, variant: str, tflite: Path, x: np.ndarray, want: np.ndarray | None,
             work: Path, macs: int) -> Row:
    from edgeq.device.icount import build_plugin, plugin_args
    from edgeq.device.semihosting import run_tflm_firmware
    from edgeq.device.timing import estimate, flash_range, read_windows
    from edgeq.toolchain.boards import resolve_target
    from edgeq.toolchain.tflm_firmware import START, STOP, build_tflm_firmware
    from edgeq.toolchain.tflm_library import tflm_library

    board = resolve_target(board=BOARD)
    lib = tflm_library("cm4_cmsis_nn" if variant == "tflm+cmsis-nn" else "cm4_reference")
    out = work / f"{name}_{lib.variant}"
    fw = build_tflm_firmware(board, lib, tflite.read_bytes(), x.tobytes(), out)
    counts = out / "plugin_counts.txt"
    args = plugin_args(fw.elf, build_plugin(work / "plugin"), counts, start=START, stop=STOP,
                       flash=flash_range(board))
    res = run_tflm_firmware(board, fw.elf, args)
    if res.status != 0:
        return Row(name, variant, macs, error=f"TFLM status {res.status}")
    windows = read_windows(counts)
    ev = windows[-1].total
    return Row(name, variant, macs, ev.insns, estimate(ev, board).cycles, res.arena_bytes,
               fw.size.flash, None if want is None else res.output == want.tobytes(),
               ref_ms=reference_board_ms(ev), output=res.output)


def measure(name: str, work: Path, runtimes: tuple[str, ...] = RUNTIMES) -> list[Row]:
    from device import oracle_in_child  # the TFLM Python interpreter in a child process

    tflite = tflite_for(name, work)
    macs = graph_macs(tflite)
    x = random_input(tflite)
    want = oracle_in_child(tflite, x)
    rows = []
    for runtime in runtimes:
        print(f"  {name}: {runtime} ...", file=sys.stderr, flush=True)
        try:
            if runtime.startswith("edgeq-rt"):
                rows.append(run_edgeq(name, tflite, x, want, work, macs,
                                      portable=runtime == "edgeq-rt-portable",
                                      optimize="size" if runtime == "edgeq-rt-size" else "speed"))
            else:
                rows.append(run_tflm(name, runtime, tflite, x, want, work, macs))
        except Exception as exc:  # noqa: BLE001 - one model's failure must not end the table
            rows.append(Row(name, runtime, macs, error=f"{type(exc).__name__}: {exc}"[:120]))
    if want is None:  # the Python interpreter crashed: TFLM's own firmware output is the oracle
        ref = next((r for r in rows if r.runtime == "tflm-ref" and r.output is not None),
                   next((r for r in rows if r.runtime.startswith("tflm") and r.output), None))
        for r in rows:
            if ref is not None and r is not ref and r.output is not None:
                r.bit_exact, r.oracle = r.output == ref.output, f"{ref.runtime} firmware"
    return rows


def _f(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[Row]) -> list[str]:
    head = ("| model | runtime | MACs | instructions | instr/MAC | est. cycles | cycles/MAC | "
            "ms @120 MHz | L4R5 ms (est.) | arena B | flash B | bit-exact | "
            "instr ratio vs TFLM+CMSIS-NN | cycle ratio |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    base = {(r.model): r for r in rows if r.runtime == "tflm+cmsis-nn" and r.error is None}
    for r in rows:
        if r.error:
            lines.append(f"| {r.model} | {r.runtime} | {r.macs:,} | error: {r.error} |"
                         + " |" * 10)
            continue
        assert r.instructions is not None and r.cycles is not None
        ipm = r.instructions / r.macs if r.macs else None
        cpm = r.cycles / r.macs if r.macs else None
        b = base.get(r.model)
        ri = r.instructions / b.instructions if b and b.instructions else None
        rc = r.cycles / b.cycles if b and b.cycles else None
        exact = "n/a" if r.bit_exact is None else ("yes" if r.bit_exact else "NO")
        if r.bit_exact is not None and r.oracle != "TFLM Python interpreter":
            exact += f" (vs {r.oracle})"
        lines.append(f"| {r.model} | {r.runtime} | {r.macs:,} | {r.instructions:,} | "
                     f"{_f(ipm, '.2f')} | {r.cycles:,} | {_f(cpm, '.2f')} | "
                     f"{1e3 * r.cycles / CLOCK_HZ:.2f} | {_f(r.ref_ms, '.2f')} | "
                     f"{r.arena or 0:,} | {r.flash or 0:,} | "
                     f"{exact} | {_f(ri, '.2f')} | {_f(rc, '.2f')} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=LOOKALIKES + SHIPPED)
    ap.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    ap.add_argument("--markdown", type=Path, help="Also write the table to this file.")
    ap.add_argument("--work", type=Path, help="Keep builds here (and reuse its quantized "
                    "models) instead of a temporary directory.")
    args = ap.parse_args(argv)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            rows += measure(name, work, tuple(args.runtimes))
    lines = table(rows)
    print(f"{BOARD} (QEMU, -O2): exact instructions from the TCG plugin; cycles are estimates "
          "(Cortex-M4 TRM timing model, zero-wait-state memory); ms at 120 MHz = est. cycles / "
          f"120e6; L4R5 ms adds {REFERENCE_BOARD}'s flash wait states and caches at 120 MHz")
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0 if all(r.bit_exact is not False and r.error is None for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
