"""Figures for models that are not one-input classifiers (docs/models.md): each through
`edgeq build --target cortex-m4` in QEMU, with the task's metric, bit-exactness, latency, size.

    PYTHONPATH=. .venv/bin/python benchmarks/byom_multi_io.py [--samples 20] [--epochs 6]

Everything is generated and trained here: two inputs (compare two vectors), a segmentation head
with a second output (Conv2DTranspose; UpSampling2D nearest in Keras 3 and tf-keras, bilinear
in Keras 3), MobileNetV2-0.35
and MobileNetV3Small at 32x32 (weights=None, trained a few epochs on "which colour dominates"
images), a regression and an anomaly model.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner

from edgeq.cli import cli

TFLM_TREE = Path(__file__).resolve().parents[1].parent / "shared" / "third_party" / "tflite-micro"


def _save(model: Any, path: Path, **meta: object) -> Path:
    model.save(path)
    path.with_name(path.stem + ".edgeq.json").write_text(json.dumps(meta))
    return path


def _squares(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(0, 0.2, (n, 16, 16, 1)).astype(np.float32)
    mask = np.zeros((n, 16, 16), np.int64)
    for k in range(n):
        r, c = rng.integers(0, 10, 2)
        x[k, r:r + 6, c:c + 6, 0] += 0.8
        mask[k, r:r + 6, c:c + 6] = 1
    return x, mask


def two_inputs(keras: Any, d: Path, rng: np.random.Generator) -> Path:
    a, b = rng.uniform(0, 1, (300, 12)), rng.uniform(0, 1, (300, 12))
    y = (a.mean(1) > b.mean(1)).astype(np.int64)
    np.savez(d / "pair.npz", x_0=a.astype(np.float32), x_1=b.astype(np.float32), y=y)
    ia, ib = keras.Input((12,), name="a_first"), keras.Input((12,), name="b_second")
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([ia, ib]))
    m = keras.Model([ia, ib], keras.layers.Dense(2, activation="softmax")(h))
    m.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    m.fit([a, b], y, epochs=40, verbose=0)
    return _save(m, d / "pair.keras", dataset="pair.npz", task="classification")


def segmentation(keras: Any, d: Path, rng: np.random.Generator, upsample: str | None,
                 suffix: str) -> Path:
    x, mask = _squares(240, rng)
    np.savez(d / "squares.npz", x=x, y=mask)
    i = keras.Input((16, 16, 1))
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(i)
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(h)
    u = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(h)
    if upsample:
        u = keras.layers.UpSampling2D(2, interpolation=upsample)(u)
    else:
        u = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(u)
    seg = keras.layers.Conv2D(2, 1, activation="softmax")(u)
    side = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    m = keras.Model(i, [seg, side])
    m.compile(keras.optimizers.Adam(0.01), ["sparse_categorical_crossentropy"] * 2)
    m.fit(x, [mask, (mask[:, :, :8].sum((1, 2)) > 18).astype(np.int64)], epochs=30,
          batch_size=32, verbose=0)
    return _save(m, d / f"seg_{upsample or 'transpose'}{suffix}", dataset="squares.npz",
                 task=["segmentation", "none"])


def mobilenet(keras: Any, d: Path, rng: np.random.Generator, kind: str, epochs: int) -> Path:
    n = 300
    y = rng.integers(0, 3, n)
    x = rng.uniform(0, 80, (n, 32, 32, 3)).astype(np.float32)
    x[np.arange(n), :, :, y] += 150  # the class is the dominant colour
    np.savez(d / "colours.npz", x=x, y=y.astype(np.int64))
    if kind == "v2":
        m = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None,
                                           classes=3)
    else:
        m = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None,
                                                classes=3, include_preprocessing=False)
    for layer in m.layers:  # few steps: let the BatchNorm statistics follow them
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.8
    m.compile(keras.optimizers.Adam(0.002), "sparse_categorical_crossentropy", jit_compile=False)
    m.fit((x - 127.5) / 127.5, y, epochs=epochs, batch_size=16, verbose=0)
    return _save(m, d / f"mobilenet_{kind}.keras", dataset="colours.npz", task="classification",
                 normalization={"mean": 127.5, "std": 127.5})


def regression(keras: Any, d: Path, rng: np.random.Generator) -> Path:
    x = rng.uniform(-1, 1, (300, 6)).astype(np.float32)
    y = np.stack([x[:, :3].sum(1), x[:, 3:].mean(1)], axis=1).astype(np.float32)
    np.savez(d / "reg.npz", x=x, y=y)
    m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(2)])
    m.compile(keras.optimizers.Adam(0.02), "mse")
    m.fit(x, y, epochs=40, verbose=0)
    return _save(m, d / "reg.keras", dataset="reg.npz", task="regression")


def anomaly(keras: Any, d: Path, rng: np.random.Generator) -> Path:
    normal = rng.normal(0, 0.3, (300, 8)).astype(np.float32)
    normal[:, 4:] = normal[:, :4]
    odd = rng.normal(0, 0.3, (60, 8)).astype(np.float32)
    np.savez(d / "anom.npz", x=np.concatenate([normal, odd]),
             y=np.r_[np.zeros(300), np.ones(60)].astype(np.int64))
    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(8)])
    m.compile(keras.optimizers.Adam(0.02), "mse")
    m.fit(normal, normal, epochs=40, verbose=0)
    return _save(m, d / "anom.keras", dataset="anom.npz", task="anomaly")


def main() -> None:
    from edgeq.tfenv import import_keras3, import_tf_keras

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=6, help="MobileNet training epochs")
    ap.add_argument("--only", default="", help="Only the rows whose name contains this text")
    args = ap.parse_args()
    k3, tfk = import_keras3(), import_tf_keras()
    k3.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        makers = {
            "two inputs (Dense)": lambda: two_inputs(k3, d, rng),
            "two outputs, Conv2DTranspose": lambda: segmentation(k3, d, rng, None, ".keras"),
            "two outputs, UpSampling2D (Keras 3)": lambda: segmentation(k3, d, rng, "nearest",
                                                                        ".keras"),
            "two outputs, UpSampling2D bilinear (Keras 3)": lambda: segmentation(
                k3, d, rng, "bilinear", ".keras"),
            "two outputs, UpSampling2D (tf-keras)": lambda: segmentation(tfk, d, rng, "nearest",
                                                                         ".h5"),
            "two outputs, UpSampling2D (tf-keras), --runtime tflm": lambda: segmentation(
                tfk, d, rng, "nearest", ".h5"),
            "MobileNetV2-0.35 32x32": lambda: mobilenet(k3, d, rng, "v2", args.epochs),
            "MobileNetV3Small 32x32": lambda: mobilenet(k3, d, rng, "v3", args.epochs),
            "regression (Dense)": lambda: regression(k3, d, rng),
            "anomaly autoencoder (Dense)": lambda: anomaly(k3, d, rng),
        }
        for name, make in makers.items():
            if args.only not in name:
                continue
            path = make()
            runtime = (["--runtime", "tflm", "--tflm-dir", str(TFLM_TREE)]
                       if "--runtime tflm" in name else [])
            res = CliRunner().invoke(cli, ["build", str(path), "--target", "cortex-m4", "-o",
                                           str(d / f"b_{path.stem}{len(runtime)}"), "--samples",
                                           str(args.samples), "--json", *runtime])
            if res.exit_code != 0:
                last = res.output.strip().splitlines()[-1]
                why = json.loads(last)["error"] if last.startswith("{") else last
                print(f"{name:<38} refused: {why}", flush=True)
                continue
            r = json.loads(res.output[res.output.index("{"):])
            acc, dev, mem = r["accuracy"], r["device"], r["memory"]
            pct = acc.get("percent", True)

            def fmt(v: Any, pct: bool = pct) -> str:
                return "-" if v is None else f"{100 * v:.1f}%" if pct else f"{v:.4g}"

            print(f"{name:<38} {acc['metric']}: float {fmt(acc.get('float'))}, int8 host "
                  f"{fmt(acc.get('int8_host'))} ({acc.get('host_samples')}), device "
                  f"{fmt(acc.get('int8_device'))} ({acc.get('device_samples')}); bit-exact "
                  f"{dev['validation']['bit_exact']} on {dev['validation']['samples']} "
                  f"({dev['validation']['inputs_per_sample']} in, "
                  f"{dev['validation']['outputs_per_sample']} out); "
                  f"{dev['latency']['median']:,.0f} {dev['latency']['unit']}; "
                  f"flash {mem['flash']:,} B, RAM {mem['ram']:,} B", flush=True)


if __name__ == "__main__":
    main()
