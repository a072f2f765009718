"""Calibrator comparison: model x calibrator -> int8 accuracy, output SQNR, softmax KL.

Models are trained here for a few seconds on bundled data: ``digits_cnn`` on digits,
``mnist_cnn`` on mnist5k, and the MLPerf-Tiny ResNet-8 shape on mnist5k padded to 32x32x3.
Every int8 model is full-integer with the calibrator's ranges verified in the .tflite; figures
come from the LiteRT reference kernels on the test split.

    .venv/bin/python benchmarks/calibration.py [--limit 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

CALIBRATORS = ("minmax", "percentile:99.99", "percentile:99.9", "kl", "mse")


def _digits() -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from edgeq.data import load_dataset
    from edgeq.models.builders import digits_cnn

    ds = load_dataset("digits")
    return digits_cnn(0), ds.x_train / 16.0, ds.y_train, ds.x_test / 16.0, ds.y_test


def _mnist() -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from edgeq.data import load_dataset
    from edgeq.models.builders import mnist_cnn

    ds = load_dataset("mnist5k")
    return mnist_cnn(0), ds.x_train / 255.0, ds.y_train, ds.x_test / 255.0, ds.y_test


def _resnet8_mnist() -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from edgeq.data import load_dataset
    from edgeq.models.builders import resnet8

    ds = load_dataset("mnist5k")

    def to32(x: np.ndarray) -> np.ndarray:
        x = np.pad(x / 255.0, ((0, 0), (2, 2), (2, 2), (0, 0)))
        return np.repeat(x, 3, axis=-1).astype(np.float32)

    return resnet8(0), to32(ds.x_train), ds.y_train, to32(ds.x_test), ds.y_test


MODELS = {"digits_cnn": (_digits, 20), "mnist_cnn": (_mnist, 12), "resnet8": (_resnet8_mnist, 2)}


def run(limit: int) -> list[dict[str, Any]]:
    from edgeq.analyze.layers import analyze
    from edgeq.quantize.calibration import convert_calibrated

    rows = []
    for name, (make, epochs) in MODELS.items():
        model, xtr, ytr, xte, yte = make()
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        t0 = time.time()
        model.fit(xtr, ytr, epochs=epochs, batch_size=32, verbose=0)
        print(f"[{name}] trained {epochs} epochs in {time.time() - t0:.0f} s", file=sys.stderr)
        for cal in CALIBRATORS:
            tfl, _ = convert_calibrated(model, xtr[:200], cal)
            a = analyze(tfl, model, xte[:limit], yte[:limit], max_samples=limit)
            m = a.model
            rows.append({"model": name, "calibrator": cal, "float_accuracy": m.float_accuracy,
                         "int8_accuracy": m.int8_accuracy, "output_sqnr_db": m.output_sqnr_db,
                         "kl": m.kl_softmax, "top1_agreement": m.top1_agreement,
                         "samples": m.samples})
            print(f"[{name}] {cal} done", file=sys.stderr)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'model':<11} {'calibrator':<17} {'float acc':>9} {'int8 acc':>9} "
            f"{'out SQNR dB':>11} {'KL':>8} {'top-1 agr':>9}")
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(f"{r['model']:<11} {r['calibrator']:<17} {100 * r['float_accuracy']:>8.2f}% "
                   f"{100 * r['int8_accuracy']:>8.2f}% {r['output_sqnr_db']:>11.1f} "
                   f"{r['kl']:>8.4f} {100 * r['top1_agreement']:>8.1f}%")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=500, help="test samples per model")
    ap.add_argument("--json", type=str, default=None, help="also write the rows as JSON")
    args = ap.parse_args()
    rows = run(args.limit)
    print(table(rows))
    if args.json:
        from edgeq.fileio import atomic_write_json

        atomic_write_json(args.json, rows)


if __name__ == "__main__":
    main()
