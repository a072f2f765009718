"""KL calibration cannot collapse a model, and ``auto`` is never worse than min-max."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_calibration import planted_data, planted_outlier_model

from edgeq.quantize import calibration as C


def _bn_spikes(seed: int = 0) -> np.ndarray:
    """What a first conv + BN gives on images with a zero background: per-channel constants
    (tall spikes at non-zero values) on top of a long-tailed ReLU bulk."""
    rng = np.random.default_rng(seed)
    spikes = np.repeat(rng.uniform(0.05, 0.6, 16), 30_000)
    tail = np.abs(rng.standard_t(3, 60_000)) * 0.8
    return np.concatenate([spikes, tail])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_on_spiky_bn_histograms_is_not_worse_than_minmax(seed: int) -> None:
    v = _bn_spikes(seed)
    s = C.stats_from_values(v)
    lo, hi = C.calibrate_kl(s)
    clipped = float(np.mean((v < lo) | (v > hi)))
    assert clipped < 3e-3  # TensorRT's window-only divergence clipped several percent here
    assert hi < s.max  # but it is still a clipping calibrator


def test_kl_still_cuts_a_lone_outlier() -> None:
    rng = np.random.default_rng(3)
    v = np.concatenate([np.abs(rng.normal(0, 1, 200_000)), [80.0]])
    lo, hi = C.calibrate_kl(C.stats_from_values(v))
    assert abs(lo) < 1e-3 and 3.0 < hi < 40.0


def test_auto_parses_and_is_not_a_per_tensor_rule() -> None:
    assert str(C.CalibrationMethod.parse("auto")) == "auto"
    s = C.stats_from_values(np.arange(10.0))
    with pytest.raises(C.QuantizeError):
        C.choose_range(s, C.CalibrationMethod("auto"))


def test_auto_measures_better_than_minmax_and_its_ranges_are_in_the_file() -> None:
    from edgeq.oracles import litert_ref_interpreter  # noqa: F401  (LiteRT must be present)

    # the one outlier sample last: in the histograms, but not among the samples auto measures
    model, x = planted_outlier_model(), np.roll(planted_data(), -1, axis=0)
    tfl_auto, cal = C.convert_calibrated(model, x, "auto")
    tfl_mm, _ = C.convert_calibrated(model, x, "minmax")
    assert C.check_ranges(tfl_auto, cal.ranges) == {}
    ref = model.predict(x[: C.AUTO_SAMPLES], verbose=0).astype(np.float64)
    err_auto = C._int8_output_error(tfl_auto, list(x[: C.AUTO_SAMPLES, None]), ref)
    err_mm = C._int8_output_error(tfl_mm, list(x[: C.AUTO_SAMPLES, None]), ref)
    assert err_auto < 0.5 * err_mm  # the outlier tensor got a clipping range
    assert any(v != "minmax" for v in cal.chosen.values())
    assert set(cal.chosen) <= set(cal.ranges)
