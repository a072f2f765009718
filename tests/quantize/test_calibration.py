"""Calibrators choose activation ranges from histograms, and those ranges are in the .tflite."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers_calibration import (
    int8_accuracy,
    planted_data,
    planted_outlier_model,
    tensor_scale,
    trained_digits_cnn,
)

from edgeq.errors import QuantizeError
from edgeq.quantize import calibration as C


@pytest.mark.parametrize("spec", ["percentile:0", "percentile:-1", "percentile:100.5", "percentile:49.9",
                                  "percentile:nan", "percentile:abc", "median", "kl:3"])
def test_bad_calibration_specs_are_refused_with_a_fix(spec: str) -> None:
    with pytest.raises(QuantizeError) as exc:
        C.CalibrationMethod.parse(spec)
    msg = str(exc.value)
    assert "\n" not in msg and ("use" in msg)


def test_calibration_specs_parse() -> None:
    assert C.CalibrationMethod.parse("percentile:99.9").percentile == 99.9
    assert C.CalibrationMethod.parse("percentile:100").percentile == 100.0
    assert C.CalibrationMethod.parse("percentile").percentile == C.DEFAULT_PERCENTILE
    assert str(C.CalibrationMethod.parse("KL")) == "kl"


def test_signed_data_is_clipped_on_both_sides() -> None:
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.normal(0.0, 1.0, 200_000), [-60.0, 45.0]])
    s = C.stats_from_values(v)
    # percentile: numpy.percentile, to within the histogram bin kept
    lo, hi = C.calibrate_percentile(s, 99.99)
    assert _near_numpy_percentile(lo, v, 0.01, s.bin_width)
    assert _near_numpy_percentile(hi, v, 99.99, s.bin_width)
    # KL and MSE have no closed form here (MSE rightly keeps part of the two outliers: clipping
    # 60 to 4 costs more squared error than coarser rounding of 200 000 values); both clip
    for lo, hi in (C.calibrate_kl(s), C.calibrate_mse(s)):
        assert -60.0 < lo < -1.0 and 1.0 < hi < 45.0 and lo <= 0.0 <= hi
    assert C.calibrate_minmax(s) == (-60.0, 45.0)


def _near_numpy_percentile(got: float, v: np.ndarray, p: float, bin_width: float) -> bool:
    """numpy.percentile lies between two neighbouring samples; a histogram calibrator keeps the
    whole bin of one of them (which one depends on the rounding of p/100): an upper range end is
    that bin's upper edge (never below the samples), a lower end its lower edge (never above)."""
    srt = np.sort(np.asarray(v, dtype=np.float64))
    i = int(np.floor(p / 100.0 * (srt.size - 1)))
    ref = float(np.percentile(srt, p))
    below, above = srt[max(i - 1, 0)], srt[min(i + 2, srt.size - 1)]
    assert below <= ref <= above
    if p > 50.0:
        return below <= got <= above + bin_width * 1.0001
    return below - bin_width * 1.0001 <= got <= above


def test_percentile_edge_cases_and_specs() -> None:
    v = np.concatenate([np.zeros(50), np.linspace(-2.0, 3.0, 1000)])
    s = C.stats_from_values(v, name="t1")
    assert (s.name, s.zeros, s.total, s.min, s.max) == ("t1", 50, 1050, -2.0, 3.0)
    assert len(s.counts) == C.DEFAULT_BINS and len(s.edges) == C.DEFAULT_BINS + 1
    assert s.edges[0] == -2.0 and s.edges[-1] == 3.0
    assert C.calibrate_percentile(s, 100.0) == (-2.0, 3.0)
    for bad in (0.0, -1.0, 100.5, 0.5, 49.99):
        with pytest.raises(QuantizeError, match=r"outside \[50, 100\]"):
            C.calibrate_percentile(s, bad)
    assert C.CalibrationMethod.parse("percentile:50").percentile == 50.0
    assert C.CalibrationMethod.parse("minmax") == C.CalibrationMethod("minmax")
    assert str(C.CalibrationMethod.parse("percentile:99.9")) == "percentile:99.9"
    assert str(C.CalibrationMethod.parse("mse")) == "mse"
    # one-signed data: only the top is clipped; all-zero data keeps its (empty) range
    pos = C.stats_from_values(np.linspace(0.5, 4.0, 2000))
    assert C.calibrate_percentile(pos, 99.0)[0] == 0.5
    neg = C.stats_from_values(-np.linspace(0.5, 4.0, 2000))
    assert C.calibrate_percentile(neg, 99.0)[1] == -0.5
    z = C.stats_from_values(np.zeros(10))
    assert (z.zeros, int(z.counts.sum()), C.calibrate_percentile(z, 99.0)) == (10, 0, (0.0, 0.0))
    with pytest.raises(QuantizeError, match="tensor 'e' has no values to calibrate on"):
        C.stats_from_values(np.zeros(0), name="e")
    one = C.stats_from_values(np.array([[2.5]]))
    assert (one.min, one.max, one.zeros, int(one.counts.sum())) == (2.5, 2.5, 0, 1)


@pytest.mark.parametrize("percentile", [90.0, 99.0, 99.9])
@pytest.mark.parametrize("zero_fraction", [0.0, 0.3, 0.6])
def test_percentile_matches_numpy_with_zeros_counted(percentile: float,
                                                     zero_fraction: float) -> None:
    """ReLU-like data with many exact zeros, and signed data with zeros: the range is
    numpy.percentile over ALL values (zeros included), to within the histogram bin kept."""
    rng = np.random.default_rng(int(percentile * 10 + zero_fraction * 100))
    n = 100_000
    zeros = rng.random(n) < zero_fraction
    relu = np.where(zeros, 0.0, np.abs(rng.normal(0.0, 1.0, n)))
    signed = np.where(zeros, 0.0, rng.laplace(0.2, 1.0, n))
    s = C.stats_from_values(relu)
    lo, hi = C.calibrate_percentile(s, percentile)
    assert lo == relu.min()  # one-signed data: the lower end is never clipped
    assert _near_numpy_percentile(hi, relu, percentile, s.bin_width)
    s = C.stats_from_values(signed)
    lo, hi = C.calibrate_percentile(s, percentile)
    assert _near_numpy_percentile(hi, signed, percentile, s.bin_width)
    assert _near_numpy_percentile(lo, signed, 100.0 - percentile, s.bin_width)


def test_uniform_data_keeps_the_minmax_range_within_one_int8_step() -> None:
    v = np.random.default_rng(2).uniform(-1.0, 3.0, 300_000)
    s = C.stats_from_values(v)
    step = (s.max - s.min) / 255
    for lo, hi in (C.calibrate_percentile(s, 99.99), C.calibrate_kl(s), C.calibrate_mse(s)):
        assert abs(lo - s.min) <= step and abs(hi - s.max) <= step


@pytest.fixture(scope="module")
def planted() -> dict[str, tuple[bytes, C.Calibration]]:
    model, x = planted_outlier_model(), planted_data()
    return {m: C.convert_calibrated(model, x, m) for m in ("minmax", "percentile", "kl", "mse")}


OUT = "StatefulPartitionedCall:0"


def _names(cal: C.Calibration) -> tuple[str, str]:
    names = list(cal.ranges)
    inp = next(n for n in names if "serving_default" in n)
    d1 = next(n for n in names if "d1" in n)
    return inp, d1


def test_minmax_puts_the_observed_range_in_the_tflite(planted) -> None:
    tfl, cal = planted["minmax"]
    assert cal.ranges[OUT] == pytest.approx((0.0, 100.0), abs=1e-3)
    assert tensor_scale(tfl, OUT) == pytest.approx(100.0 / 255, rel=1e-4)


@pytest.mark.parametrize("method", ["percentile", "kl", "mse"])
def test_clipping_calibrators_narrow_only_the_outlier_tensor(planted, method: str) -> None:
    tfl_mm, cal_mm = planted["minmax"]
    tfl, cal = planted[method]
    # the ranges the calibrator chose are exactly what the quantizer wrote (no re-calibration)
    assert C.check_ranges(tfl, cal.ranges) == {}
    lo, hi = cal.ranges[OUT]
    assert tensor_scale(tfl, OUT) == pytest.approx((hi - min(lo, 0.0)) / 255, rel=1e-4)
    # strictly narrower than min-max where the outlier is
    assert tensor_scale(tfl, OUT) < tensor_scale(tfl_mm, OUT) * 0.97
    # equal to min-max within one int8 step where there is none
    for name in _names(cal):
        s_mm = tensor_scale(tfl_mm, name)
        assert abs(tensor_scale(tfl, name) - s_mm) <= s_mm / 255 + 1e-9, name


def test_percentile_and_kl_cut_the_outlier_hard(planted) -> None:
    assert planted["percentile"][1].ranges[OUT][1] < 2.0
    # KL stops where one int8 level is one histogram bin wide (100/2048 per bin here): finer
    # rounding is invisible to a histogram divergence, so it cuts 100 to about 256 bins' worth
    assert planted["kl"][1].ranges[OUT][1] <= 256 * 100 / 2048 + 1.0


def test_statistics_histogram_every_activation_tensor(planted) -> None:
    _, cal = planted["minmax"]
    assert len(cal.stats) == 3
    for s in cal.stats.values():
        assert s.total == 2000 * (16 if "serving" in s.name else 17)
        assert len(s.counts) == C.DEFAULT_BINS and math.isclose(s.edges[-1], max(s.max, 0.0))


@pytest.mark.slow
def test_best_calibrator_on_digits_is_not_worse_than_minmax() -> None:
    model, ds = trained_digits_cnn()
    rep = ds.x_train[:200]
    acc = {}
    for m in ("minmax", "percentile", "kl", "mse"):
        tfl, cal = C.convert_calibrated(model, rep, m)
        assert C.check_ranges(tfl, cal.ranges) == {}
        acc[m] = int8_accuracy(tfl, ds.x_test, ds.y_test)
    assert acc["minmax"] > 0.85
    assert max(acc[m] for m in ("percentile", "kl", "mse")) >= acc["minmax"]
