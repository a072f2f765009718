"""edgeq.analyze.evaluate: accuracy float vs int8 on the reference interpreters, and the TFLM vs
LiteRT-reference agreement with its FULLY_CONNECTED explanation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeq.analyze.evaluate import (
    compare_outputs,
    evaluate,
    fc_boundary_tensors,
    render_report,
)
from edgeq.errors import AnalyzeError, DataError
from edgeq.fileio import atomic_write_bytes
from edgeq.oracles import run_tflm
from edgeq.tflite import read_tflite

REPO = Path(__file__).resolve().parents[2]
DIGITS_H5 = REPO / "models" / "digits_cnn" / "digits_cnn.h5"


@pytest.fixture(scope="module")
def digits_int8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgeq.quantize.ptq import quantize_model

    out = tmp_path_factory.mktemp("digits") / "digits_cnn_int8.tflite"
    quantize_model(DIGITS_H5, out, data="digits")
    return out


@pytest.fixture(scope="module")
def digits_report(digits_int8: Path) -> dict[str, Any]:
    return evaluate(digits_int8, float_model=DIGITS_H5, data="digits")


def test_int8_digits_within_one_point_of_float(digits_report: dict[str, Any]) -> None:
    r = digits_report
    assert r["dataset"] == {"name": "digits", "split": "test", "samples": 359}
    assert r["float"]["value"] >= 0.95
    assert abs(r["tflm"]["value"] - r["float"]["value"]) <= 0.01
    assert r["delta"] == pytest.approx(r["tflm"]["value"] - r["float"]["value"])


def test_tflm_and_litert_ref_agree_on_digits(digits_report: dict[str, Any]) -> None:
    a = digits_report["agreement"]
    assert a["samples"] == 359 and a["elements"] == 3590
    assert a["max_abs_diff"] <= 1
    assert a["has_fully_connected"]
    # any difference must be one FULLY_CONNECTED rounding explains (inputs to FC identical)
    assert a["verdict"] in ("identical", "explained")
    if a["verdict"] == "explained":
        assert a["upstream_of_fc"]["identical_upstream"]
    assert abs(digits_report["litert_ref"]["value"] - digits_report["tflm"]["value"]) <= 0.01


def test_report_lists_ops_arena_and_size(digits_int8: Path, digits_report: dict[str, Any]) -> None:
    r = digits_report
    assert list(r["ops"]) == [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "RESHAPE",
        "FULLY_CONNECTED",
        "SOFTMAX",
    ]
    assert r["ops"]["CONV_2D"] == 2
    assert r["tflm_supported"] is True
    assert r["arena_bytes"] > 0 and r["arena_bytes"] % 16 == 0
    assert r["model_bytes"] == digits_int8.stat().st_size
    assert r["input"]["dtype"] == "int8"
    text = render_report(r)
    for needle in ("float top-1 accuracy", "TFLM ref", "LiteRT ref", "TFLM arena", "model size"):
        assert needle in text
    json.dumps(r)  # the --json form is plain JSON


def test_fc_boundary_is_the_first_fc_input(digits_int8: Path) -> None:
    info = read_tflite(digits_int8)
    boundary = fc_boundary_tensors(info)
    fc = next(op for op in info.operators if op.opcode == "FULLY_CONNECTED")
    assert boundary == [fc.inputs[0]]
    assert info.producer(boundary[0]).opcode == "RESHAPE"


def test_compare_outputs_counts() -> None:
    a = np.array([[1, 2, 3], [4, 5, 6]], np.int8)
    b = np.array([[1, 2, 4], [4, 5, 6]], np.int8)
    c = compare_outputs(a, b)
    assert c["mismatching_elements"] == 1 and c["mismatching_samples"] == 1
    assert c["max_abs_diff"] == 1 and not c["identical"]
    assert compare_outputs(a, a)["identical"]


@pytest.fixture(scope="module")
def conv_fc_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight Conv2D -> Dense(16) regressor of its own 4x4 input (task: reconstruction)."""
    from edgeq.data import representative_dataset
    from edgeq.quantize.ptq import convert_ptq
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(16),
        ]
    )
    d = tmp_path_factory.mktemp("convfc")
    x = np.random.default_rng(0).normal(size=(200, 4, 4, 1)).astype(np.float32)
    np.savez(d / "noise.npz", x=x)
    rep = representative_dataset(x, input_shape=(None, 4, 4, 1), num_samples=100)
    sidecar = json.dumps({"dataset": str(d / "noise.npz"), "task": "reconstruction"})
    atomic_write_bytes(d / "convfc.tflite", convert_ptq(model, rep))
    (d / "convfc.edgeq.json").write_text(sidecar)
    atomic_write_bytes(d / "convfc_fio.tflite", convert_ptq(model, rep, io_dtype="float32"))
    (d / "convfc_fio.edgeq.json").write_text(sidecar)
    return d / "convfc.tflite"


def test_fc_rounding_difference_is_explained(conv_fc_model: Path) -> None:
    r = evaluate(conv_fc_model, arena=False)
    assert r["metric"]["key"] == "mse" and r["tflm"]["value"] > 0
    a = r["agreement"]
    # LiteRT 2.3's FC rounds once, TFLM's twice: this model shows it
    assert a["mismatching_elements"] > 0 and a["max_abs_diff"] == 1
    assert a["verdict"] == "explained"
    up = a["upstream_of_fc"]
    assert (
        up["identical_upstream"] and up["compared_elements"] == 40 * 4 * 4 * 8
    )  # conv output, 40 samples
    assert "top1_disagreements" not in a
    assert r["arena_bytes"] is None


def test_float_io_differences_are_counted_in_steps(conv_fc_model: Path) -> None:
    r = evaluate(conv_fc_model.with_name("convfc_fio.tflite"), arena=False)
    a = r["agreement"]
    assert r["input"]["dtype"] == "float32" and a["mismatching_elements"] > 0
    assert a["max_abs_diff_steps"] == pytest.approx(1.0)  # one int8 step before DEQUANTIZE
    assert a["verdict"] == "explained" and a["upstream_of_fc"]["identical_upstream"]
    assert "(1 steps)" in render_report(r)


def test_litert_refusal_is_reported_and_tflm_still_runs(
    shared_models: Path, tmp_path: Path
) -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (10, 96, 96, 1)).astype(np.float32)
    y = (np.arange(10) % 3 == 0).astype(np.int64)  # 4 of 10 positive: no answer scores 0.5
    # explicit split: the 10 frames are the test set evaluate scores
    np.savez(tmp_path / "frames.npz", x_train=x[:2], y_train=y[:2], x_test=x, y_test=y)
    r = evaluate(shared_models / "tflm" / "person_detect.tflite", data=str(tmp_path / "frames.npz"))
    assert "quantized_dimension" in r["litert_ref"]["error"]
    assert r["agreement"]["verdict"].startswith("not compared")
    assert r["tflm_supported"]
    # accuracy recounted here from TFLM's raw outputs on the int8-quantized frames (the model
    # takes values in [-1, 1] as given; the input scale/zero point come from the flatbuffer)
    model = shared_models / "tflm" / "person_detect.tflite"
    t = read_tflite(model).input_tensors[0]
    scale, zp = float(t.quant.scale[0]), int(t.quant.zero_point[0])
    q = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
    top1 = run_tflm(model, q)[0].reshape(10, -1).argmax(axis=1)
    assert r["tflm"]["value"] == pytest.approx(float(np.mean(top1 == y)))
    assert r["arena_bytes"] > 0
    assert "not run: LiteRT" in render_report(r)


def test_evaluate_errors(digits_int8: Path, tmp_path: Path) -> None:
    with pytest.raises(AnalyzeError, match="takes a quantized .tflite"):
        evaluate(DIGITS_H5)
    with pytest.raises(AnalyzeError, match="must be a Keras model"):
        evaluate(digits_int8, float_model=digits_int8)
    with pytest.raises(AnalyzeError, match="unknown metric"):
        evaluate(digits_int8, metric="f1", limit=5)
    np.savez(tmp_path / "wrong.npz", x=np.zeros((5, 5, 5, 1)), y=np.zeros(5))
    with pytest.raises(DataError, match=r"\(5, 5, 1\).*\(8, 8, 1\)"):
        evaluate(digits_int8, data=str(tmp_path / "wrong.npz"))
