"""Bring your own model (issue 13): model kinds users have, through `edgeq build --target
cortex-m4` to a bit-exact run in QEMU (the device's outputs compared with TFLite Micro's)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq.cli import cli
from edgeq.tflite import read_tflite

FREQS = (3.0, 7.0, 13.0)  # one class per tone frequency (cycles per window)
WINDOW = 128


def _run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(cli, args)
    return res.exit_code, res.output


def _report(output: str) -> dict:
    return json.loads(output[output.index("{"):])


def tones_dataset(path: Path, n: int = 300, seed: int = 0) -> Path:
    """Raw 'audio' windows: a noisy tone per class, random phase and amplitude."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(FREQS), n)
    t = np.arange(WINDOW) / WINDOW
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    amp = rng.uniform(0.5, 1.0, n)[:, None]
    x = amp * np.sin(2 * np.pi * np.array(FREQS)[y][:, None] * t + phase)
    x = (x + 0.1 * rng.standard_normal((n, WINDOW))).astype(np.float32)
    np.savez(path, x=x, y=y.astype(np.int64))
    return path


@pytest.fixture(scope="module")
def tfkeras_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tf-keras Conv1D over raw samples, with Reshape in and out (the issue's SHAPE/PACK case)."""
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("tfk_audio")
    data = tones_dataset(folder / "tones.npz")
    with np.load(data) as npz:
        x, y = npz["x"], npz["y"]
    model = keras.Sequential(
        [
            keras.Input((WINDOW,)),
            keras.layers.Reshape((WINDOW, 1)),
            keras.layers.Conv1D(8, 9, strides=4, activation="relu"),
            keras.layers.Reshape((30 * 8,)),
            keras.layers.Dense(len(FREQS), activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    model.save(folder / "audio1d.h5", include_optimizer=False)
    (folder / "audio1d.edgeq.json").write_text(
        json.dumps({"dataset": str(data), "task": "classification"})
    )
    return folder / "audio1d.h5"


@pytest.mark.slow
def test_tfkeras_conv1d_with_reshape_bit_exact_in_qemu(tfkeras_audio: Path) -> None:
    out = tfkeras_audio.parent / "build"
    code, output = _run(
        ["build", str(tfkeras_audio), "--target", "cortex-m4", "-o", str(out), "--samples", "30",
         "--json"]
    )
    assert code == 0, output
    r = _report(output)
    ops = [op.opcode for op in read_tflite(out / "model_int8.tflite").operators]
    # batch 1: the Reshapes stay RESHAPE, no SHAPE/STRIDED_SLICE/PACK computing the batch
    assert not {"SHAPE", "PACK", "STRIDED_SLICE"} & set(ops), ops
    assert "CONV_2D" in ops and ops.count("RESHAPE") >= 2
    assert r["device"]["validation"]["samples"] == 30 and r["device"]["validation"]["bit_exact"]
    assert r["accuracy"]["float"] > 0.8
