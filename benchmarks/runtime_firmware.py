"""The same model as edgeq-rt firmware (`--optimize speed` and `size`) and as TFLite Micro
firmware (`edgeq build --runtime tflm`), on mps2-an386 in QEMU: flash, RAM, arena, exact
instructions per inference and the estimated cycles, each firmware validated bit-exact against
the TFLM interpreter first.

Every row is a full `edgeq build` (the protocol application, drivers and startup are the same in
both; only the model code differs), so the figures are what a user's build reports.

    .venv/bin/python benchmarks/runtime_firmware.py [--models a,b] [--samples 10] [--json out]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "models" / "tflm"
MODELS = {
    "hello_world_int8": SHARED / "hello_world_int8.tflite",
    "micro_speech": SHARED / "micro_speech_quantized.tflite",
    "trained_lstm_int8": SHARED / "trained_lstm_int8.tflite",
    "digits_cnn": REPO / "build" / "digits_cnn-mps2-an386" / "model_int8.tflite",  # `make run`
}
# (label, --runtime, --tflm-kernels, --optimize)
RUNTIMES = (("edgeq-rt", "edgeq", "cmsis-nn", "speed"),
            ("edgeq-rt (size)", "edgeq", "cmsis-nn", "size"),
            ("TFLM + CMSIS-NN", "tflm", "cmsis-nn", "speed"),
            ("TFLM reference", "tflm", "reference", "speed"))


def build_row(name: str, model: Path, label: str, runtime: str, kernels: str, samples: int,
              work: Path, optimize: str = "speed") -> dict[str, Any]:
    from edgeq.errors import EdgeqError
    from edgeq.pipeline import BuildRequest, run_build

    out = work / f"{name}-{runtime}-{kernels}-{optimize}"
    copy = work / f"{name}.tflite"  # no sidecar: checked on generated inputs, no accuracy
    copy.write_bytes(model.read_bytes())
    try:
        r = run_build(BuildRequest(model=str(copy), target="cortex-m4", samples=samples,
                                   out=str(out), runtime=runtime, tflm_kernels=kernels,
                                   data="random", optimize=optimize))
    except EdgeqError as exc:
        return {"model": name, "runtime": label, "error": str(exc).split(";")[0][:90]}
    m, d = r["memory"], r["device"]
    lat = d["latency"]
    return {"model": name, "runtime": label, "flash": m["flash"], "ram": m["ram"],
            "arena": m["arena"], "instructions": lat["median"],
            "cycles": lat["estimate"]["cycles"], "ms": lat["estimate"]["ms"],
            "bit_exact": d["validation"]["bit_exact"], "samples": d["validation"]["samples"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            model = MODELS[name]
            if not model.is_file():
                print(f"{name}: {model} not found (run `make run` for digits_cnn); skipped")
                continue
            for label, runtime, kernels, optimize in RUNTIMES:
                rows.append(build_row(name, model, label, runtime, kernels, args.samples,
                                      Path(tmp), optimize))
    head = (f"{'model':<18} {'runtime':<16} {'flash B':>9} {'RAM B':>8} {'arena B':>8} "
            f"{'instructions':>13} {'est. cycles':>12} {'est. ms@25MHz':>13}  check")
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<18} {r['runtime']:<16} refused: {r['error']}")
            continue
        print(f"{r['model']:<18} {r['runtime']:<16} {r['flash']:>9,} {r['ram']:>8,} "
              f"{r['arena']:>8,} {r['instructions']:>13,.0f} {r['cycles']:>12,} "
              f"{r['ms']:>13.3f}  {'bit-exact' if r['bit_exact'] else 'DIFFERS'} "
              f"({r['samples']} samples)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
