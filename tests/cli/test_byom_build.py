"""Bring your own model (issue 13): model kinds users have, through `edgeq build --target
cortex-m4` to a bit-exact run in QEMU (the device's outputs compared with TFLite Micro's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq.cli import cli
from edgeq.tflite import read_tflite, read_tflite_bytes

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


def _audio_model(keras: Any, folder: Path, file_name: str, **save: Any) -> Path:
    """Raw-audio Conv1D with Reshape in and out (the issue's SHAPE/PACK case), trained on tones
    and saved with its sidecar; the same layers whichever Keras builds it."""
    keras.utils.set_random_seed(0)
    data = tones_dataset(folder / "tones.npz")
    with np.load(data) as npz:
        x, y = npz["x"], npz["y"]
    model = keras.Sequential(
        [
            keras.Input((WINDOW,)),
            keras.layers.Reshape((WINDOW, 1)),
            keras.layers.Conv1D(8, 9, strides=4, activation="relu"),
            keras.layers.Reshape((30 * 8,)),
            keras.layers.Dense(16, activation="relu"),  # >= 1024 weights: int8 in a hybrid file
            keras.layers.Dense(len(FREQS), activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    model.save(folder / file_name, **save)
    (folder / "audio1d.edgeq.json").write_text(
        json.dumps({"dataset": str(data), "task": "classification"})
    )
    return folder / file_name


@pytest.fixture(scope="module")
def tfkeras_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgeq.tfenv import import_tf_keras

    return _audio_model(import_tf_keras(), tmp_path_factory.mktemp("tfk_audio"), "audio1d.h5",
                        include_optimizer=False)


@pytest.fixture(scope="module")
def keras3_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgeq.tfenv import import_keras3

    return _audio_model(import_keras3(), tmp_path_factory.mktemp("k3_audio"), "audio1d.keras")


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["tf_keras", "keras3"])
def test_conv1d_with_reshape_bit_exact_in_qemu(flavour: str, request: pytest.FixtureRequest
                                               ) -> None:
    model = request.getfixturevalue("tfkeras_audio" if flavour == "tf_keras" else "keras3_audio")
    out = model.parent / "build"
    code, output = _run(
        ["build", str(model), "--target", "cortex-m4", "-o", str(out), "--samples", "30",
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


def _tflite_from(h5: Path, kind: str) -> Path:
    """A float32 or hybrid (dynamic-range) .tflite as another tool would export it: batch 1
    (``dynamic`` keeps the converter's default dynamic batch)."""
    from edgeq.tfenv import import_tf, import_tf_keras

    tf, keras = import_tf(), import_tf_keras()
    model = keras.models.load_model(h5, compile=False)
    if kind == "dynamic":
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
    else:
        fn = tf.function(lambda x: model(x, training=False))
        concrete = fn.get_concrete_function(tf.TensorSpec([1, WINDOW], tf.float32))
        conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if kind == "hybrid":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    out = h5.with_name(f"audio1d_{kind}.tflite")
    out.write_bytes(conv.convert())
    out.with_name(f"audio1d_{kind}.edgeq.json").write_bytes(
        h5.with_name("audio1d.edgeq.json").read_bytes()
    )
    return out


def _litert_outputs(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    din, dout = interp.get_input_details()[0], interp.get_output_details()[0]
    rows = []
    for s in x:
        interp.set_tensor(din["index"], s[np.newaxis].astype(np.float32))
        interp.invoke()
        rows.append(interp.get_tensor(dout["index"])[0].copy())
    return np.array(rows)


def _litert_constants(model: bytes) -> dict[str, tuple[np.ndarray, dict]]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    out = {}
    for d in interp.get_tensor_details():
        if len(d["shape"]) >= 2:
            try:
                out[d["name"]] = (np.array(interp.get_tensor(d["index"])), d)
            except ValueError:
                continue
    return out


def _check_dequantized_weights_keep_outputs(hybrid: Path) -> None:
    """The hybrid file's int8 weights turned back to float are LiteRT's scale * (q - zp), and
    the float model computes what the hybrid one does."""
    from edgeq.quantize.tflite_ptq import dequantize_weights

    data = hybrid.read_bytes()
    floated = dequantize_weights(data)
    assert "int8" not in {t.dtype for t in read_tflite_bytes(floated).tensors if t.is_constant}
    before, after = _litert_constants(data), _litert_constants(floated)
    checked = 0
    for name, (q, d) in before.items():
        if q.dtype != np.int8:
            continue
        qp = d["quantization_parameters"]
        shape = [1] * q.ndim
        shape[qp["quantized_dimension"]] = -1
        want = (q.astype(np.float32) - qp["zero_points"].reshape(shape)) * qp["scales"].reshape(
            shape
        )
        np.testing.assert_allclose(after[name][0], want, rtol=1e-6)
        checked += 1
    assert checked >= 1
    with np.load(hybrid.with_name("tones.npz")) as npz:
        x = npz["x"][:40]
    diff = np.abs(_litert_outputs(data, x) - _litert_outputs(floated, x)).max()
    assert diff < 0.05, diff


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["float", "hybrid"])
def test_float_and_hybrid_tflite_quantize_and_build_bit_exact(
    tfkeras_audio: Path, kind: str
) -> None:
    src = _tflite_from(tfkeras_audio, kind)
    before = {t.dtype for t in read_tflite(src).tensors if t.is_constant}
    assert ("int8" in before) == (kind == "hybrid")
    if kind == "hybrid":
        _check_dequantized_weights_keep_outputs(src)
    # edgeq quantize: full int8, not a copy; no "phones only" when int8 was asked for
    q = src.with_name(f"q_{kind}.tflite")
    code, output = _run(["quantize", str(src), "-o", str(q), "--mode", "int8",
                         "--target", "cortex-m4"])
    assert code == 0, output
    assert "already quantized" not in output and "phones only" not in output
    model = read_tflite(q)
    assert {t.dtype for t in model.input_tensors + model.output_tensors} == {"int8"}
    act = {model.tensors[o].dtype for op in model.operators for o in op.outputs}
    assert "float32" not in act, act
    # and through build, bit-exact against TFLite Micro on the emulated board
    out = src.with_name(f"build_{kind}")
    code, output = _run(["build", str(src), "--target", "cortex-m4", "-o", str(out),
                         "--samples", "30", "--json"])
    assert code == 0, output
    r = _report(output)
    assert r["device"]["validation"]["samples"] == 30 and r["device"]["validation"]["bit_exact"]
    assert r["accuracy"]["int8_host"] > 0.8


def test_dynamic_batch_float_tflite_is_a_one_line_error(tfkeras_audio: Path) -> None:
    src = _tflite_from(tfkeras_audio, "dynamic")
    q = src.with_name("q_dynamic.tflite")
    code, output = _run(["quantize", str(src), "-o", str(q), "--mode", "int8"])
    assert code == 1 and not q.exists(), output
    last = output.strip().splitlines()[-1]
    assert last.startswith("edgeq: error:") and "re-export it with batch 1" in last, output


# ----------------------------------------------------------- no labelled data needed to build


def test_generated_inputs_span_the_input_range(shared_models: Path) -> None:
    from edgeq.quantize.numerics import generated_test_inputs

    model = shared_models / "tflm" / "person_detect.tflite"
    x = generated_test_inputs(model, 20)
    in_t = read_tflite(model).input_tensors[0]
    assert x.dtype == np.int8 and x.shape == (20, *in_t.shape[1:])
    assert (x[0] == -128).all() and (x[1] == 127).all()
    assert (x[2] == int(in_t.quant.zero_point[0])).all()
    assert x[3:].min() == -128 and x[3:].max() == 127 and len(np.unique(x[3:])) == 256
    assert np.array_equal(x, generated_test_inputs(model, 20)), "seeded: same vectors every run"


@pytest.mark.slow
def test_build_int8_tflite_without_any_data(
    shared_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model-zoo int8 file, no sidecar, no --data: built, run and checked bit-exact; then
    `run` and `bench` without --build-dir use that build (the last one for the board)."""
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "hello.tflite"
    src.write_bytes((shared_models / "tflm" / "hello_world_int8.tflite").read_bytes())
    code, output = _run(["build", str(src), "--target", "cortex-m4", "-o",
                         str(tmp_path / "elsewhere"), "--samples", "20"])
    assert code == 0, output
    assert "no labelled data: checking bit-exactness on 20 generated inputs" in output
    assert "on-device check: 20 samples (generated across the input range), every output " \
           "byte equal to the TFLM reference" in output
    assert "accuracy: not measured" in output

    from edgeq.oracles import run_tflm

    x = np.full((1, 1), 37, np.int8)
    np.save(tmp_path / "x.npy", x[0])
    code, output = _run(["run", str(tmp_path / "x.npy"), "--emulator", "--json"])
    assert code == 0, output
    want = run_tflm(tmp_path / "elsewhere" / "model_int8.tflite", x)[0][0].reshape(-1)
    assert _report(output)["output"] == want.tolist()
    code, output = _run(["bench", "--emulator", "--runs", "2", "--json"])
    assert code == 0 and _report(output)["latency"]["median"] > 0, output


def test_data_random_on_float_tflite_and_unknown_task_are_one_line_errors(
    tfkeras_audio: Path, tmp_path: Path
) -> None:
    src = _tflite_from(tfkeras_audio, "float")
    code, output = _run(["build", str(src), "--target", "cortex-m4", "--data", "random",
                         "-o", str(tmp_path / "b")])
    assert code == 1 and "needs real calibration data, not --data random" in output, output
    bad = tmp_path / "m.tflite"
    bad.write_bytes(src.read_bytes())
    (tmp_path / "m.edgeq.json").write_text(json.dumps({"task": "segmentaton"}))
    code, output = _run(["quantize", str(bad), "-o", str(tmp_path / "q.tflite")])
    last = output.strip().splitlines()[-1]
    assert code == 1 and last.startswith("edgeq: error:"), output
    assert ("unknown task 'segmentaton'; allowed: classification, regression, segmentation, "
            "anomaly, autoencoder, reconstruction, none") in last


def test_failed_build_leaves_no_partial_build_directory(shared_models: Path,
                                                        tmp_path: Path) -> None:
    """edgeq-rt refuses the SVDF after quantize wrote model_int8.tflite and the manifest."""
    src = tmp_path / "svdf.tflite"
    src.write_bytes((shared_models / "tflm" / "keyword_scrambled_8bit.tflite").read_bytes())
    out = tmp_path / "b"
    code, output = _run(["build", str(src), "--target", "cortex-m4", "-o", str(out)])
    assert code == 1 and "edgeq-rt cannot compile" in output, output
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    out.mkdir()  # a directory that existed before is the user's: left in place
    (out / "keep.txt").write_text("x")
    code, _ = _run(["build", str(src), "--target", "cortex-m4", "-o", str(out)])
    assert code == 1 and (out / "keep.txt").is_file()
