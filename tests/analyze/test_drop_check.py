"""The accuracy check after quantize: a collapsed model is named, with its culprit, and fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DIGITS_H5 = str(REPO / "models" / "digits_cnn" / "digits_cnn.h5")


def _edgeq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeq.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=600)


def test_drop_check_line_and_threshold() -> None:
    from edgeq.analyze.drop import DropCheck

    c = DropCheck(98.0, 96.5, 1000, 1.0, culprit="op 0 CONV_2D 'c1'")
    assert c.failed and c.drop_pt == pytest.approx(1.5)
    line = c.line()
    assert "\n" not in line and "op 0 CONV_2D" in line and "--allow-drop" in line
    assert not DropCheck(98.0, 97.1, 1000, 1.0).failed
    assert not DropCheck(98.0, 96.5, 1000, 2.0).failed


def test_blame_names_the_layer_that_adds_error_not_its_successors() -> None:
    """Clip one early layer hard: accumulated SQNR is low everywhere after it, own SQNR only there."""
    from helpers_calibration import trained_digits_cnn

    from edgeq.analyze.layers import analyze, blame
    from edgeq.quantize.calibration import (
        CalibrationMethod,
        apply_ranges,
        calibrate,
        calibrate_only,
        quantize_calibrated,
    )

    model, ds = trained_digits_cnn(epochs=8)
    x = ds.x_train[:100].astype(np.float32)
    calibrated = calibrate_only(model, x)
    cal = calibrate(calibrated, x, CalibrationMethod("minmax"))
    target = next(n for n in cal.ranges if "conv1" in n)
    lo, hi = cal.ranges[target]
    ranges = {**cal.ranges, target: (lo, hi * 0.15)}
    tfl = quantize_calibrated(apply_ranges(calibrated, ranges))
    a = analyze(tfl, model, ds.x_test[:100], ds.y_test[:100])
    worst = blame(a, 1)[0]
    assert "conv1" in worst.tensor and worst.clipped_fraction > 0.01
    # accumulated SQNR alone would not single it out: some later layer is as bad or worse
    later = [s for s in a.layers if s.op_index > worst.op_index and s.op != "SOFTMAX"]
    assert min(s.sqnr_db for s in later) <= worst.sqnr_db + 3.0


@pytest.mark.slow
def test_cli_quantize_fails_on_a_collapsing_calibration_unless_allowed(tmp_path: Path) -> None:
    out = tmp_path / "q.tflite"
    r = _edgeq("quantize", DIGITS_H5, "-o", str(out), "--calibration", "percentile:50")
    assert r.returncode == 1
    err = r.stderr.strip()
    assert err.count("\n") == 0 and "accuracy drop" in err and "most to blame: op" in err
    assert "Traceback" not in err
    r = _edgeq("quantize", DIGITS_H5, "-o", str(out), "--calibration", "percentile:50",
               "--allow-drop", "--json")
    assert r.returncode == 0, r.stderr
    check = json.loads(r.stdout)["drop_check"]
    assert check["failed"] and check["drop_pt"] > 1.0
    r = _edgeq("quantize", DIGITS_H5, "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    check = json.loads(r.stdout)["drop_check"]
    assert not check["failed"] and abs(check["drop_pt"]) < 1.0 and check["samples"] > 300
