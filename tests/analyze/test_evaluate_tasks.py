"""Tasks other than classification, and models with several inputs/outputs, through
``edgeq.analyze.evaluate``: every metric checked against an independent computation (sklearn,
or brute force) on the same TFLM outputs, and every output compared between the oracles."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq.analyze.evaluate import METRICS, evaluate, metric_for, score_raw_outputs
from edgeq.cli import cli
from edgeq.errors import AnalyzeError, ModelError
from edgeq.oracles import run_tflm
from edgeq.quantize.numerics import dequantize_outputs, quantized_test_vectors
from edgeq.tflite import read_tflite


def _quantize(keras_model_path: Path, tmp: Path) -> Path:
    from edgeq.quantize.ptq import quantize_model

    out = tmp / (keras_model_path.stem + "_int8.tflite")
    quantize_model(keras_model_path, out)
    return out


def _sidecar(model: Path, **meta: object) -> None:
    model.with_name(model.stem + ".edgeq.json").write_text(json.dumps(meta))


# --- metrics against independent computations ------------------------------------------------


def test_segmentation_metrics_match_sklearn() -> None:
    from sklearn.metrics import accuracy_score, jaccard_score

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 5, 4, 3))
    masks = rng.integers(0, 3, (6, 5, 4))
    pred = logits.argmax(-1).reshape(-1)
    pix = metric_for("segmentation", "pixel_accuracy").fn(logits, masks, logits)
    miou = metric_for("segmentation", None).fn(logits, masks, logits)
    assert pix == pytest.approx(accuracy_score(masks.reshape(-1), pred))
    assert miou == pytest.approx(jaccard_score(masks.reshape(-1), pred, average="macro"))


def test_regression_and_reconstruction_errors_match_sklearn() -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    rng = np.random.default_rng(2)
    out, y, x = rng.normal(size=(9, 3)), rng.normal(size=(9, 3)), rng.normal(size=(9, 3))
    assert metric_for("regression", None).fn(out, y, x) == pytest.approx(
        mean_squared_error(y, out))
    assert metric_for("regression", "mae").fn(out, y, x) == pytest.approx(
        mean_absolute_error(y, out))
    # an autoencoder's MSE is against its input, not the labels
    assert metric_for("autoencoder", None).fn(out, y, x) == pytest.approx(
        mean_squared_error(x, out))
    with pytest.raises(AnalyzeError, match="targets"):
        metric_for("regression", None).fn(out, None, x)


def test_anomaly_auc_is_the_pairwise_ranking_probability() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(40, 1))
    labels = rng.integers(0, 2, 40)
    pos, neg = scores[labels == 1, 0], scores[labels == 0, 0]
    pairs = [(p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg)]
    auc = metric_for("anomaly", None).fn(scores, labels, scores)
    assert auc == pytest.approx(np.mean(pairs))
    # a reconstruction's score is its per-sample squared error: a perfect detector has AUC 1
    x = rng.normal(size=(10, 8))
    recon = x.copy()
    recon[5:] += 3.0  # the last five reconstruct badly: the anomalies
    assert metric_for("anomaly", None).fn(recon, np.r_[np.zeros(5), np.ones(5)], x) == 1.0
    # no labels: the mean score, not an error
    assert metric_for("anomaly", None, has_labels=False) is METRICS["score"]
    assert metric_for("none", None) is None


# --- through evaluate, with tiny models built here --------------------------------------------


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A regression model, an anomaly autoencoder and a two-input/two-output model (Keras 3)."""
    from edgeq.tfenv import import_keras3

    keras = import_keras3()
    keras.utils.set_random_seed(0)
    tmp = tmp_path_factory.mktemp("tasks")
    rng = np.random.default_rng(0)
    found: dict[str, Path] = {}

    x = rng.uniform(-1, 1, (200, 6)).astype(np.float32)
    y = np.stack([x[:, :3].sum(1), x[:, 3:].mean(1)], axis=1).astype(np.float32)
    np.savez(tmp / "reg.npz", x=x, y=y)
    m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(2)])
    m.compile(keras.optimizers.Adam(0.02), "mse")
    m.fit(x, y, epochs=40, verbose=0)
    m.save(tmp / "reg.keras")
    _sidecar(tmp / "reg.keras", dataset="reg.npz", task="regression")
    found["regression"] = tmp / "reg.keras"

    normal = rng.normal(0, 0.3, (200, 8)).astype(np.float32)
    normal[:, 4:] = normal[:, :4]  # normal data: the halves repeat
    odd = rng.normal(0, 0.3, (40, 8)).astype(np.float32)  # anomalies: they do not
    xa = np.concatenate([normal, odd])
    ya = np.r_[np.zeros(200), np.ones(40)].astype(np.int64)
    np.savez(tmp / "anom.npz", x=xa, y=ya)
    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(8)])
    m.compile(keras.optimizers.Adam(0.02), "mse")
    m.fit(normal, normal, epochs=40, verbose=0)
    m.save(tmp / "anom.keras")
    _sidecar(tmp / "anom.keras", dataset="anom.npz", task="anomaly")
    found["anomaly"] = tmp / "anom.keras"

    a = rng.uniform(0, 1, (240, 12)).astype(np.float32)
    b = rng.uniform(0, 1, (240, 12)).astype(np.float32)
    yc = (a.mean(1) > b.mean(1)).astype(np.int64)  # swapped inputs invert every answer
    np.savez(tmp / "pair.npz", x_0=a, x_1=b, y=yc)
    ia, ib = keras.Input((12,), name="a_first"), keras.Input((12,), name="b_second")
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([ia, ib]))
    cls = keras.layers.Dense(2, activation="softmax", name="cls")(h)
    diff = keras.layers.Dense(1, name="diff")(h)
    m = keras.Model([ia, ib], [cls, diff])
    m.compile(keras.optimizers.Adam(0.02), ["sparse_categorical_crossentropy", "mse"])
    m.fit([a, b], [yc, (a.mean(1) - b.mean(1))[:, None]], epochs=40, verbose=0)
    m.save(tmp / "pair.keras")
    _sidecar(tmp / "pair.keras", dataset="pair.npz", task=["classification", "none"])
    found["pair"] = tmp / "pair.keras"
    return found


def test_regression_evaluate_matches_sklearn_on_tflm_outputs(tiny_models: dict[str, Path],
                                                             tmp_path: Path) -> None:
    from sklearn.metrics import mean_squared_error

    tfl = _quantize(tiny_models["regression"], tmp_path)
    r = evaluate(tfl, float_model=tiny_models["regression"], arena=False)
    assert r["task"] == "regression" and r["metric"]["name"] == "MSE"
    xs, y = quantized_test_vectors(tfl, None, 10_000)
    out = dequantize_outputs(run_tflm(tfl, xs)[0], read_tflite(tfl).output_tensors[0])
    assert r["tflm"]["value"] == pytest.approx(mean_squared_error(y, out.reshape(len(y), -1)))
    assert r["float"]["value"] < 0.05  # the float model learned the sums
    assert r["tflm"]["value"] < 2 * r["float"]["value"] + 0.01


def test_anomaly_auc_through_evaluate(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    tfl = _quantize(tiny_models["anomaly"], tmp_path)
    r = evaluate(tfl, float_model=tiny_models["anomaly"], arena=False)
    assert r["metric"]["name"] == "anomaly AUC"
    assert r["float"]["value"] > 0.9 and r["tflm"]["value"] > 0.9
    xs, y = quantized_test_vectors(tfl, None, 10_000)
    info = read_tflite(tfl)
    out = dequantize_outputs(run_tflm(tfl, xs)[0], info.output_tensors[0])
    x = dequantize_outputs(xs[0], info.input_tensors[0])
    # the build's device-side scoring (quantized inputs dequantized) agrees with sklearn
    got = score_raw_outputs(tfl, run_tflm(tfl, xs), y, xs)
    assert got is not None and got[0] == "anomaly AUC"
    assert got[1] == pytest.approx(roc_auc_score(y, ((out - x) ** 2).mean(1)))


def test_two_inputs_two_outputs_evaluate(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    tfl = _quantize(tiny_models["pair"], tmp_path)
    info = read_tflite(tfl)
    assert len(info.inputs) == 2 and len(info.outputs) == 2
    r = evaluate(tfl, float_model=tiny_models["pair"], arena=False)
    assert r["float"]["value"] > 0.9
    # fed in the right order: swapped inputs would turn this into 1 - accuracy
    assert abs(r["tflm"]["value"] - r["float"]["value"]) < 0.05
    assert [o["task"] for o in r["outputs"]] == ["classification", "none"]
    assert r["outputs"][1]["metric"] is None and r["outputs"][1]["tflm"] is None
    agree = r["agreement"]
    assert len(agree["per_output"]) == 2
    assert agree["elements"] == r["dataset"]["samples"] * (2 + 1)
    code = CliRunner().invoke(cli, ["evaluate", str(tfl), "--no-arena"])
    assert code.exit_code == 0, code.output
    assert "output 1" in code.output and "agreement only" in code.output


def test_dataset_with_the_wrong_number_of_inputs_is_one_line(tiny_models: dict[str, Path],
                                                             tmp_path: Path) -> None:
    tfl = _quantize(tiny_models["pair"], tmp_path)
    one = tmp_path / "one.npz"
    np.savez(one, x=np.zeros((10, 12), np.float32), y=np.zeros(10, np.int64))
    res = CliRunner().invoke(cli, ["evaluate", str(tfl), "--data", str(one), "--no-arena"])
    assert res.exit_code != 0
    assert "1 input array(s) but the model has 2 inputs" in res.output
    assert "x_0, x_1" in res.output and "Traceback" not in res.output


def test_unknown_task_in_a_list_lists_the_allowed_ones(tmp_path: Path) -> None:
    from edgeq.models import read_sidecar

    model = tmp_path / "m.tflite"
    _sidecar(model, task=["segmentation", "detection"])
    with pytest.raises(ModelError, match="unknown task 'detection'; allowed: classification, "
                                         "regression, segmentation, anomaly"):
        read_sidecar(model)
