"""The flatbuffer reader on real third-party files, and its refusals of broken ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import ModelError
from edgeq.tflite import load_model_t, read_tflite, read_tflite_bytes, serialize_model_t


def test_reads_person_detect_ops_tensors_and_quantization(shared_models: Path) -> None:
    m = read_tflite(shared_models / "tflm" / "person_detect.tflite")
    assert m.op_names == ["DEPTHWISE_CONV_2D", "CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX"]
    (inp,) = m.input_tensors
    assert inp.shape == (1, 96, 96, 1) and inp.dtype == "int8"
    first = m.operators[0]
    assert first.options["depthMultiplier"] == 8
    assert first.options["fusedActivationFunction"] == "RELU6"
    assert first.options["padding"] == "SAME"
    weights = m.tensors[first.inputs[1]]
    assert weights.data is not None and weights.data.shape == weights.shape == (1, 3, 3, 8)
    assert weights.quant is not None and weights.quant.per_channel and weights.quant.axis == 3
    assert weights.quant.scale.shape == (8,)
    bias = m.tensors[first.inputs[2]]
    assert bias.dtype == "int32" and bias.data is not None
    assert m.size_bytes == (shared_models / "tflm" / "person_detect.tflite").stat().st_size


def test_int16_seanet_model_types(shared_models: Path) -> None:
    m = read_tflite(shared_models / "tflm" / "seanet" / "conv" / "conv0.tflite")
    op = m.operators[0]
    assert op.opcode == "CONV_2D"
    assert m.tensors[op.inputs[0]].dtype == "int16"
    assert m.tensors[op.inputs[1]].dtype == "int8"
    assert m.tensors[op.inputs[2]].dtype == "int64"


def test_roundtrip_through_object_api_preserves_model(shared_models: Path) -> None:
    raw = (shared_models / "tflm" / "hello_world_int8.tflite").read_bytes()
    again = read_tflite_bytes(serialize_model_t(load_model_t(raw)))
    orig = read_tflite_bytes(raw)
    assert [t.shape for t in again.tensors] == [t.shape for t in orig.tensors]
    for a, b in zip(again.tensors, orig.tensors, strict=True):
        if b.data is not None:
            np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize(
    "mangle, words",
    [
        (lambda raw: raw[: len(raw) // 2], "corrupt or truncated"),
        (lambda raw: raw[:4] + b"XXXX" + raw[8:], "not a TFLite flatbuffer"),
        (lambda raw: raw[:6], "too small"),
    ],
)
def test_broken_files_raise_one_line_model_error(
    shared_models: Path, tmp_path: Path, mangle, words
) -> None:
    raw = (shared_models / "tflm" / "micro_speech_quantized.tflite").read_bytes()
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(mangle(raw))
    with pytest.raises(ModelError) as err:
        read_tflite(bad)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        read_tflite(tmp_path / "nope.tflite")


def test_reader_does_not_import_tensorflow(shared_models: Path) -> None:
    code = (
        "import sys; from edgeq.tflite import read_tflite; "
        f"read_tflite({str(shared_models / 'tflm' / 'hello_world_int8.tflite')!r}); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
