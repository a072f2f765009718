"""edgeq.quantize.ptq: every mode gives the tensor types it promises (read back with edgeq.tflite),
per-channel vs per-tensor weights, Keras 3 conversion, the range hook, and the file-level job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeq.data import Normalization, load_dataset, representative_dataset
from edgeq.errors import QuantizeError
from edgeq.quantize.ptq import check_mode, convert_ptq, is_mcu_target, quantize_model
from edgeq.tflite import TfliteModel, load_model_t, read_tflite_bytes, serialize_model_t
from edgeq.toolchain.boards import board_names

REPO = Path(__file__).resolve().parents[2]
DIGITS_H5 = REPO / "models" / "digits_cnn" / "digits_cnn.h5"
WEIGHTED_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}  # op -> channel axis


@pytest.fixture(scope="module")
def digits() -> tuple[Any, Any]:
    from edgeq.models import load_model

    loaded = load_model(DIGITS_H5)
    ds = load_dataset("digits")
    rep = representative_dataset(
        ds.x_train,
        input_shape=loaded.input_shape,
        normalization=Normalization.from_meta(loaded.meta),
        num_samples=64,
    )
    return loaded.model, rep


@pytest.fixture(scope="module")
def int8_model(digits: tuple[Any, Any]) -> TfliteModel:
    model, rep = digits
    return read_tflite_bytes(convert_ptq(model, rep, mode="int8"))


def _activation_types(info: TfliteModel) -> set[str]:
    return {info.tensors[o].dtype for op in info.operators for o in op.outputs}


def _weights(info: TfliteModel) -> list[tuple[str, Any]]:
    return [
        (op.opcode, info.tensors[op.inputs[1]])
        for op in info.operators
        if op.opcode in WEIGHTED_OPS
    ]


def test_int8_is_full_integer_with_int8_io(int8_model: TfliteModel) -> None:
    info = int8_model
    assert [t.dtype for t in info.input_tensors] == ["int8"]
    assert [t.dtype for t in info.output_tensors] == ["int8"]
    assert _activation_types(info) == {"int8"}
    assert "QUANTIZE" not in info.op_names and "DEQUANTIZE" not in info.op_names
    for opcode, w in _weights(info):
        assert w.dtype == "int8" and np.all(w.quant.zero_point == 0), opcode  # symmetric
    biases = [info.tensors[op.inputs[2]] for op in info.operators if op.opcode in WEIGHTED_OPS]
    assert {b.dtype for b in biases} == {"int32"}


def test_int8_weights_are_per_channel_by_default(int8_model: TfliteModel) -> None:
    for opcode, w in _weights(int8_model):
        axis = WEIGHTED_OPS[opcode]
        assert w.quant.per_channel and w.quant.axis == axis, opcode
        assert w.quant.scale.size == w.shape[axis], opcode


def test_per_tensor_weights(digits: tuple[Any, Any]) -> None:
    model, rep = digits
    info = read_tflite_bytes(convert_ptq(model, rep, mode="int8", per_channel=False))
    weights = _weights(info)
    assert len(weights) == 4
    for opcode, w in weights:
        assert w.dtype == "int8" and w.quant.scale.size == 1, opcode


def test_int8_with_float_io(digits: tuple[Any, Any]) -> None:
    model, rep = digits
    info = read_tflite_bytes(convert_ptq(model, rep, mode="int8", io_dtype="float32"))
    assert info.input_tensors[0].dtype == "float32" and info.output_tensors[0].dtype == "float32"
    assert info.operators[0].opcode == "QUANTIZE" and info.operators[-1].opcode == "DEQUANTIZE"
    inner = {info.tensors[o].dtype for op in info.operators[:-1] for o in op.outputs}
    assert inner == {"int8"}


def test_int16x8_has_int16_activations_and_int8_weights(digits: tuple[Any, Any]) -> None:
    model, rep = digits
    info = read_tflite_bytes(convert_ptq(model, rep, mode="int16x8"))
    assert info.input_tensors[0].dtype == "int16" and info.output_tensors[0].dtype == "int16"
    assert _activation_types(info) == {"int16"}
    assert {w.dtype for _, w in _weights(info)} == {"int8"}
    assert all(np.all(info.input_tensors[0].quant.zero_point == 0) for _ in [0])  # symmetric


def test_dynamic_range_quantizes_weights_only() -> None:
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(0)
    # TFLite leaves weight tensors under 1024 values in float: use a 32x48 (1536) Dense
    model = keras.Sequential(
        [keras.Input((32,)), keras.layers.Dense(48, activation="relu"), keras.layers.Dense(4)]
    )
    info = read_tflite_bytes(convert_ptq(model, None, mode="dynamic"))
    assert info.input_tensors[0].dtype == "float32" and info.output_tensors[0].dtype == "float32"
    weights = dict((w.shape, w.dtype) for _, w in _weights(info))
    assert weights == {(48, 32): "int8", (4, 48): "float32"}
    assert _activation_types(info) == {"float32"}  # hybrid: activations stay float


def test_float16_stores_float16_weights(digits: tuple[Any, Any]) -> None:
    model, _ = digits
    info = read_tflite_bytes(convert_ptq(model, None, mode="float16"))
    assert info.input_tensors[0].dtype == "float32"
    assert {t.dtype for t in info.tensors if t.is_constant} >= {"float16"}
    assert "DEQUANTIZE" in info.op_names
    assert "int8" not in {t.dtype for t in info.tensors}


def test_keras3_model_converts() -> None:
    from edgeq.tfenv import import_keras3

    keras = import_keras3()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="softmax"),
        ]
    )
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32)
    rep = representative_dataset(x, input_shape=(None, 8, 8, 1), num_samples=16)
    info = read_tflite_bytes(convert_ptq(model, rep, mode="int8"))
    assert info.input_tensors[0].shape == (1, 8, 8, 1) and info.input_tensors[0].dtype == "int8"
    assert info.op_names[:1] == ["CONV_2D"] and "FULLY_CONNECTED" in info.op_names


def _widen_input_range(calibrated: bytes) -> bytes:
    model_t = load_model_t(calibrated)
    sg = model_t.subgraphs[0]
    q = sg.tensors[sg.inputs[0]].quantization
    q.min, q.max = [-2.0], [2.0]
    return serialize_model_t(model_t)


def test_range_hook_edits_calibrated_ranges(
    digits: tuple[Any, Any], int8_model: TfliteModel
) -> None:
    model, rep = digits
    seen: list[int] = []

    def identity(calibrated: bytes) -> bytes:
        seen.append(len(calibrated))
        return calibrated

    same = read_tflite_bytes(convert_ptq(model, rep, range_hook=identity))
    assert len(seen) == 1
    # the two-step path reproduces the one-step converter tensor for tensor
    for a, b in zip(same.tensors, int8_model.tensors, strict=True):
        assert (a.name, a.dtype, a.shape) == (b.name, b.dtype, b.shape)
        if a.quant is not None:
            np.testing.assert_array_equal(a.quant.scale, b.quant.scale)
    widened = read_tflite_bytes(convert_ptq(model, rep, range_hook=_widen_input_range))
    assert widened.input_tensors[0].quant.scale[0] == pytest.approx(4.0 / 255.0)
    assert int8_model.input_tensors[0].quant.scale[0] == pytest.approx(1.0 / 255.0)


def test_mode_checks() -> None:
    assert check_mode("int8") == "int8" and check_mode("int16x8") == "int16"
    assert check_mode("dynamic") == "float32"
    with pytest.raises(QuantizeError, match="unknown quantization mode 'int4'"):
        check_mode("int4")
    with pytest.raises(QuantizeError, match="TFLite Micro rejects float16"):
        check_mode("float16", target="cortex-m4")
    with pytest.raises(QuantizeError, match="TFLite Micro rejects hybrid"):
        check_mode("dynamic", target="mcu")
    assert check_mode("float16", target="phone") == "float32"
    with pytest.raises(QuantizeError, match="cannot have int8 model I/O"):
        check_mode("int16x8", "int8")
    with pytest.raises(QuantizeError, match="needs calibration data"):
        convert_ptq(object(), None, mode="int8")
    assert is_mcu_target("cortex-m7") and not is_mcu_target("android")
    with pytest.raises(QuantizeError, match="unknown target"):
        is_mcu_target("toaster")
    with pytest.raises(QuantizeError, match="unknown target 'toaster'"):
        check_mode("int8", target="toaster")
    # a board config name, as the caller (the CLI) passes the toolchain's board names
    assert check_mode("int8", target="mps2-an386", board_names=board_names()) == "int8"
    with pytest.raises(QuantizeError, match="unknown target 'mps2-an386'"):
        check_mode("int8", target="mps2-an386")  # quantize itself knows no boards


def test_quantize_model_writes_tflite_sidecar_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "q" / "digits_int8.tflite"
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "digits_int8.json").write_text(json.dumps({"build": {"board": "x"}}))
    r = quantize_model(DIGITS_H5, out, num_samples=32)  # dataset from the sidecar
    assert out.exists() and r["output"]["bytes"] == out.stat().st_size
    doc = json.loads((tmp_path / "q" / "digits_int8.json").read_text())
    assert doc["build"] == {"board": "x"}  # other stages' sections are kept
    q = doc["quantize"]
    assert q["mode"] == "int8" and q["per_channel"] is True and q["io_dtype"] == "int8"
    assert q["calibration"] == {"dataset": "digits", "samples": 32, "seed": 0, "split": "train",
                                "method": "minmax"}
    assert len(q["source"]["sha256"]) == 64
    assert q["inputs"][0]["dtype"] == "int8" and q["inputs"][0]["zero_point"] == -128
    assert q["outputs"][0]["scale"] == pytest.approx(1 / 256)
    assert {"tensorflow", "edgeq"} <= set(q["tool_versions"])
    sidecar = json.loads((tmp_path / "q" / "digits_int8.edgeq.json").read_text())
    assert sidecar["normalization"] == {"mean": [0.0], "std": [16.0]}
    # an already-quantized .tflite is copied, not converted
    again = quantize_model(out, tmp_path / "copy.tflite")
    assert again["quantization_skipped"] and again["mode"] == "int8"
    assert (tmp_path / "copy.tflite").read_bytes() == out.read_bytes()


def test_quantize_model_refuses_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "never.tflite"
    with pytest.raises(QuantizeError, match="phones only"):
        quantize_model(DIGITS_H5, out, mode="float16", target="cortex-m4")
    with pytest.raises(QuantizeError, match="must end in .tflite"):
        quantize_model(DIGITS_H5, tmp_path / "x.bin")
    assert list(tmp_path.iterdir()) == []


def test_keras3_file_through_quantize_and_evaluate(tmp_path: Path) -> None:
    from edgeq.analyze.evaluate import evaluate
    from edgeq.tfenv import import_keras3

    keras = import_keras3()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.DepthwiseConv2D(3, activation="relu6"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.save(tmp_path / "k3.keras")
    (tmp_path / "k3.edgeq.json").write_text(
        json.dumps({"dataset": "digits", "normalization": {"mean": [0.0], "std": [16.0]}})
    )
    r = quantize_model(tmp_path / "k3.keras", tmp_path / "k3_int8.tflite", num_samples=32)
    assert r["source"]["kind"] == "keras3" and r["inputs"][0]["dtype"] == "int8"
    report = evaluate(tmp_path / "k3_int8.tflite", float_model=tmp_path / "k3.keras", limit=50)
    assert report["float_model"].endswith("k3.keras") and 0 <= report["float"]["value"] <= 1
    assert list(report["ops"]) == ["DEPTHWISE_CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    assert report["agreement"]["max_abs_diff"] <= 1
