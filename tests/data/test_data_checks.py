"""Bad numbers in datasets: one line naming the array, the first bad index and the fix."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeq.data import load_dataset, prepare_inputs
from edgeq.data.prepare import Normalization
from edgeq.errors import DataError

REPO = Path(__file__).resolve().parents[2]


def _digits_like(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 16, (n, 8, 8, 1)).astype(np.float32), rng.integers(0, 10, n)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_sample_named_with_its_index(tmp_path: Path, bad: float) -> None:
    x, y = _digits_like()
    x[7, 2, 5, 0] = bad
    np.savez(tmp_path / "d.npz", x=x, y=y)
    with pytest.raises(DataError) as err:
        load_dataset(tmp_path / "d.npz")
    msg = str(err.value)
    assert f"x[7, 2, 5, 0] is {bad}" in msg and "drop or repair" in msg and "\n" not in msg


def test_all_nan_refused(tmp_path: Path) -> None:
    x = np.full((10, 8, 8, 1), np.nan, np.float32)
    np.savez(tmp_path / "d.npz", x=x)
    with pytest.raises(DataError, match=r"x\[0, 0, 0, 0\] is nan"):
        load_dataset(tmp_path / "d.npz")


def test_split_file_names_the_split_array(tmp_path: Path) -> None:
    x, y = _digits_like()
    x_test = x[:10].copy()
    x_test[4, 0, 0, 0] = np.nan
    np.savez(tmp_path / "s.npz", x_train=x, y_train=y, x_test=x_test, y_test=y[:10])
    with pytest.raises(DataError, match=r"x_test\[4, 0, 0, 0\] is nan"):
        load_dataset(tmp_path / "s.npz")


def test_huge_and_constant_values_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    x, y = _digits_like()
    np.savez(tmp_path / "big.npz", x=x * 1e29, y=y)
    np.savez(tmp_path / "flat.npz", x=np.ones_like(x), y=y)
    with caplog.at_level(logging.WARNING, logger="edgeq.data.checks"):
        load_dataset(tmp_path / "big.npz")
        load_dataset(tmp_path / "flat.npz")
    text = caplog.text
    assert "values reach 1.6e+30" in text or "values reach 1.5e+30" in text
    assert "every value is 1" in text


def test_object_arrays_are_refused_not_unpickled(tmp_path: Path) -> None:
    x = np.empty(4, dtype=object)
    for i in range(4):
        x[i] = np.zeros((8, 8))
    np.savez(tmp_path / "o.npz", x=x, y=np.arange(4))
    with pytest.raises(DataError, match="array 'x' holds Python objects"):
        load_dataset(tmp_path / "o.npz")


def test_string_labels_refused(tmp_path: Path) -> None:
    x, _ = _digits_like(6)
    np.savez(tmp_path / "s.npz", x=x, y=np.array(["cat", "dog"] * 3))
    with pytest.raises(DataError, match="labels are <U3; save integer class indices"):
        load_dataset(tmp_path / "s.npz")


def test_negative_and_out_of_range_labels(tmp_path: Path) -> None:
    x, y = _digits_like()
    y[11] = -1
    np.savez(tmp_path / "n.npz", x=x, y=y)
    with pytest.raises(DataError, match=r"y\[11\] is -1: class labels must be >= 0"):
        load_dataset(tmp_path / "n.npz")
    y = np.arange(len(y)) % 4
    y[20] = 5
    np.savez(tmp_path / "r.npz", x=x, y=y, label_names=np.array(["a", "b", "c", "d"]))
    np.savez(tmp_path / "r_split.npz", x_train=x, y_train=y, x_test=x[:5], y_test=y[:5],
             label_names=np.array(["a", "b", "c", "d"]))
    with pytest.raises(DataError, match=r"y_train\[20\] is 5 but 'label_names' has 4 classes"):
        load_dataset(tmp_path / "r_split.npz")


def test_normalization_cannot_make_samples_non_finite() -> None:
    x = np.full((2, 8, 8, 1), 1e38, np.float32)
    with pytest.raises(DataError, match="after normalization"):
        prepare_inputs(x, (None, 8, 8, 1), Normalization(mean=(0.0,), std=(1e-3,)))


# --- through the CLI -------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "edgeq.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


def _one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("edgeq: error: ")
    return last


@pytest.fixture
def speech(shared_models: Path, tmp_path: Path) -> tuple[Path, np.ndarray]:
    """micro_speech (int8 in, 4 classes) and valid float inputs for it."""
    model = shared_models / "tflm" / "micro_speech_quantized.tflite"
    x = np.random.default_rng(0).uniform(0, 1, (12, 1960)).astype(np.float32)
    return model, x


def test_evaluate_rejects_nan_labels_out_of_range_and_negative_limit(
    speech: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    model, x = speech
    x_nan = x.copy()
    x_nan[5, 1000] = np.nan
    np.savez(tmp_path / "nan.npz", x=x_nan, y=np.zeros(12, np.int64))
    msg = _one_line_error(_cli("evaluate", str(model), "--data", str(tmp_path / "nan.npz"),
                               "--no-arena", cwd=tmp_path))
    assert "x[5, 1000] is nan" in msg
    np.savez(tmp_path / "lab.npz", x=x, y=np.full(12, 6))
    msg = _one_line_error(_cli("evaluate", str(model), "--data", str(tmp_path / "lab.npz"),
                               "--no-arena", cwd=tmp_path))
    assert "but the model has 4 classes (0..3)" in msg
    np.savez(tmp_path / "ok.npz", x=x, y=np.arange(12) % 4)
    msg = _one_line_error(_cli("evaluate", str(model), "--data", str(tmp_path / "ok.npz"),
                               "--limit", "-3", "--no-arena", cwd=tmp_path))
    assert "--limit must be a positive number of samples, got -3" in msg


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["inf", "-inf", "allnan"])
def test_quantize_refuses_non_finite_calibration_data(tmp_path: Path, bad: str) -> None:
    x, y = _digits_like(60)
    if bad == "allnan":
        x[:] = np.nan
    else:
        x[9, 1, 1, 0] = float(bad)
    np.savez(tmp_path / "cal.npz", x=x, y=y)
    out = tmp_path / "q.tflite"
    msg = _one_line_error(_cli("quantize", str(REPO / "models" / "digits_cnn" / "digits_cnn.h5"),
                               "--data", str(tmp_path / "cal.npz"), "-o", str(out),
                               cwd=tmp_path))
    assert ("x[0, 0, 0, 0] is nan" if bad == "allnan" else f"x[9, 1, 1, 0] is {bad}") in msg
    assert not out.exists()
