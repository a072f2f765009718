"""edgeq-rt on whole models: every output byte equal to TFLM (and LiteRT-ref with its rounding).

Third-party TFLM models, the repo's digits_cnn (per-channel, per-tensor, float I/O, int16x8) and
the MLPerf-Tiny-shaped builders with random weights, each run on >= 50 inputs through the
generated C compiled with gcc.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_edgeq_rt import assert_bit_exact, convert_keras, random_inputs
from helpers_host_harness import build_host_model

from edgeq.codegen.edgeq_rt import write_edgeq_rt
from edgeq.errors import CodegenError

REPO = Path(__file__).resolve().parents[2]
N = 50


# --- third-party models ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hello_world_int8", "micro_speech_quantized"])
def test_tflm_models_bit_exact(shared_models: Path, tmp_path: Path, name: str) -> None:
    counts = assert_bit_exact(shared_models / "tflm" / f"{name}.tflite", tmp_path, n=N)
    assert counts == {"tflm": 0, "litert": 0}


def test_person_detect_bit_exact_with_tflm(shared_models: Path, tmp_path: Path) -> None:
    """LiteRT 2.3 refuses this older file (quantized_dimension 3 on biases); TFLM and we run it."""
    counts = assert_bit_exact(shared_models / "tflm" / "person_detect.tflite", tmp_path, n=N,
                              litert=False)
    assert counts == {"tflm": 0}


def _read_csv(path: Path, dtype: type) -> np.ndarray:
    return np.array([int(v) for v in path.read_text().strip().split(",")], dtype=dtype)


def _seanet_cases(shared: Path | None, op: str) -> list[str]:
    if shared is None:
        return []
    return sorted(p.stem for p in (shared / "tflm" / "seanet" / op).glob("*.tflite"))


def _shared() -> Path | None:
    from conftest import shared_models_dir

    return shared_models_dir()


SEANET_OPS = ("conv", "quantize", "transpose_conv")


@pytest.mark.parametrize("case", [c for op in SEANET_OPS for c in _seanet_cases(_shared(), op)])
def test_seanet_int16_cases_match_golden(shared_models: Path, tmp_path: Path, case: str) -> None:
    op = case.rstrip("0123456789")
    d = shared_models / "tflm" / "seanet" / op
    gold_csv = next(d.glob(f"{case}_golden_*.csv"))
    out_dt = np.int32 if gold_csv.stem.endswith("int32") else np.int16
    host = build_host_model(d / f"{case}.tflite", tmp_path)
    inputs = []
    for k, spec in enumerate(host.inputs):
        in_csv = next(d.glob(f"{case}_input{k}_*.csv"))
        in_dt = np.int32 if in_csv.stem.endswith("int32") else np.int16
        assert np.dtype(in_dt) == np.dtype(spec.dtype)
        inputs.append(_read_csv(in_csv, in_dt).reshape(1, *spec.shape[1:] if len(spec.shape) > 1
                                                      else spec.shape))
    got = host.run(inputs)[0].reshape(-1)
    gold = _read_csv(gold_csv, out_dt)
    assert got.size == gold.size
    assert int(np.sum(got != gold)) == 0


def test_unsupported_third_party_model_is_refused(shared_models: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(CodegenError) as err:
        write_edgeq_rt(shared_models / "tflm" / "keyword_scrambled_8bit.tflite", out)
    msg = str(err.value)
    assert "\n" not in msg
    assert "SVDF" in msg
    assert "op " in msg and "--runtime tflm" in msg
    assert not out.exists()


def test_third_party_lstm_bit_exact_with_tflm(shared_models: Path, tmp_path: Path) -> None:
    """trained_lstm_int8 (UNIDIRECTIONAL_SEQUENCE_LSTM, cell state on 2^-12), whole model."""
    counts = assert_bit_exact(shared_models / "tflm" / "trained_lstm_int8.tflite", tmp_path,
                              n=10, litert=False)
    assert counts == {"tflm": 0}


@pytest.mark.slow
def test_mobilenet_v2_bit_exact_with_tflm(shared_models: Path, tmp_path: Path) -> None:
    path = shared_models / "tflm" / "mobilenet_v2_quantized_1x3x224x224.tflite"
    counts = assert_bit_exact(path, tmp_path, n=3, litert=False)
    assert counts == {"tflm": 0}


# --- digits_cnn (the repo's reference model) ----------------------------------------------------


def _digits_model() -> Any:
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    return keras.models.load_model(str(REPO / "models" / "digits_cnn" / "digits_cnn.h5"),
                                   compile=False)


def _digits_data() -> np.ndarray:
    from sklearn.datasets import load_digits

    x = load_digits().images.astype(np.float32) / 16.0  # sidecar normalization: std 16
    return x[..., None]


def _convert_digits(**kw: Any) -> bytes:
    from edgeq.quantize.ptq import convert_ptq

    x = _digits_data()

    def representative():  # noqa: ANN202
        for k in range(0, 400, 4):
            yield [x[k : k + 1]]

    return convert_ptq(_digits_model(), representative, **kw)


def _quantize_inputs(path: Path, x: np.ndarray) -> np.ndarray:
    from edgeq.tflite import read_tflite

    t = read_tflite(path).input_tensors[0]
    if t.dtype == "float32":
        return x.astype(np.float32)
    from edgeq.quantize.numerics import quantize

    return quantize(x, float(t.quant.scale[0]), int(t.quant.zero_point[0]), t.dtype)


DIGITS_VARIANTS: dict[str, dict[str, Any]] = {
    "int8_per_channel": {"mode": "int8", "per_channel": True},
    "int8_per_tensor": {"mode": "int8", "per_channel": False},
    "int8_float_io": {"mode": "int8", "io_dtype": "float32"},
    "int16x8": {"mode": "int16x8"},
}


@pytest.fixture(scope="module")
def digits_models(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    cache: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("digits")

    def get(variant: str) -> Path:
        if variant not in cache:
            p = root / f"digits_{variant}.tflite"
            p.write_bytes(_convert_digits(**DIGITS_VARIANTS[variant]))
            cache[variant] = p
        return cache[variant]

    return get


@pytest.mark.parametrize("variant", list(DIGITS_VARIANTS))
def test_digits_cnn_bit_exact(
    digits_models: Callable[[str], Path], tmp_path: Path, variant: str
) -> None:
    path = digits_models(variant)
    x = _digits_data()[-200:]  # the tail of the data set, never used for calibration
    counts = assert_bit_exact(path, tmp_path, inputs=[_quantize_inputs(path, x)])
    assert counts == {"tflm": 0, "litert": 0}


def test_digits_cnn_accuracy_survives(digits_models: Callable[[str], Path], tmp_path: Path) -> None:
    """Not only bit-exact but useful: the generated C classifies digits like the float model."""
    from sklearn.datasets import load_digits

    path = digits_models("int8_per_channel")
    x, y = _digits_data()[-300:], load_digits().target[-300:]
    out = build_host_model(path, tmp_path).run([_quantize_inputs(path, x)])[0]
    accuracy = float(np.mean(out.reshape(len(y), -1).argmax(axis=1) == y))
    assert accuracy > 0.9


# --- MLPerf-Tiny-shaped builders (random weights, random calibration) --------------------------


def _with_bn_statistics(build: Callable[..., Any]) -> Callable[[], Any]:
    """Random-weight nets collapse to zero after a dozen layers; real BN statistics (measured
    on random inputs) keep every activation alive, so every layer's numerics get exercised."""

    def make() -> Any:
        from edgeq.tfenv import import_tf_keras

        keras = import_tf_keras()
        model = build(seed=0)
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        x = np.random.default_rng(1).standard_normal((16, *shape)).astype(np.float32)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                probe = keras.Model(model.inputs, layer.input)
                a = probe.predict(x, verbose=0)
                axes = tuple(range(a.ndim - 1))
                gamma, beta, _, _ = layer.get_weights()
                layer.set_weights([gamma, beta, a.mean(axis=axes), a.var(axis=axes) + 1e-3])
        return model

    return make


def _builder(name: str) -> Callable[[], Any]:
    from edgeq.models import builders

    return _with_bn_statistics(builders.BUILDERS[name])


@pytest.mark.parametrize(
    "name",
    [
        "ds_cnn",
        "fc_autoencoder",
        pytest.param("resnet8", marks=pytest.mark.slow),
        pytest.param("mobilenet_v1_025", marks=pytest.mark.slow),
    ],
)
def test_mlperf_tiny_builders_bit_exact(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(convert_keras(_builder(name)))
    counts = assert_bit_exact(path, tmp_path, n=N, seed=3)
    assert counts == {"tflm": 0, "litert": 0}
    assert random_inputs(path, 1)[0].dtype == np.int8
