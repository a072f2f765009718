"""Per-layer instruction counts of the issue-13 edgeq-rt ops on an emulated Cortex-M.

One small tf-keras model that uses RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, SPLIT, SPLIT_V,
UNPACK, PACK, GATHER, SQUARED_DIFFERENCE, RSQRT and BATCH_MATMUL (random weights, calibrated on
random data) -> int8 -> edgeq-rt C -> firmware with per-layer profiling -> QEMU (``-icount
shift=0``: one count per instruction). Prints one row per layer and checks the output against
the TFLite Micro oracle.

    .venv/bin/python benchmarks/more_ops.py [--board mps2-an386] [--portable]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def build_model() -> Any:
    from edgeq.tfenv import import_tf, import_tf_keras

    tf = import_tf()
    keras = import_tf_keras()
    L = keras.layers
    x = keras.Input((12, 16, 8))
    h = L.UpSampling2D(2)(x)  # 24 x 32 x 8, nearest
    h = tf.image.resize(h, (10, 14))  # bilinear
    p, q = tf.split(h, 2, axis=-1)
    t = L.Reshape((140, 4))(tf.math.squared_difference(p, q))
    mean = tf.reduce_mean(t, axis=-1, keepdims=True)
    var = tf.reduce_mean(tf.math.squared_difference(t, mean), axis=-1, keepdims=True)
    t = (t - mean) * tf.math.rsqrt(var + 1e-3)
    a, b = tf.split(t, [40, 100], axis=1)
    t = L.Concatenate(axis=1)([b, a])
    rows = tf.unstack(t[:, :4], axis=1)
    t = L.Concatenate(axis=1)([tf.stack(rows[::-1], axis=1), t])
    t = tf.gather(t, list(range(0, 144, 4)), axis=1)  # 36 tokens
    qk = tf.matmul(L.Dense(16)(t), L.Dense(16)(t), transpose_b=True)  # 36 x 36 x 16
    y = tf.matmul(tf.nn.softmax(qk), L.Dense(8)(t))  # 36 x 8 x 36
    return keras.Model(x, L.Dense(10)(L.Flatten()(y)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="mps2-an386")
    ap.add_argument("--portable", action="store_true", help="build with -DEDGEQ_RT_PORTABLE")
    args = ap.parse_args(argv)

    from edgeq.codegen.edgeq_rt import write_edgeq_rt
    from edgeq.device.qemu import QemuInstance
    from edgeq.device.session import DeviceSession
    from edgeq.oracles import run_tflm
    from edgeq.quantize.ptq import convert_ptq
    from edgeq.tflite import read_tflite
    from edgeq.toolchain.boards import resolve_target
    from edgeq.toolchain.compiler import build_firmware

    board = resolve_target(board=args.board)
    rng = np.random.default_rng(0)
    model = build_model()
    shape = tuple(int(d) for d in model.input_shape[1:])

    def representative():  # noqa: ANN202
        for _ in range(16):
            yield [rng.standard_normal((1, *shape)).astype(np.float32)]

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tflite = work / "more_ops.tflite"
        tflite.write_bytes(convert_ptq(model, representative))
        gen = write_edgeq_rt(tflite, work / "gen", name="more_ops")
        info = read_tflite(tflite)
        t_in = info.input_tensors[0]
        fw = build_firmware(board, work / "gen", work / "fw", profile_layers=True,
                            input_bytes=t_in.nbytes, kernel_sources=gen.kernel_sources,
                            defines=("EDGEQ_RT_PORTABLE",) if args.portable else ())
        x = rng.integers(-128, 128, size=(1, *t_in.shape[1:])).astype(np.int8)
        want = run_tflm(tflite, x)[0]
        with QemuInstance(board.qemu_machine or "", fw.elf) as q:
            s = DeviceSession(q.port, alive=q.check_alive)
            (got,), res = s.infer([x[0].reshape(t_in.shape)], runs=2, warmup=1)
            layers = s.layer_counts()
        unit = res.unit
    print(f"board {board.name} ({'portable' if args.portable else 'DSP'} path), unit: {unit}, "
          f"flash {fw.size.flash} B, arena {gen.arena_bytes} B")
    print(f"{'layer':>5}  {'op':<24} {'kernel':<26} {'count':>10}")
    for layer, count in zip(gen.layers, layers, strict=True):
        print(f"{layer.position:>5}  {layer.op:<24} {layer.function:<26} {count:>10}")
    print(f"total {res.counts[0]} {unit} per inference; "
          f"bit-exact with TFLM: {bool(np.array_equal(got.reshape(-1), want.reshape(-1)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
