"""edgeq-rt memory vs TFLite Micro, per model: RAM arena and flash.

For each model: the edgeq-rt arena (static plan from tensor lifetimes), TFLM's minimum arena
(bisection with the real ``tflite_micro`` interpreter; it also holds TFLM's own tensor and
node bookkeeping, which edgeq-rt does not need at run time), and the flash of the generated
``model.c`` (weights + parameters + call list) and of the kernels it links, both compiled with
``arm-none-eabi-gcc -mcpu=cortex-m4 -Os`` and measured with ``arm-none-eabi-size``.

    .venv/bin/python benchmarks/runtime_memory.py [--models a,b] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # helpers_host_harness: compile generated C for sizing
SHARED = REPO.parent / "shared" / "models" / "tflm"
M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-std=c99",
            "-Wall", "-Wextra", "-Werror", "-Os", "-ffunction-sections", "-fdata-sections"]


def _convert_builder(name: str) -> bytes:
    """MLPerf-Tiny-shaped builder, random weights, BN statistics and calibration on noise."""
    from edgeq.models import builders
    from edgeq.quantize.ptq import convert_ptq
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    model = builders.BUILDERS[name](seed=0)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, *shape)).astype(np.float32)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            a = keras.Model(model.inputs, layer.input).predict(x, verbose=0)
            axes = tuple(range(a.ndim - 1))
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta, a.mean(axis=axes), a.var(axis=axes) + 1e-3])

    def rep():  # noqa: ANN202
        for k in range(len(x)):
            yield [x[k : k + 1]]

    return convert_ptq(model, rep, mode="int8")


def _convert_digits() -> bytes:
    from sklearn.datasets import load_digits

    from edgeq.quantize.ptq import convert_ptq
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    model = keras.models.load_model(str(REPO / "models" / "digits_cnn" / "digits_cnn.h5"),
                                    compile=False)
    x = (load_digits().images.astype(np.float32) / 16.0)[..., None]

    def rep():  # noqa: ANN202
        for k in range(0, 400, 4):
            yield [x[k : k + 1]]

    return convert_ptq(model, rep, mode="int8")


SOURCES: dict[str, Callable[[], bytes]] = {
    "hello_world_int8": lambda: (SHARED / "hello_world_int8.tflite").read_bytes(),
    "micro_speech": lambda: (SHARED / "micro_speech_quantized.tflite").read_bytes(),
    "person_detect": lambda: (SHARED / "person_detect.tflite").read_bytes(),
    "digits_cnn": _convert_digits,
    "ds_cnn": lambda: _convert_builder("ds_cnn"),
    "resnet8": lambda: _convert_builder("resnet8"),
    "mobilenet_v1_025": lambda: _convert_builder("mobilenet_v1_025"),
    "fc_autoencoder": lambda: _convert_builder("fc_autoencoder"),
}


def _converted(name: str, work: Path) -> bytes:
    """Run a conversion in a child process: TFLM's arena bisection forks, which must not happen
    in a process that has TensorFlow's threads running."""
    out = work / f"{name}.src.tflite"
    subprocess.run([sys.executable, __file__, "--convert", name, str(out)], check=True)
    return out.read_bytes()


def _size(obj: Path) -> int:
    """Flash of an object: text (code + const data) + data (initialized RAM copy)."""
    out = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True,
                         check=True).stdout.splitlines()[1].split()
    return int(out[0]) + int(out[1])


def measure(name: str, data: bytes, work: Path) -> dict[str, Any]:
    from helpers_host_harness import compile_objects

    from edgeq.codegen.edgeq_rt import write_edgeq_rt
    from edgeq.oracles import tflm_min_arena

    path = work / f"{name}.tflite"
    path.write_bytes(data)
    res = write_edgeq_rt(path, work / name)
    objs = compile_objects(work / name, work / f"{name}_obj", cc="arm-none-eabi-gcc",
                           cflags=M4_FLAGS, sources=res.kernel_sources)
    model_obj = next(o for o in objs if o.name.endswith("_model.o"))
    tflm = tflm_min_arena(data)
    return {
        "model": name,
        "tflite_bytes": len(data),
        "edgeq_arena": res.arena_bytes,
        "tflm_arena": tflm,
        "ratio": round(res.arena_bytes / tflm, 3),
        "model_flash": _size(model_obj),
        "kernels_flash": sum(_size(o) for o in objs if o is not model_obj),
        "weight_bytes": res.weight_bytes,
        "layers": len(res.layers),
        "macs": sum(layer.macs for layer in res.layers),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(SOURCES), help="comma-separated model names")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    ap.add_argument("--convert", nargs=2, metavar=("NAME", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.convert:
        Path(args.convert[1]).write_bytes(SOURCES[args.convert[0]]())
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            rows.append(measure(name, _converted(name, Path(tmp)), Path(tmp)))
            print(f"measured {name}", file=sys.stderr)
    head = ("| model | edgeq-rt arena | TFLM arena | ratio | model.c flash | kernels flash "
            "| weights | layers | MACs |")
    print(head)
    print("|" + "---|" * 9)
    for r in rows:
        print(f"| {r['model']} | {r['edgeq_arena']} | {r['tflm_arena']} | {r['ratio']:.2f} | "
              f"{r['model_flash']} | {r['kernels_flash']} | {r['weight_bytes']} | {r['layers']} "
              f"| {r['macs']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
