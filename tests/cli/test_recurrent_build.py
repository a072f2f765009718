"""LSTM and GRU models (issue 13) through `edgeq build --target cortex-m4` to a bit-exact run in
QEMU: the tf-keras and the Keras 3 flavour of each. The LSTM becomes TFLite's fused
UNIDIRECTIONAL_SEQUENCE_LSTM (edgeq-rt's eq_sequence_lstm_s8); the GRU is unrolled into plain
ops. Without the static-length preparation a Keras 3 LSTM crashes the converter (SIGSEGV)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq.cli import cli
from edgeq.tflite import read_tflite

FREQS = (2.0, 5.0, 9.0)  # one class per tone frequency (cycles per sequence)
STEPS, FEATURES = 12, 8


def _run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(cli, args)
    return res.exit_code, res.output


def tone_sequences(path: Path, n: int = 240, seed: int = 0) -> Path:
    """(n, STEPS, FEATURES) windows of a noisy tone, one class per frequency."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(FREQS), n)
    t = np.arange(STEPS * FEATURES) / (STEPS * FEATURES)
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    x = np.sin(2 * np.pi * np.array(FREQS)[y][:, None] * t + phase)
    x = (x + 0.1 * rng.standard_normal(x.shape)).astype(np.float32)
    np.savez(path, x=x.reshape(n, STEPS, FEATURES), y=y.astype(np.int64))
    return path


def recurrent_model(folder: Path, flavour: str, layer: str) -> Path:
    """A small trained sequence classifier: one LSTM or GRU layer, then Dense softmax."""
    from edgeq.tfenv import import_keras3, import_tf_keras

    keras = import_keras3() if flavour == "keras3" else import_tf_keras()
    keras.utils.set_random_seed(0)
    data = tone_sequences(folder / "tones.npz")
    with np.load(data) as npz:
        x, y = npz["x"], npz["y"]
    rnn = getattr(keras.layers, layer)
    model = keras.Sequential([
        keras.Input((STEPS, FEATURES)),
        rnn(12),
        keras.layers.Dense(len(FREQS), activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    path = folder / (f"{layer.lower()}.keras" if flavour == "keras3" else f"{layer.lower()}.h5")
    if flavour == "keras3":
        model.save(path)
    else:
        model.save(path, include_optimizer=False)
    path.with_name(f"{layer.lower()}.edgeq.json").write_text(
        json.dumps({"dataset": str(data), "task": "classification"}))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["tf_keras", "keras3"])
@pytest.mark.parametrize("layer", ["LSTM", "GRU"])
def test_recurrent_bit_exact_in_qemu(layer: str, flavour: str, tmp_path: Path) -> None:
    model = recurrent_model(tmp_path, flavour, layer)
    out = tmp_path / "build"
    code, output = _run(["build", str(model), "--target", "cortex-m4", "-o", str(out),
                         "--samples", "20", "--json"])
    assert code == 0, output
    r = json.loads(output[output.index("{"):])
    ops = Counter(op.opcode for op in read_tflite(out / "model_int8.tflite").operators)
    if layer == "LSTM":
        assert ops["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 1, ops
    else:  # unrolled: one recurrent matrix product per step, no loop
        assert "WHILE" not in ops and ops["FULLY_CONNECTED"] >= STEPS, ops
    assert r["device"]["validation"]["samples"] == 20 and r["device"]["validation"]["bit_exact"]
    assert r["accuracy"]["float"] > 0.6


@pytest.mark.slow
def test_third_party_lstm_without_data_bit_exact_in_qemu(shared_models: Path,
                                                          tmp_path: Path) -> None:
    """TFLM's trained_lstm_int8 (28 steps, 20 units), checked on generated inputs."""
    out = tmp_path / "build"
    code, output = _run(["build", str(shared_models / "tflm" / "trained_lstm_int8.tflite"),
                         "--target", "cortex-m4", "-o", str(out), "--samples", "10", "--json"])
    assert code == 0, output
    r = json.loads(output[output.index("{"):])
    assert r["device"]["validation"]["samples"] == 10 and r["device"]["validation"]["bit_exact"]


def test_model_tflm_cannot_run_ends_in_one_line(shared_models: Path, tmp_path: Path) -> None:
    """An LSTM whose cell state is int8 (TFLM's integer LSTM needs int16): edgeq-rt refuses it,
    and so would a TFLite Micro firmware, so the build says that instead of advising one."""
    from edgeq.tflite import load_model_t, serialize_model_t

    mt = load_model_t((shared_models / "tflm" / "trained_lstm_int8.tflite").read_bytes())
    sg = mt.subgraphs[0]
    (lstm,) = [op for op in sg.operators if len(op.inputs) == 24]
    sg.tensors[lstm.inputs[19]].type = 9  # TensorType.INT8
    src = tmp_path / "lstm_cell8.tflite"
    src.write_bytes(serialize_model_t(mt))
    out = tmp_path / "b"
    code, output = _run(["build", str(src), "--target", "cortex-m4", "-o", str(out)])
    last = output.strip().splitlines()[-1]
    assert code == 1 and last.startswith("edgeq: error:"), output
    assert "neither edgeq-rt nor TFLite Micro can run this model" in last
    assert "--runtime tflm" not in output and "Traceback" not in output
    assert not out.exists()
