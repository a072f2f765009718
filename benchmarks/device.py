"""Instructions per inference, instructions per MAC, flash and RAM of edgeq-rt firmware in QEMU.

For ``digits_cnn`` (trained, PTQ on the digits set) and the MLPerf-Tiny-shaped builders (random
weights, calibrated on random data): quantize -> edgeq-rt C -> firmware (-O2) -> QEMU with
``-icount shift=0``. Instructions per inference are exact (TCG plugin, edgeq.device.icount), cycles and ms estimated
(edgeq.device.timing);
the firmware's own SysTick count (resolution 1e9/clock_hz instructions) is shown beside them.
Every run is also checked bit-exact against the TFLM oracle on the same input.

    .venv/bin/python benchmarks/device.py [--board mps2-an386] [--models digits_cnn ds_cnn ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = ["digits_cnn", "ds_cnn", "resnet8", "mobilenet_v1_025", "fc_autoencoder"]


def quantize(name: str, out: Path) -> Path:
    from edgeq.quantize.ptq import convert_ptq, quantize_model

    tflite = out / f"{name}_int8.tflite"
    if tflite.exists():  # --keep DIR from an earlier run: same seed, same model
        return tflite
    if name == "digits_cnn":
        quantize_model(REPO / "models" / "digits_cnn" / "digits_cnn.h5", tflite, data="digits")
        return tflite
    from edgeq.models.builders import build

    model = build(name, seed=0)
    shape = tuple(int(d) for d in model.input_shape[1:])
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(16):
            yield [rng.standard_normal((1, *shape)).astype(np.float32)]

    tflite.write_bytes(convert_ptq(model, representative))
    return tflite


def _oracle(tflite: str, x: np.ndarray) -> np.ndarray:
    from edgeq.oracles import run_tflm

    return run_tflm(tflite, x)[0][0]


def oracle_in_child(tflite: Path, x: np.ndarray) -> np.ndarray | None:
    """TFLM output in a child process: a crash of the native interpreter must not end the run."""
    import concurrent.futures
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        try:
            return pool.submit(_oracle, str(tflite), x).result(timeout=600)
        except Exception as exc:  # noqa: BLE001 - report and go on with the next model
            print(f"  TFLM oracle failed on {tflite.name}: {type(exc).__name__}", file=sys.stderr)
            return None


def measure(name: str, board_name: str, work: Path) -> dict[str, object]:
    from edgeq.codegen.edgeq_rt import write_edgeq_rt
    from edgeq.device.icount import PluginCounter
    from edgeq.device.qemu import QemuInstance
    from edgeq.device.session import DeviceSession
    from edgeq.device.timing import estimate
    from edgeq.tflite import read_tflite
    from edgeq.toolchain.boards import resolve_target
    from edgeq.toolchain.compiler import build_firmware

    board = resolve_target(board=board_name)
    tflite = quantize(name, work)
    gen = write_edgeq_rt(tflite, work / f"{name}_rt", name=name)
    info = read_tflite(tflite)
    fw = build_firmware(board, work / f"{name}_rt", work / f"{name}_fw",
                        input_bytes=sum(t.nbytes for t in info.input_tensors),
                        kernel_sources=gen.kernel_sources)
    t_in = info.input_tensors[0]
    rng = np.random.default_rng(1)
    dt = np.dtype(t_in.dtype)
    x = rng.integers(np.iinfo(dt).min, np.iinfo(dt).max + 1, size=(1, *t_in.shape[1:]),
                     dtype=dt)
    want = oracle_in_child(tflite, x)
    counter = PluginCounter(board, fw.elf, work / f"{name}_plugin")
    with QemuInstance(board.qemu_machine or "", fw.elf, extra_args=counter.args) as q:
        s = DeviceSession(q.port, alive=q.check_alive)
        (got,), res = s.infer([x[0].reshape(t_in.shape)], runs=3, warmup=1)
    windows = counter.windows()
    exact = [w.total.insns for w in windows]
    macs = sum(layer.macs for layer in gen.layers
               if layer.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                               "TRANSPOSE_CONV"))
    instr = exact[0]
    est = estimate(windows[0].total, board)
    return {"model": name, "macs": macs, "instructions": instr, "systick": res.counts[0],
            "cycles": est.cycles, "ms": est.ms,
            "instr_per_mac": instr / macs if macs else float("nan"),
            "flash": fw.size.flash, "ram": fw.size.ram, "arena": gen.arena_bytes,
            "bit_exact": None if want is None else bool(np.array_equal(got.reshape(-1),
                                                                       want.reshape(-1))),
            "stable": len(set(res.counts)) == 1 and len(set(exact)) <= 1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="mps2-an386")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--keep", type=Path, default=None,
                    help="work directory kept between runs (quantized models are reused)")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            print(f"measuring {name} on {args.board} ...", file=sys.stderr)
            rows.append(measure(name, args.board, work))
    print(f"edgeq-rt on {args.board} (QEMU, -O2): exact instructions per inference from the TCG "
          "plugin; SysTick = the firmware's own count (-icount shift=0); cycles and ms are "
          "estimates (Cortex-M timing model) at the board clock; MACs = conv/depthwise/FC")
    head = (f"{'model':<18} {'MACs':>12} {'instructions':>14} {'SysTick':>14} {'instr/MAC':>10} "
            f"{'est. cycles':>12} {'est. ms':>9} "
            f"{'flash B':>10} {'RAM B':>10} {'arena B':>9} {'bit-exact':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:<18} {r['macs']:>12,} {r['instructions']:>14,} {r['systick']:>14,} "
              f"{r['instr_per_mac']:>10.2f} {r['cycles']:>12,} {r['ms']:>9.2f} {r['flash']:>10,} {r['ram']:>10,} {r['arena']:>9,} "
              f"{_verdict(r['bit_exact']):>9}")
    return 0 if all(r["bit_exact"] is not False for r in rows) else 1


def _verdict(v: bool | None) -> str:
    return "n/a" if v is None else ("yes" if v else "NO")


if __name__ == "__main__":
    raise SystemExit(main())
