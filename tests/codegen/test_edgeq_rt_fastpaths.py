"""The fast paths of the portable int8 conv-family kernels, held bit-exact to TFLM and LiteRT-ref.

The kernels clip each window to the image once, work on four output channels at a time (plus a
one-channel remainder), and start windows wholly inside the image from ``bias_folded`` (bias +
input_offset * sum(filter), ops_conv.folded_bias) instead of adding the offset per tap. These
cases put every branch to work: channel counts that are not multiples of four, border and
interior pixels, stride 2, and input zero points at both ends of the int8 range (the fold's
largest terms)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_edgeq_rt import (
    assert_bit_exact,
    convert_keras,
    depth_multiplier_model,
    keras_layers,
)

from edgeq.codegen.edgeq_rt import write_edgeq_rt
from edgeq.codegen.ops_conv import folded_bias
from edgeq.tflite import load_model_t, read_tflite_bytes, serialize_model_t

N = 10


def _model(shape: tuple[int, ...], make: Callable[[Any], Any]) -> Callable[[], Any]:
    def build() -> Any:
        keras = keras_layers()
        keras.utils.set_random_seed(0)
        inp = keras.Input(shape)
        return keras.Model(inp, make(keras.layers)(inp))

    return build


def _input_zero_point(data: bytes, zp: int) -> bytes:
    """Set the model input's (and so the first op's input) zero point: a value the converter
    picks only for extreme calibration data."""
    mt = load_model_t(data)
    sg = mt.subgraphs[0]
    sg.tensors[sg.inputs[0]].quantization.zeroPoint = np.array([zp], dtype=np.int64)
    return serialize_model_t(mt)


CASES = {
    # depthwise, depth multiplier 1: 6 channels = one group of four + two single channels
    "dw6_k3_same": ((7, 6, 6), lambda L: L.DepthwiseConv2D(3, padding="same")),
    "dw5_k3_s2_same_relu": ((9, 8, 5), lambda L: L.DepthwiseConv2D(
        3, strides=2, padding="same", activation="relu")),
    "dw9_k5x3_valid": ((8, 6, 9), lambda L: L.DepthwiseConv2D((5, 3))),
    # convolution: remainders of 1..3 output channels, 1x1 and full windows
    "conv7_k3_same": ((6, 5, 3), lambda L: L.Conv2D(7, 3, padding="same")),
    "conv6_1x1": ((5, 5, 8), lambda L: L.Conv2D(6, 1)),
    "conv9_k3_s2_valid": ((9, 9, 2), lambda L: L.Conv2D(9, 3, strides=2)),
    # pooling with a group of four channels and a remainder
    "max_6ch_same": ((7, 5, 6), lambda L: L.MaxPooling2D(3, strides=2, padding="same")),
    "avg_6ch_same": ((7, 5, 6), lambda L: L.AveragePooling2D(3, strides=2, padding="same")),
    # fully connected: 4 rows per input pass + 3 remaining
    "fc11": ((40,), lambda L: L.Dense(11, activation="relu")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_paths_are_bit_exact(tmp_path: Path, case: str) -> None:
    shape, make = CASES[case]
    path = tmp_path / "m.tflite"
    path.write_bytes(convert_keras(_model(shape, make)))
    assert_bit_exact(path, tmp_path, n=N)


@pytest.mark.parametrize("zp", [-128, 127])
@pytest.mark.parametrize("op", ["dw", "conv"])
def test_folded_bias_with_extreme_input_zero_points(tmp_path: Path, op: str, zp: int) -> None:
    make = {
        "dw": lambda L: L.DepthwiseConv2D(3, padding="same"),
        "conv": lambda L: L.Conv2D(5, 3, padding="same"),
    }[op]
    path = tmp_path / "m.tflite"
    path.write_bytes(_input_zero_point(convert_keras(_model((6, 6, 4), make)), zp))
    write_edgeq_rt(path, tmp_path / "gen")
    assert "bias_folded" in (tmp_path / "gen" / "model.c").read_text()  # the fold is in use
    assert_bit_exact(path, tmp_path, n=N)


def test_depth_multiplier_blocks_are_bit_exact(tmp_path: Path) -> None:
    """Depth multiplier > 1 as a small convolution per input channel (filter_blocks): in place,
    copied windows, clipped rows, padded filter rows, dilation, outputs past the last block of
    four. The portable tile here; tests/bench/test_qemu_dsp_kernels.py runs the SMLAD one."""
    path = tmp_path / "m.tflite"
    path.write_bytes(convert_keras(depth_multiplier_model))
    write_edgeq_rt(path, tmp_path / "gen")
    model_c = (tmp_path / "gen" / "model.c").read_text()
    assert model_c.count(".filter_blocks = ") == 6  # every depthwise layer
    assert_bit_exact(path, tmp_path, n=N)


@pytest.mark.parametrize("zp", [-128, 127])
def test_depth_multiplier_blocks_with_extreme_input_zero_points(tmp_path: Path, zp: int) -> None:
    """The copied windows' fill and the clipped rows' offset add at both ends of int8."""
    make = lambda L: L.DepthwiseConv2D((3, 4), depth_multiplier=4, strides=2,  # noqa: E731
                                       padding="same")
    path = tmp_path / "m.tflite"
    path.write_bytes(_input_zero_point(convert_keras(_model((7, 9, 1), make)), zp))
    write_edgeq_rt(path, tmp_path / "gen")
    assert ".filter_blocks = " in (tmp_path / "gen" / "model.c").read_text()
    assert_bit_exact(path, tmp_path, n=N)


def test_folded_bias_is_bias_plus_offset_times_filter_sum_wrapped_to_int32(
    tmp_path: Path,
) -> None:
    data = convert_keras(_model((5, 5, 3), lambda L: L.Conv2D(4, 3, padding="same")))
    model = read_tflite_bytes(data)
    op = model.operators[0]
    filt, bias = model.tensors[op.inputs[1]], model.tensors[op.inputs[2]]
    w = np.asarray(filt.data, dtype=np.int64).reshape(4, -1)
    b = np.asarray(bias.data, dtype=np.int64)
    got = folded_bias(filt, bias, 77)
    assert got.dtype == np.int32
    assert np.array_equal(got.astype(np.int64), b + 77 * w.sum(axis=1))
    # far beyond int32: the value wraps exactly as the kernel's two's complement sum does
    big = folded_bias(filt, bias, 2**40)
    want = (b + 2**40 * w.sum(axis=1)) % 2**32
    assert np.array_equal(big.astype(np.int64) % 2**32, want)
    assert np.array_equal(folded_bias(filt, None, 0), np.zeros(4, dtype=np.int32))
