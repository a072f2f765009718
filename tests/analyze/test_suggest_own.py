"""``analyze --suggest``: ranks by what a layer adds, says nothing to do, never repeats itself."""

from __future__ import annotations

import math

from edgeq.analyze.layers import Analysis, LayerStats, ModelStats, blame, suggest


def _layer(i: int, op: str, sqnr: float, sqnr_in: float, clipped: float = 0.0,
           per_channel: bool | None = True, spread: float | None = 2.0) -> LayerStats:
    return LayerStats(op_index=i, op=op, tensor=f"t{i}", shape=[1, 4], sqnr_db=sqnr, scale=0.1,
                      zero_point=-128, range_used=(0.0, 25.5), range_observed=(0.0, 25.0),
                      clipped_fraction=clipped, range_bulk=(0.0, 20.0),
                      weight_per_channel=per_channel, weight_spread=spread, weight_bits=8,
                      input_sqnr_db=sqnr_in)


def _analysis(f_acc: float, q_acc: float) -> Analysis:
    # conv0 clips and drops 40 -> 14 dB; everything after inherits ~14 dB and adds little
    layers = [
        _layer(0, "CONV_2D", 14.0, 40.0, clipped=0.04),
        _layer(1, "DEPTHWISE_CONV_2D", 13.5, 14.0),
        _layer(2, "CONV_2D", 13.0, 13.5),
        _layer(3, "FULLY_CONNECTED", 12.8, 13.0),
        _layer(4, "SOFTMAX", 10.0, 12.8),
    ]
    model = ModelStats(samples=500, float_accuracy=f_acc, int8_accuracy=q_acc,
                       top1_agreement=0.8, kl_softmax=0.3, output_sqnr_db=10.0)
    return Analysis(layers=layers, model=model, sanity=[])


def test_own_sqnr_isolates_the_layer_that_adds_the_noise() -> None:
    a = _analysis(0.98, 0.77)
    assert [s.op_index for s in blame(a, 1)] == [0]  # accumulated SQNR would name op 3
    assert min(a.layers[:4], key=lambda s: s.sqnr_db).op_index == 3
    s0 = a.layers[0]
    assert math.isclose(s0.own_drop_db, 26.0)
    assert 14.0 <= s0.own_sqnr_db < 14.1  # 40 dB input noise is negligible next to 14 dB


def test_suggest_names_the_clipped_layer_and_not_the_calibrator_in_use() -> None:
    a = _analysis(0.98, 0.77)
    tips = suggest(a, calibration="kl")
    assert "op 0" in tips[0] and "clipped" in tips[0] and "minmax" in tips[0]
    tips_mm = suggest(a, calibration="minmax")
    assert "op 0" in tips_mm[0] and "--calibration minmax" not in tips_mm[0]


def test_suggest_says_nothing_to_do_when_nothing_was_lost() -> None:
    tips = suggest(_analysis(0.979, 0.980))
    assert len(tips) == 1 and tips[0].startswith("nothing to do")
