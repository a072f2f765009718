"""Quantization quality table: every edgeq method against the float model it came from.

Trains (seeded, on bundled ``mnist5k``) a Conv-BN-ReLU / depthwise-separable / GAP / Dense CNN
and a depthwise-heavy MobileNet-style model, then quantizes each with every calibrator,
per-tensor weights with and without cross-layer equalization + bias correction, and (if asked)
mixed precision and compression. Accuracies are percent on edgeq's 1,000-sample mnist5k test
split, run on TFLite Micro's reference kernels (the bit-exact oracle).

    PYTHONPATH=. .venv/bin/python benchmarks/quality.py [--cache DIR] [--only calibration,...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SEED = 0


def mnist_bn_cnn(seed: int = SEED) -> Any:
    """The issue's model: Conv-BN-ReLU, depthwise-separable block, GAP, Dense."""
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((28, 28, 1), name="image")
    x = L.Conv2D(32, 3, padding="same", use_bias=False, name="conv1")(inp)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw2")(x)
    x = L.BatchNormalization(name="bn2")(x)
    x = L.ReLU(name="relu2")(x)
    x = L.Conv2D(64, 1, use_bias=False, name="pw2")(x)
    x = L.BatchNormalization(name="bn3")(x)
    x = L.ReLU(name="relu3")(x)
    x = L.MaxPooling2D(2, name="pool2")(x)
    x = L.Conv2D(64, 3, padding="same", use_bias=False, name="conv3")(x)
    x = L.BatchNormalization(name="bn4")(x)
    x = L.ReLU(name="relu4")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.2, name="drop")(x)
    out = L.Dense(10, activation="softmax", name="logits")(x)
    return keras.Model(inp, out, name="mnist_bn_cnn")


def mnist_dw_net(seed: int = SEED) -> Any:
    """Depthwise-heavy (MobileNetV1-like; ReLU, as CLE needs): the per-tensor case CLE is for."""
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((28, 28, 1), name="image")
    x = L.Conv2D(32, 3, padding="same", use_bias=False, name="conv1")(inp)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(name="relu1")(x)
    for i, (filters, stride) in enumerate([(32, 2), (64, 1), (64, 2), (96, 1)], start=2):
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}d")(x)
        x = L.ReLU(name=f"relu{i}d")(x)
        x = L.Conv2D(filters, 1, use_bias=False, name=f"pw{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}p")(x)
        x = L.ReLU(name=f"relu{i}p")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.2, name="drop")(x)
    out = L.Dense(10, activation="softmax", name="logits")(x)
    return keras.Model(inp, out, name="mnist_dw_net")


MODELS = {"mnist_bn_cnn": mnist_bn_cnn, "mnist_dw_net": mnist_dw_net}
EPOCHS = 30
BATCH = 64


def augmented(x: np.ndarray, rng: np.random.Generator, max_shift: float = 2.0,
              max_degrees: float = 12.0, max_zoom: float = 0.1) -> np.ndarray:
    """Each image rotated, zoomed and shifted a little (bilinear, zero fill): 4,000 samples need it.

    Plain numpy so the benchmark needs nothing beyond the project's dependencies.
    """
    n, h, w = x.shape[:3]
    theta = np.deg2rad(rng.uniform(-max_degrees, max_degrees, n))
    zoom = rng.uniform(1 - max_zoom, 1 + max_zoom, n)
    shift = rng.uniform(-max_shift, max_shift, (n, 2))
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    # inverse map: output pixel -> source pixel (rotate by -theta, divide by zoom, undo shift)
    cos, sin = (np.cos(theta) / zoom)[:, None, None], (np.sin(theta) / zoom)[:, None, None]
    dy, dx = yy[None] - shift[:, 0, None, None], xx[None] - shift[:, 1, None, None]
    sy, sx = cos * dy - sin * dx + cy, sin * dy + cos * dx + cx
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    fy, fx = sy - y0, sx - x0
    img = x.reshape(n, h, w)
    idx = np.arange(n)[:, None, None]
    out = np.zeros((n, h, w), dtype=np.float32)
    for oy, ox, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                        (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yi, xi = y0 + oy, x0 + ox
        ok = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        out += np.where(ok, img[idx, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)], 0) * wgt
    return out.reshape(x.shape)


def train(model: Any, x: np.ndarray, y: np.ndarray, epochs: int = EPOCHS) -> Any:
    """Adam with warm-up + cosine decay on rotated/zoomed/shifted copies, label smoothing, seeded."""
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    per_epoch = int(np.ceil(len(x) / BATCH))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, (epochs - 1) * per_epoch, warmup_target=3e-3, warmup_steps=per_epoch)
    model.compile(keras.optimizers.Adam(schedule),
                  keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  metrics=["accuracy"])
    rng = np.random.default_rng(SEED)
    onehot = np.eye(10, dtype=np.float32)[y]
    for _ in range(epochs):
        model.fit(augmented(x, rng), onehot, epochs=1, batch_size=BATCH, verbose=0)
    return model


def trained(name: str, cache: Path | None) -> tuple[Any, Path]:
    """Train (or load from ``cache``) a model; returns it and the .h5 path with its sidecar."""
    from edgeq.data import load_dataset
    from edgeq.fileio import atomic_write_json
    from edgeq.models import sidecar_path
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    root = cache or Path("build/quality")
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}.h5"
    if path.exists():
        return keras.models.load_model(path), path
    ds = load_dataset("mnist5k")
    t0 = time.time()
    model = train(MODELS[name](), ds.x_train / 255.0, ds.y_train)
    print(f"[{name}] trained {EPOCHS} epochs in {time.time() - t0:.0f} s", file=sys.stderr)
    model.save(path)
    atomic_write_json(sidecar_path(path), {"dataset": "mnist5k", "task": "classification",
                                           "normalization": {"mean": 0.0, "std": 255.0}})
    return model, path


SECTIONS = ("calibration", "per-tensor", "qat", "mixed", "compress")


def _rep(x: np.ndarray) -> Any:
    from edgeq.data.prepare import RepresentativeDataset

    return RepresentativeDataset(x.astype(np.float32))


def rows_for(name: str, model: Any, sections: tuple[str, ...], log: Any) -> list[tuple[str, float]]:
    """(variant, accuracy %) for one model; every quantized accuracy measured on TFLM."""
    from edgeq.analyze.drop import accuracy_on_oracle
    from edgeq.data import load_dataset
    from edgeq.quantize.calibration import convert_calibrated
    from edgeq.quantize.equalize import correct_bias, equalize
    from edgeq.quantize.ptq import convert_ptq

    ds = load_dataset("mnist5k")
    xtr, ytr = (ds.x_train / 255.0).astype(np.float32), ds.y_train
    xte, yte = (ds.x_test / 255.0).astype(np.float32), ds.y_test
    cal = xtr[np.random.default_rng(0).permutation(len(xtr))[:200]]
    f_acc = 100 * float(np.mean(model.predict(xte, verbose=0).argmax(1) == yte))
    rows = [("float", f_acc)]

    def acc(tfl: bytes) -> float:
        a, oracle = accuracy_on_oracle(tfl, xte, yte)
        if oracle != "TFLM":
            log(f"[{name}] TFLM refused a model (int4 FC); measured on {oracle}")
        return 100 * a

    if "calibration" in sections:
        for method in ("minmax", "percentile", "kl", "mse", "auto"):
            t0 = time.time()
            tfl, _ = convert_calibrated(model, cal, method)
            rows.append((f"int8 {method}" + (" (default)" if method == "minmax" else ""),
                         acc(tfl)))
            log(f"[{name}] {method} {time.time() - t0:.0f} s")
        rows.append(("int16x8 min-max", acc(convert_ptq(model, _rep(cal), mode="int16x8"))))
    if "per-tensor" in sections:
        rows.append(("per-tensor min-max", acc(convert_calibrated(model, cal, "minmax",
                                                                  per_channel=False)[0])))
        eq, _ = equalize(model)
        rows.append(("per-tensor + CLE", acc(convert_calibrated(eq, cal, "minmax",
                                                                per_channel=False)[0])))
        bc, _ = correct_bias(equalize(model)[0], cal, per_channel=False)
        rows.append(("per-tensor + CLE + bias corr.",
                     acc(convert_calibrated(bc, cal, "minmax", per_channel=False)[0])))
        bc_only, _ = correct_bias(model, cal, per_channel=False)
        rows.append(("per-tensor + bias corr.",
                     acc(convert_calibrated(bc_only, cal, "minmax", per_channel=False)[0])))
        log(f"[{name}] per-tensor done")
    if "qat" in sections:
        from edgeq.quantize.qat import train_qat

        for rounding in ("nearest", "stochastic"):
            r = train_qat(model, xtr, ytr, epochs=3, rounding=rounding)
            rows.append((f"QAT {rounding}, 3 epochs", acc(r.tflite)))
            log(f"[{name}] QAT {rounding} done")
    if "mixed" in sections:
        from edgeq.errors import QuantizeError
        from edgeq.quantize.mixed import mixed_precision

        # as `edgeq mixed` does: sensitivities on a held-out tenth of the training split,
        # fine-tuning on the rest, the result measured on the test split
        order = np.random.default_rng(0).permutation(len(xtr))
        held, fit = order[: len(order) // 10], order[len(order) // 10:]
        report = None
        for rounding in ("nearest", "adaround"):
            t0 = time.time()
            try:
                r = mixed_precision(model, cal, xte, yte, budget_fraction=0.6,
                                    train=(xtr[fit], ytr[fit]), finetune_epochs=3,
                                    report=report, rounding=rounding,
                                    sensitivity_data=(xtr[held], ytr[held]))
            except QuantizeError as exc:
                log(f"[{name}] mixed 0.6x: {exc}")
                rows.append(("mixed 0.6x: infeasible", float("nan")))
                break
            report = r.report
            ratio = r.solution.weight_bytes / r.int8_weight_bytes
            dw4 = sum(1 for n, p in r.solution.labels.items() if p == "w4a8" and "dw" in n)
            rows.append((f"mixed 0.6x ({ratio:.2f}x, {dw4} int4 depthwise), {rounding}",
                         acc(r.model)))
            log(f"[{name}] mixed {rounding} {time.time() - t0:.0f} s: {r.solution.labels}")
    if "compress" in sections:
        from edgeq.quantize.compress import compress

        for label, kw in (("compress defaults (prune 0.75 + 16 clusters)", {}),
                          ("compress prune only", {"clusters": None}),
                          ("compress --ternary", {"sparsity": 0.0, "grid": "ternary"})):
            t0 = time.time()
            r = compress(model, (xtr, ytr), (xte, yte), **kw)
            epochs = f", {r.epochs_used} epochs" if getattr(r, "epochs_used", None) else ""
            rows.append((label + epochs, acc(r.model)))
            log(f"[{name}] {label} {time.time() - t0:.0f} s")
    return rows


def table(results: dict[str, list[tuple[str, float]]]) -> str:
    lines = []
    for name, rows in results.items():
        f_acc = rows[0][1]
        lines += [f"\n{name} (mnist5k test split, 1,000 samples, TFLM)", "",
                  "| variant | accuracy % | delta pt |", "|---|---|---|"]
        lines += [f"| {v} | {a:.1f} | {a - f_acc:+.1f} |" for v, a in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None, help="Where trained models are kept.")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"Comma-separated subset of {','.join(SECTIONS)}.")
    ap.add_argument("--models", default=",".join(MODELS), help="Comma-separated model names.")
    args = ap.parse_args()
    sections = tuple(s.strip() for s in args.only.split(","))

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = {}
    for name in args.models.split(","):
        model, _ = trained(name, args.cache)
        results[name] = rows_for(name, model, sections, log)
        print(table({name: results[name]}), flush=True)


if __name__ == "__main__":
    main()
