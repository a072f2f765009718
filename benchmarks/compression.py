"""Size vs accuracy of mixed precision and weight compression, measured on built firmware.

For ``digits_cnn`` (the repo's trained model) and the ``mnist5k`` CNN (trained here, seeded):
float, all-int8, mixed int4/int8 at three budgets, pruned+clustered, ternary. Each quantized
variant is lowered to edgeq-rt (LUT-coded weights where they pay off, int4 through the same
kernels), compiled for ``mps2-an386`` with arm-none-eabi-gcc, and run in QEMU: the table shows
accuracy (LiteRT reference kernels on the whole test split), firmware flash (``size -A``), the
weight bytes *in the ELF* (sizes of the weight/bias/LUT symbols), the arena, instructions per
inference (QEMU, ``-icount``) and whether the firmware's outputs matched the oracle byte for byte.

Run: ``.venv/bin/python benchmarks/compression.py [--models digits_cnn,mnist_cnn] [--json F]``
(about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgeq.errors import EdgeqError  # noqa: E402

BOARD = "mps2-an386"
WEIGHT_SYMBOL = re.compile(r"^(tensor\d+|op\d+_lut_\w+)$")


def setup(name: str) -> Any:
    """(TrainSetup, float accuracy) for one benchmark model."""
    from edgeq.data import Normalization, load_dataset, prepare_inputs
    from edgeq.quantize.compress import keras_accuracy
    from edgeq.quantize.trainset import TrainSetup, load_setup
    from edgeq.tfenv import import_tf_keras

    if name == "digits_cnn":
        s = load_setup(REPO / "models" / "digits_cnn" / "digits_cnn.h5")
    elif name == "mnist_cnn":
        keras = import_tf_keras()
        from edgeq.models.builders import mnist_cnn

        ds = load_dataset("mnist5k")
        model = mnist_cnn(seed=0)
        norm = Normalization(mean=(0.0,), std=(255.0,))
        x_train = prepare_inputs(ds.x_train, model.input_shape, norm)
        x_test = prepare_inputs(ds.x_test, model.input_shape, norm)
        model.compile(optimizer=keras.optimizers.Adam(0.01),
                      loss="sparse_categorical_crossentropy")
        model.fit(x_train, ds.y_train, epochs=15, batch_size=64, verbose=0)
        s = TrainSetup(model, "mnist_cnn", x_train, ds.y_train, x_test, ds.y_test)
    else:
        raise SystemExit(f"unknown model {name}; use digits_cnn or mnist_cnn")
    return s, keras_accuracy(s.model, s.x_test, s.y_test)


def elf_weight_bytes(elf: Path) -> int:
    """Bytes of weight, bias and LUT arrays in the linked firmware (from its symbol table)."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", "--size-sort", str(elf)], check=True,
                         capture_output=True, text=True).stdout
    total = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and WEIGHT_SYMBOL.match(parts[3]):
            total += int(parts[1], 16)
    return total


def firmware_row(tflite: bytes, x_test: np.ndarray, work: Path, *, coding: str,
                 qemu_samples: int) -> dict[str, Any]:
    """Generate, build and run one variant; flash, ELF weight bytes, arena, instructions."""
    from edgeq.bench.validate import validate_on_device
    from edgeq.codegen.edgeq_rt import write_edgeq_rt
    from edgeq.device.qemu import QemuInstance
    from edgeq.device.session import DeviceSession
    from edgeq.oracles import run_litert_ref, run_tflm, tflm_supports
    from edgeq.quantize.numerics import quantize
    from edgeq.tflite import read_tflite_bytes
    from edgeq.toolchain.boards import resolve_target
    from edgeq.toolchain.compiler import build_firmware

    path = work / "model.tflite"
    path.write_bytes(tflite)
    board = resolve_target(board=BOARD)
    gen = write_edgeq_rt(path, work / "edgeq_rt", name="bench", weight_coding=coding,
                            plan_json=False)
    info = read_tflite_bytes(tflite)
    it = info.input_tensors[0]
    fw = build_firmware(board, work / "edgeq_rt", work / "firmware", input_bytes=it.nbytes,
                        kernel_sources=gen.kernel_sources)
    x = quantize(x_test[:qemu_samples], float(it.quant.scale[0]), int(it.quant.zero_point[0]),
                 it.dtype)
    tflm_ok = tflm_supports(path)[0]
    oracle = "TFLM" if tflm_ok else "LiteRT-ref"
    expected = run_tflm(path, x) if tflm_ok else run_litert_ref(path, x)
    with QemuInstance(board.qemu_machine or "", fw.elf) as q:
        session = DeviceSession(q.port, name="QEMU", alive=q.check_alive)
        session.check_model(gen.model_hash)
        rep = validate_on_device(session, [x], expected)
    lut = sorted({f for f in gen.functions if f.endswith("_lut")})
    return {
        "flash": fw.size.flash,
        "elf_weight_bytes": elf_weight_bytes(fw.elf),
        "arena": gen.arena_bytes,
        "instructions": int(np.median(rep.counts)),
        "unit": rep.unit,
        "bit_exact": rep.bit_exact,
        "max_diff": rep.max_abs_diff,
        "oracle": oracle,
        "lut_kernels": len(lut),
    }


def float_weight_bytes(model: Any) -> int:
    """float32 bytes of the kernels and biases of every Conv/Depthwise/Dense layer."""
    total = 0
    for layer in model.layers:
        if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense"):
            total += sum(int(w.size) * 4 for w in layer.get_weights())
    return total


def bench_model(name: str, fractions: tuple[float, ...], qemu_samples: int,
                epochs: int) -> list[dict[str, Any]]:
    from edgeq.codegen.weight_coding import weight_report
    from edgeq.quantize.compress import compress, int8_model
    from edgeq.quantize.mixed import mixed_precision
    from edgeq.quantize.sensitivity import evaluate, model_probabilities

    s, float_acc = setup(name)
    calib = s.calibration(200)
    f32 = float_weight_bytes(s.model)
    rows: list[dict[str, Any]] = [{"model": name, "variant": "float", "accuracy": float_acc,
                                   "weight_bytes_f32": f32}]

    def measured(variant: str, tfl: bytes, acc: float, coding: str = "int8",
                 **extra: Any) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            fw = firmware_row(tfl, s.x_test, Path(tmp), coding=coding, qemu_samples=qemu_samples)
        rows.append({"model": name, "variant": variant, "accuracy": acc,
                     "ratio_vs_f32": f32 / fw["elf_weight_bytes"], **fw, **extra})
        print(json.dumps(rows[-1]), file=sys.stderr)

    float_probs = s.model.predict(s.x_test, verbose=0, batch_size=256)
    int8 = int8_model(s.model, calib)
    int8_probs = model_probabilities(int8, s.x_test)
    measured("int8", int8, 100.0 * float(np.mean(np.argmax(int8_probs, 1) == s.y_test)))

    report = None
    for f in fractions:
        try:
            r = mixed_precision(s.model, calib, s.x_test, s.y_test, budget_fraction=f,
                                train=(s.x_train, s.y_train), finetune_epochs=3, report=report)
        except EdgeqError as exc:
            rows.append({"model": name, "variant": f"mixed {f:.1f}x", "error": str(exc)})
            continue
        report = r.report
        measured(f"mixed {f:.1f}x", r.model, r.evaluation.accuracy,
                 int8_same_engine=r.int8.accuracy,
                 int8_same_finetuning=(r.int8_finetuned.accuracy
                                       if r.int8_finetuned is not None else None),
                 budget=r.solution.budget_bytes,
                 planned_weight_bytes=r.solution.weight_bytes,
                 precisions=r.solution.labels)
    for variant, kwargs in (("prune0.75+cluster16", {"sparsity": 0.75, "clusters": 16}),
                            ("ternary", {"sparsity": 0.0, "clusters": None, "grid": "ternary"})):
        c = compress(s.model, (s.x_train, s.y_train), (s.x_test, s.y_test),
                     epochs=epochs if variant != "ternary" else epochs + 2, **kwargs)
        twin = evaluate(c.model, s.x_test, s.y_test, float_probs)
        measured(variant, c.model, c.int8_accuracy, coding="lut",
                 huffman_bound_bytes=round(weight_report(c.model).total("huffman_bytes")),
                 compressed_float_accuracy=c.float_accuracy,
                 kl_vs_float=twin.kl)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    head = (f"{'model':<10} {'variant':<20} {'acc%':>6} {'flash B':>8} {'weights B':>9} "
            f"{'x f32':>6} {'arena':>6} {'instr':>8} {'exact':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['model']:<10} {r['variant']:<20} infeasible: {r['error'][:60]}")
            continue
        if r["variant"] == "float":
            lines.append(f"{r['model']:<10} {'float':<20} {r['accuracy']:6.1f} {'-':>8} "
                         f"{r['weight_bytes_f32']:9d} {1.0:6.1f} {'-':>6} {'-':>8} {'-':>6}")
            continue
        lines.append(
            f"{r['model']:<10} {r['variant']:<20} {r['accuracy']:6.1f} {r['flash']:8d} "
            f"{r['elf_weight_bytes']:9d} {r['ratio_vs_f32']:6.1f} {r['arena']:6d} "
            f"{r['instructions']:8d} {('yes' if r['bit_exact'] else 'NO'):>6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="digits_cnn,mnist_cnn")
    ap.add_argument("--fractions", default="0.6,0.7,0.8",
                    help="mixed-precision budgets as fractions of the all-int8 weight bytes")
    ap.add_argument("--qemu-samples", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=8, help="fine-tuning epochs for compression")
    ap.add_argument("--json", type=str, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    fractions = tuple(float(f) for f in args.fractions.split(","))
    rows: list[dict[str, Any]] = []
    for name in args.models.split(","):
        rows += bench_model(name.strip(), fractions, args.qemu_samples, args.epochs)
    print(render(rows))
    if args.json:
        from edgeq.fileio import atomic_write_json

        atomic_write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
