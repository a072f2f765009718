"""edgeq.models: every loader, the sidecar, the clear errors, and the builders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import ModelError
from edgeq.models import load_model, predict_keras, sidecar_path

REPO = Path(__file__).resolve().parents[2]
DIGITS_H5 = REPO / "models" / "digits_cnn" / "digits_cnn.h5"


def _tiny_tf_keras():
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Conv2D(2, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )


def test_tf_keras_h5_round_trip(tmp_path: Path) -> None:
    model = _tiny_tf_keras()
    model.save(tmp_path / "m.h5")
    (tmp_path / "m.edgeq.json").write_text(json.dumps({"dataset": "digits", "labels": ["a"]}))
    loaded = load_model(tmp_path / "m.h5")
    assert loaded.kind == "tf_keras" and not loaded.is_quantized
    assert loaded.input_shape == (None, 4, 4, 1) and loaded.output_shape == (None, 3)
    assert loaded.meta["dataset"] == "digits" and loaded.labels() == ["a"]
    x = np.random.default_rng(0).random((5, 4, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(predict_keras(loaded.model, x), model(x).numpy(), rtol=1e-6)


def test_tf_keras_saved_model_dir(tmp_path: Path) -> None:
    model = _tiny_tf_keras()
    model.save(tmp_path / "sm")  # no extension: tf-keras writes a SavedModel directory
    assert (tmp_path / "sm" / "saved_model.pb").exists()
    loaded = load_model(tmp_path / "sm")
    assert loaded.kind == "tf_keras" and loaded.input_shape == (None, 4, 4, 1)
    assert loaded.labels() == ["0", "1", "2"]  # no sidecar: labels from the output width
    assert sidecar_path(tmp_path / "sm") == tmp_path / "sm.edgeq.json"


def test_keras3_dot_keras(tmp_path: Path) -> None:
    from edgeq.tfenv import import_keras3

    keras = import_keras3()
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)]
    )
    model.save(tmp_path / "k3.keras")
    loaded = load_model(tmp_path / "k3.keras")
    assert loaded.kind == "keras3"
    assert type(loaded.model).__module__.startswith("keras.")
    assert loaded.input_shape == (None, 6) and loaded.output_shape == (None, 2)
    x = np.random.default_rng(0).random((3, 6)).astype(np.float32)
    np.testing.assert_allclose(predict_keras(loaded.model, x), np.asarray(model(x)), rtol=1e-6)


def test_tf_keras_written_dot_keras_loads_with_tf_keras(tmp_path: Path) -> None:
    model = _tiny_tf_keras()
    model.save(tmp_path / "v2.keras")
    assert load_model(tmp_path / "v2.keras").kind == "tf_keras"


def test_tflite_loads_as_already_quantized(tmp_path: Path, shared_models: Path) -> None:
    loaded = load_model(shared_models / "tflm" / "hello_world_int8.tflite")
    assert loaded.kind == "tflite" and loaded.is_quantized
    assert isinstance(loaded.model, bytes) and loaded.input_dtype == "int8"
    assert loaded.input_shape == (1, 1)


def test_committed_digits_cnn_and_sidecar() -> None:
    assert DIGITS_H5.stat().st_size < 100_000  # tens of KB, committed
    loaded = load_model(DIGITS_H5)
    assert loaded.kind == "tf_keras" and loaded.input_shape == (None, 8, 8, 1)
    assert loaded.meta["dataset"] == "digits" and loaded.task == "classification"
    assert loaded.meta["normalization"] == {"mean": [0.0], "std": [16.0]}
    layer_types = {type(layer).__name__ for layer in loaded.model.layers}
    assert {
        "Conv2D",
        "DepthwiseConv2D",
        "MaxPooling2D",
        "AveragePooling2D",
        "Dense",
        "ReLU",
    } <= layer_types


def test_missing_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "nope.h5")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.h5", b"garbage", "corrupt or unreadable Keras model"),
        ("bad.keras", b"garbage", "corrupt .keras file"),
        ("bad.tflite", b"garbage-not-a-flatbuffer", "not a TFLite flatbuffer"),
        ("model.onnx", b"\x08\x01", "unknown model format '.onnx'"),
    ],
)
def test_corrupt_or_unknown_model(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ModelError, match=message) as exc:
        load_model(tmp_path / name)
    assert "\n" not in str(exc.value)


def test_truncated_tflite(tmp_path: Path, shared_models: Path) -> None:
    data = (shared_models / "tflm" / "person_detect.tflite").read_bytes()
    (tmp_path / "t.tflite").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match="truncated"):
        load_model(tmp_path / "t.tflite")


def test_directory_without_saved_model(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(ModelError, match="not a SavedModel"):
        load_model(tmp_path / "d")


def test_sidecar_dataset_path_is_relative_to_the_sidecar(tmp_path: Path) -> None:
    from edgeq.models import read_sidecar

    (tmp_path / "m").mkdir()
    np.savez(tmp_path / "m" / "calib.npz", x=np.zeros((3, 2)))
    (tmp_path / "m" / "net.edgeq.json").write_text(json.dumps({"dataset": "calib.npz"}))
    assert read_sidecar(tmp_path / "m" / "net.h5")["dataset"] == str(tmp_path / "m" / "calib.npz")
    (tmp_path / "m" / "net.edgeq.json").write_text(json.dumps({"dataset": "digits"}))
    assert read_sidecar(tmp_path / "m" / "net.h5")["dataset"] == "digits"


def test_bad_sidecar(tmp_path: Path) -> None:
    _tiny_tf_keras().save(tmp_path / "m.h5")
    (tmp_path / "m.edgeq.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable model sidecar"):
        load_model(tmp_path / "m.h5")


# parameter counts: the MLPerf-Tiny reference models' (ours omit dropout only)
BUILDER_CASES = [
    ("digits_cnn", (None, 8, 8, 1), (None, 10), {"DepthwiseConv2D", "Dense"}, (1e3, 1e4)),
    ("mnist_cnn", (None, 28, 28, 1), (None, 10), {"DepthwiseConv2D", "Dense"}, (1e3, 1e4)),
    ("ds_cnn", (None, 49, 10, 1), (None, 12), {"DepthwiseConv2D", "Conv2D"}, (2e4, 3e4)),
    ("resnet8", (None, 32, 32, 3), (None, 10), {"Add", "Conv2D"}, (7.5e4, 8e4)),
    ("mobilenet_v1_025", (None, 96, 96, 3), (None, 2), {"DepthwiseConv2D"}, (2e5, 2.3e5)),
    ("fc_autoencoder", (None, 640), (None, 640), {"Dense"}, (2.6e5, 2.8e5)),
]


@pytest.mark.parametrize(("name", "in_shape", "out_shape", "must_have", "params"), BUILDER_CASES)
def test_builders(
    name: str, in_shape: tuple, out_shape: tuple, must_have: set[str], params: tuple
) -> None:
    from edgeq.models.builders import build

    model = build(name, seed=1)
    assert model.input_shape == in_shape and model.output_shape == out_shape
    assert must_have <= {type(layer).__name__ for layer in model.layers}
    assert params[0] < model.count_params() < params[1]


def test_builders_are_seeded_and_named() -> None:
    from edgeq.models.builders import build

    a, b, c = build("digits_cnn", seed=1), build("digits_cnn", seed=1), build("digits_cnn", seed=2)
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    with pytest.raises(ModelError, match="unknown builder"):
        build("vgg16")
