"""Ahead-of-time weight packing and the exact cheap requantization of the edgeq-rt int8 kernels.

Oracles are independent of the code under test: a matrix product for the packed filter layout
(walked the way the kernels walk it), gemmlowp's scalar formulas written out in Python integers
for the requantization, and TFLM / LiteRT's reference kernels for whole models."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers_edgeq_rt import assert_bit_exact, convert_keras, keras_layers, random_inputs
from helpers_host_harness import build_host_model

from edgeq.codegen import weight_packing
from edgeq.codegen.edgeq_rt import runtime_dir, write_edgeq_rt
from edgeq.codegen.ops_conv import _add_fast_requant, fast_requant, plain_requant
from edgeq.oracles import run_litert_ref
from edgeq.tflite import load_model_t, serialize_model_t


@pytest.mark.parametrize("channels,reduction", [(4, 4), (7, 8), (16, 36), (3, 12), (9, 64)])
def test_packed_rows_give_the_matrix_product(channels: int, reduction: int) -> None:
    rng = np.random.default_rng(channels * 100 + reduction)
    rows = rng.integers(-128, 128, size=(channels, reduction), dtype=np.int8)
    x = rng.integers(-128, 128, size=reduction).astype(np.int64)
    packed = weight_packing.pack_blocks(rows).astype(np.int64)
    assert packed.size == rows.size
    got = np.zeros(channels, dtype=np.int64)
    pos = 0
    full = channels // 4 * 4
    for block in range(0, full, 4):  # the kernels' walk: 16 bytes per step of 4 inputs
        for k in range(0, reduction, 4):
            for j in range(4):
                got[block + j] += packed[pos:pos + 4] @ x[k:k + 4]
                pos += 4
    for c in range(full, channels):  # remainder rows in plain order
        got[c] = packed[pos:pos + reduction] @ x
        pos += reduction
    assert np.array_equal(got, rows.astype(np.int64) @ x)
    for c, k in [(0, 0), (channels - 1, reduction - 1), (channels // 2, reduction // 3)]:
        assert packed[weight_packing.packed_index(c, k, channels, reduction)] == rows[c, k]


def test_pack_rejects_rows_that_do_not_split_into_words() -> None:
    assert not weight_packing.can_pack(6)
    with pytest.raises(ValueError):
        weight_packing.pack_blocks(np.zeros((4, 6), dtype=np.int8))


def test_depthwise_lanes_hold_sign_extended_weights_group_major() -> None:
    rng = np.random.default_rng(5)
    filt = rng.integers(-128, 128, size=(1, 3, 3, 8), dtype=np.int8)
    words = weight_packing.pack_depthwise(filt).astype(np.int64) & 0xFFFFFFFF
    lo = ((words & 0xFFFF) ^ 0x8000) - 0x8000
    hi = ((words >> 16) ^ 0x8000) - 0x8000
    w = filt.reshape(9, 8).astype(np.int64)
    for g in range(2):
        for t in range(9):
            i = 2 * (g * 9 + t)
            assert [lo[i], lo[i + 1], hi[i], hi[i + 1]] == list(w[t, 4 * g:4 * g + 4])


@pytest.mark.parametrize("width,m", [(3, 8), (4, 6), (5, 3)])
def test_depth_multiplier_blocks_give_each_channels_window_sums(width: int, m: int) -> None:
    """Walked as the kernel walks it (per input channel: blocks of four outputs, window rows of
    padded_row bytes, 16 bytes per step of four taps; then the last m % 4 outputs' plain rows),
    the packed filter gives every output's sum over its input channel's window, padding taps
    adding nothing."""
    rng = np.random.default_rng(width)
    c_in, h = 3, 2
    filt = rng.integers(-128, 128, size=(1, h, width, c_in * m), dtype=np.int8)
    win = rng.integers(-128, 128, size=(c_in, h, weight_packing.padded_row(width)))
    packed = weight_packing.pack_depthwise_multiplier(filt, m).astype(np.int64)
    assert packed.size == c_in * m * h * weight_packing.padded_row(width)
    want = np.einsum("hwo,ohw->o", filt[0].astype(np.int64),
                     np.repeat(win[:, :, :width], m, axis=0))
    got, pos = [], 0
    for c in range(c_in):
        x = win[c].reshape(-1)  # the window rows, one after the other
        for _ in range(m // 4):
            acc = np.zeros(4, dtype=np.int64)
            for k in range(0, x.size, 4):
                acc += packed[pos:pos + 16].reshape(4, 4) @ x[k:k + 4]
                pos += 16
            got += list(acc)
        for _ in range(m % 4):
            got.append(int(packed[pos:pos + x.size] @ x))
            pos += x.size
    assert got == list(want)
    with pytest.raises(ValueError):
        weight_packing.pack_depthwise_multiplier(filt, 1)  # multiplier 1: pack_depthwise's
    with pytest.raises(ValueError):  # a window over the kernel's 256-byte copy
        weight_packing.pack_depthwise_multiplier(np.zeros((1, 9, 29, 4), np.int8), 4)


def _srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul, C integer semantics in Python ints."""
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    q = abs(ab + nudge) // 2**31  # C division truncates toward zero
    return q if ab + nudge >= 0 else -q


def _rdbp(x: int, e: int) -> int:
    mask = (1 << e) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if (x & mask) > threshold else 0)


def _tflm_requant(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    shifted = min(max(x * (1 << left), -(2**31)), 2**31 - 1)
    return _rdbp(_srdhm(shifted, m), right)


def _cases() -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(12)
    xs = [0, 1, -1, 2**31 - 1, -(2**31), -(2**31) + 1, 2**30, -(2**30), 12345, -12345]
    xs += [int(v) for v in rng.integers(-(2**31), 2**31, size=300)]
    xs += [int(v) for v in rng.integers(-5000, 5000, size=300)]
    ms = [0, 1, 2**30, 2**31 - 1, 1518500250] + [int(v) for v in
                                                   rng.integers(2**30, 2**31, size=6)]
    shifts = list(range(-31, 8))
    return [(x, m, s) for x in xs for m in ms for s in shifts][::7]


def test_requantization_matches_gemmlowp_formulas(tmp_path: Path) -> None:
    """eq_requantize_double (and its precomputed form, fed from ops_conv.fast_requant) equal
    TFLM's two-step double rounding on edge and random values, every shift from -31 to 7."""
    cases = _cases()
    src = tmp_path / "rq.c"
    src.write_text(
        '#include <stdio.h>\n#include "eq_math.h"\nint main(void) {\n'
        "    long x, m, s, kh, rs; int n = 0;\n"
        '    while (scanf("%ld %ld %ld %ld %ld", &x, &m, &s, &kh, &rs) == 5) {\n'
        "        int32_t a = eq_requantize_double((int32_t)x, (int32_t)m, (int32_t)s);\n"
        "        int32_t b = s <= -2 ? eq_requantize_double_pre((int32_t)x, (int32_t)m, "
        "(int32_t)kh, (int32_t)rs) : a;\n"
        '        printf("%ld %ld\\n", (long)a, (long)b); ++n;\n    }\n    return n == 0;\n}\n')
    exe = tmp_path / "rq"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I",
                    str(runtime_dir() / "include"), str(src), "-o", str(exe)], check=True)
    lines = []
    for x, m, s in cases:
        fast = fast_requant({"multiplier": np.array([m]), "shift": np.array([s])})
        kh, rs = (int(fast[1]), int(fast[2])) if fast is not None else (0, 0)
        lines.append(f"{x} {m} {s} {kh} {rs}")
    out = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True,
                         text=True, check=True).stdout.split()
    got = np.array(out, dtype=np.int64).reshape(-1, 2)
    want = np.array([_tflm_requant(x, m, s) for x, m, s in cases], dtype=np.int64)
    assert np.array_equal(got[:, 0], want)
    assert np.array_equal(got[:, 1], want)


def test_fast_requant_table_only_for_right_shifts_of_two_or_more() -> None:
    t = fast_requant({"multiplier": np.array([1 << 30, 3 << 29]), "shift": np.array([-2, -9])})
    assert t is not None and list(t) == [1 << 30, 1, 1, 3 << 29, 128, 8]
    assert fast_requant({"multiplier": np.array([1 << 30]), "shift": np.array([-1])}) is None
    assert fast_requant({"multiplier": np.array([1 << 30]), "shift": np.array([1])}) is None


def test_fast_table_replaces_the_plain_arrays_and_gives_them_back() -> None:
    """Where the fast table exists the plain multiplier/shift arrays are dropped (8 bytes per
    channel of flash); the LUT kernels get them back from the table, entry for entry."""
    rng = np.random.default_rng(7)
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=9).astype(np.int32)
    shift = rng.integers(-31, -1, size=9).astype(np.int32)
    req = {"per_channel": 1, "multiplier": mult.copy(), "shift": shift.copy()}
    _add_fast_requant(req)
    assert set(req) == {"per_channel", "fast"}
    back = plain_requant(req)
    assert set(back) == {"per_channel", "multiplier", "shift"}
    assert np.array_equal(back["multiplier"], mult) and np.array_equal(back["shift"], shift)
    # a left shift or a shift of -1: no table, the plain arrays stay
    keep = {"per_channel": 0, "multiplier": np.array([1 << 30], np.int32),
            "shift": np.array([-1], np.int32)}
    _add_fast_requant(keep)
    assert set(keep) == {"per_channel", "multiplier", "shift"}


def _model(shape, make):  # noqa: ANN001, ANN202
    def build():  # noqa: ANN202
        keras = keras_layers()
        keras.utils.set_random_seed(2)
        inp = keras.Input(shape)
        return keras.Model(inp, make(keras.layers)(inp))

    return build


PACKED = {
    # packed conv: borders, stride 2, a 2-channel remainder after the four-channel blocks
    "conv6_in8_k3_s2_same": ((9, 7, 8), lambda L: L.Conv2D(6, 3, strides=2, padding="same")),
    # small in_c: whole windows copied (rows padded 9 -> 12 bytes), borders, 2-channel remainder
    "conv18_in3_k3_s2_same": ((9, 8, 3), lambda L: L.Conv2D(18, 3, strides=2, padding="same")),
    # DS-CNN's first layer shape: unpadded 4-byte rows, tall window, clipped on every side
    "conv16_in1_k10x4_s2_same": ((13, 10, 1), lambda L: L.Conv2D(
        16, (10, 4), strides=2, padding="same", activation="relu")),
    # 1x1 as a matrix product, strided, with a remainder channel
    "conv5_1x1_s2": ((6, 8, 4), lambda L: L.Conv2D(5, 1, strides=2)),
    # packed depthwise 3x3, stride 1 and 2: interior runs and clipped borders
    "dw8_k3_same": ((6, 7, 8), lambda L: L.DepthwiseConv2D(3, padding="same")),
    "dw12_k3_s2_same_relu": ((9, 6, 12), lambda L: L.DepthwiseConv2D(
        3, strides=2, padding="same", activation="relu")),
    "dw4_k5_valid": ((7, 7, 4), lambda L: L.DepthwiseConv2D(5)),
    # packed FC with folded input offset: 8 = two blocks, 6 = one block + 2 rows
    "fc6_in16": ((16,), lambda L: L.Dense(6)),
}


@pytest.mark.parametrize("case", list(PACKED))
def test_packed_kernels_bit_exact_on_host(tmp_path: Path, case: str) -> None:
    shape, make = PACKED[case]
    path = tmp_path / "m.tflite"
    path.write_bytes(convert_keras(_model(shape, make), io_dtype="int8"))
    gen = write_edgeq_rt(path, tmp_path / "gen", plan_json=False)
    c = (tmp_path / "gen" / "model.c").read_text()
    assert "filter_packed" in c  # the packed layout is what runs
    assert "static const int8_t tensor" not in c  # no plain filter beside its packed copy
    if ".fast = " in c:  # the table alone: no plain requantization arrays beside it
        assert "_requant_multiplier" not in c and "_requant_shift" not in c
    assert gen.weight_bytes > 0
    assert_bit_exact(path, tmp_path, n=8)


def test_lut_conv_rounds_twice_in_the_single_rounding_build(tmp_path: Path) -> None:
    """LUT-coded convolutions share the int8 conv's requantization: double rounding even in
    the single-rounding build, as LiteRT's reference conv does."""
    def ternary():  # noqa: ANN202
        keras = keras_layers()
        keras.utils.set_random_seed(3)
        L = keras.layers
        inp = keras.Input((8, 8, 3))
        x = L.Conv2D(8, 3, padding="same")(inp)
        x = L.DepthwiseConv2D(3, padding="same")(x)
        model = keras.Model(inp, x)
        rng = np.random.default_rng(3)
        for layer in model.layers[1:]:
            w, b = layer.get_weights()
            layer.set_weights([(np.sign(rng.standard_normal(w.shape)) * 0.2).astype(np.float32),
                               b])
        return model

    path = tmp_path / "t.tflite"
    path.write_bytes(convert_keras(ternary, io_dtype="int8"))
    res = write_edgeq_rt(path, tmp_path / "lut", plan_json=False, weight_coding="lut")
    assert {"eq_conv2d_s8_lut", "eq_depthwise_conv2d_s8_lut"} <= set(res.functions)
    model_c = (tmp_path / "lut" / "model.c").read_text()
    assert "filter_packed" not in model_c and ".fast" not in model_c
    x = random_inputs(path, 30, seed=4)[0]
    got = build_host_model(path, tmp_path / "h", single_rounding=True, result=res).run([x])[0]
    want = run_litert_ref(path, x)[0]
    assert np.array_equal(np.asarray(got).reshape(want.shape), want)


@pytest.mark.parametrize("zp", [-128, 127])
def test_window_copy_fills_with_extreme_input_zero_points(tmp_path: Path, zp: int) -> None:
    """Taps outside the image are filled with the input zero point; at either end of the int8
    range the fill (and the folded bias it cancels) is at its largest."""
    data = convert_keras(_model((7, 6, 3), lambda L: L.Conv2D(16, 3, padding="same")),
                         io_dtype="int8")
    mt = load_model_t(data)
    sg = mt.subgraphs[0]
    sg.tensors[sg.inputs[0]].quantization.zeroPoint = np.array([zp], dtype=np.int64)
    path = tmp_path / "m.tflite"
    path.write_bytes(serialize_model_t(mt))
    write_edgeq_rt(path, tmp_path / "gen", plan_json=False)
    assert ".packed_row = 12" in (tmp_path / "gen" / "model.c").read_text()
    assert_bit_exact(path, tmp_path, n=8)
