"""One vocabulary: every JSON accuracy is a fraction in [0, 1], every difference is in
percentage points (``*_pt``), every text line shows percent — for quantize's drop check,
mixed and compress alike (quantize/evaluate/train-qat already wrote fractions)."""

from __future__ import annotations

import json
import re

import pytest

from edgeq.analyze.drop import DropCheck
from edgeq.quantize.compress import CompressResult
from edgeq.quantize.mixed import MixedResult, Solution, render_mixed
from edgeq.quantize.sensitivity import Evaluation


def _accuracy_values(doc: object, path: str = "") -> list[tuple[str, float]]:
    """Every number under a key that names an accuracy, anywhere in a JSON document."""
    out: list[tuple[str, float]] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if "accuracy" in k and not k.endswith("_pt") and isinstance(v, int | float):
                out.append((f"{path}.{k}", float(v)))
            out += _accuracy_values(v, f"{path}.{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _accuracy_values(v, f"{path}[{i}]")
    return out


def test_drop_check_json_is_fractions_and_points() -> None:
    check = DropCheck(float_accuracy_pct=97.5, quantized_accuracy_pct=95.0, samples=1000,
                      max_drop_pt=1.0, culprit="op 3")
    doc = json.loads(json.dumps(check.as_dict()))
    assert doc["float_accuracy"] == pytest.approx(0.975)
    assert doc["quantized_accuracy"] == pytest.approx(0.95)
    assert doc["drop_pt"] == pytest.approx(2.5) and doc["failed"]
    assert all(0.0 <= v <= 1.0 for _, v in _accuracy_values(doc))
    assert "97.5 %" in check.line() and "2.5 pt" in check.line()


def test_mixed_json_is_fractions_and_text_is_percent() -> None:
    sol = Solution({}, {"conv": "w4a8"}, 600, 0.01, 610, 0)
    r = MixedResult(solution=sol, model=b"x" * 10, evaluation=Evaluation(96.5, 0.01, 10),
                    int8=Evaluation(97.0, 0.0, 10), float_accuracy=97.25,
                    int8_weight_bytes=1000, tflite_weight_bytes=600, finetuned=True,
                    int8_finetuned=Evaluation(97.125, 0.0, 10))
    s = r.summary()
    assert (s["accuracy"], s["int8_accuracy"], s["float_accuracy"],
            s["int8_finetuned_accuracy"]) == pytest.approx((0.965, 0.97, 0.9725, 0.97125))
    values = _accuracy_values(s)
    assert len(values) == 4 and all(0.0 <= v <= 1.0 for _, v in values)
    assert "min-max" in s["int8_baseline"]  # which calibration the baseline used is said
    text = render_mixed({**s, "output": "m.tflite"})
    assert "accuracy 96.50 %" in text and "97.00 %" in text and "float 97.25 %" in text
    assert not re.search(r"\b0\.9\d+ ?%", text)  # no fraction printed as a percentage


def test_mixed_sensitivity_rows_are_fractions_and_points() -> None:
    from edgeq.quantize.mixed import sensitivity_row_json

    row = sensitivity_row_json({"layer": "pw2", "opcode": "CONV_2D", "variant": "w4",
                                "accuracy": 96.0, "accuracy_loss": 1.5, "kl": 0.01,
                                "kl_increase": 0.005})
    assert row["accuracy"] == pytest.approx(0.96) and row["accuracy_loss_pt"] == 1.5
    assert "accuracy_loss" not in row and row["layer"] == "pw2"
    assert sensitivity_row_json({"accuracy": None, "accuracy_loss": None})["accuracy"] is None


def test_compress_json_is_fractions() -> None:
    r = CompressResult(model=b"x", float_accuracy=98.0, int8_accuracy=97.5, steps=["prune"],
                       validation_drop_pt=0.5)
    s = r.summary()
    assert s["float_accuracy"] == pytest.approx(0.98)
    assert s["int8_accuracy"] == pytest.approx(0.975)
    assert s["validation_drop_pt"] == 0.5
    assert all(0.0 <= v <= 1.0 for _, v in _accuracy_values(s))


def test_compress_text_is_percent() -> None:
    from edgeq.pipeline import render_compress

    s = {"output": "c.tflite", "tflite_bytes": 100, "steps": ["prune 0.50"],
         "int8_accuracy": 0.975, "float_accuracy": 0.98, "original_float_accuracy": 0.99,
         "float32_bytes": 400, "int8_bytes": 100, "ratio_int8": 4.0, "lut_bytes": 50,
         "ratio_lut": 8.0, "huffman_bytes": 40, "ratio_huffman": 10.0, "epochs_used": 4,
         "layers": [], "file_bytes": 70, "int4_layers": ["pw2"]}
    text = render_compress(s)
    assert "int8 97.50 %" in text and "compressed float 98.00 %" in text
    assert "original float 99.00 %" in text
    assert "in the .tflite: 70 B of weights+biases (int4 filters: pw2)" in text
