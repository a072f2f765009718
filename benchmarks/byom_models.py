"""Bring-your-own-model figures: each model kind of docs/models.md through `edgeq build
--target cortex-m4` in QEMU, with accuracy, bit-exactness, latency and size.

    PYTHONPATH=. .venv/bin/python benchmarks/byom_models.py [--samples 50]

Models are small and trained here in seconds on a generated tone dataset (raw 'audio' windows,
three classes); the int8 zoo file comes from ../shared/models when present.
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

WINDOW, FREQS = 128, (3.0, 7.0, 13.0)
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "tflm"


def tones(path: Path, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, len(FREQS), n)
    t = np.arange(WINDOW) / WINDOW
    x = rng.uniform(0.5, 1.0, n)[:, None] * np.sin(
        2 * np.pi * np.array(FREQS)[y][:, None] * t + rng.uniform(0, 2 * np.pi, n)[:, None]
    )
    x = (x + 0.1 * rng.standard_normal((n, WINDOW))).astype(np.float32)
    np.savez(path, x=x, y=y)
    return x, y


def conv1d(keras: Any) -> Any:
    return keras.Sequential([
        keras.Input((WINDOW,)), keras.layers.Reshape((WINDOW, 1)),
        keras.layers.Conv1D(8, 9, strides=4, activation="relu"), keras.layers.Reshape((240,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(len(FREQS), activation="softmax"),
    ])


def make_models(d: Path) -> dict[str, Path]:
    from edgeq.tfenv import import_keras3, import_tf, import_tf_keras

    x, y = tones(d / "tones.npz")
    sidecar = json.dumps({"dataset": str(d / "tones.npz")})
    out = {}
    for name, keras, suffix in (("tf-keras Conv1D + Reshape", import_tf_keras(), ".h5"),
                                ("Keras 3 Conv1D + Reshape", import_keras3(), ".keras")):
        keras.utils.set_random_seed(0)
        m = conv1d(keras)
        m.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        m.fit(x, y, epochs=5, batch_size=32, verbose=0)
        p = d / f"m{len(out)}{suffix}"
        m.save(p)
        p.with_name(p.stem + ".edgeq.json").write_text(sidecar)
        out[name] = p
        if suffix == ".h5":
            tf = import_tf()
            fn = tf.function(lambda v, m=m: m(v, training=False))
            cf = fn.get_concrete_function(tf.TensorSpec([1, WINDOW], tf.float32))
            for kind, opt in (("float32 .tflite", False), ("hybrid .tflite", True)):
                conv = tf.lite.TFLiteConverter.from_concrete_functions([cf], m)
                if opt:
                    conv.optimizations = [tf.lite.Optimize.DEFAULT]
                t = d / f"{kind.split()[0]}.tflite"
                t.write_bytes(conv.convert())
                t.with_name(t.stem + ".edgeq.json").write_text(sidecar)
                out[kind] = t
    if (SHARED / "hello_world_int8.tflite").is_file():
        out["int8 zoo .tflite, no data"] = SHARED / "hello_world_int8.tflite"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=50)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for name, path in make_models(d).items():
            res = CliRunner().invoke(cli, ["build", str(path), "--target", "cortex-m4", "-o",
                                           str(d / f"b{len(rows)}"), "--samples",
                                           str(args.samples), "--json"])
            if res.exit_code != 0:
                rows.append((name, "error: " + res.output.strip().splitlines()[-1]))
                continue
            r = json.loads(res.output[res.output.index("{"):])
            acc, dev, mem = r["accuracy"], r["device"], r["memory"]

            def pct(v: Any) -> str:
                return "-" if v is None else f"{100 * v:.1f}%"

            rows.append((name, f"float {pct(acc.get('float'))}, int8 host "
                               f"{pct(acc.get('int8_host'))}, device {pct(acc.get('int8_device'))}"
                               f"; bit-exact {dev['validation']['bit_exact']} on "
                               f"{dev['validation']['samples']}; "
                               f"{dev['latency']['median']:,.0f} {dev['latency']['unit']}; "
                               f"flash {mem['flash']:,} B, RAM {mem['ram']:,} B"))
    for name, text in rows:
        print(f"{name:<28} {text}")


if __name__ == "__main__":
    main()
