"""Per-op sweeps of the conv-family kernels: shapes, strides, paddings, dilations, depth
multipliers, fused activations, per-channel/per-tensor, int16x8, and extreme quantization
(tiny/huge output scales, zero points at the ends of the int8 range). Every case is a tiny Keras
model converted by the real TFLite converter, then edited where the converter would never
produce the parameters, and held bit-exact to TFLM and LiteRT-ref."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_edgeq_rt import assert_bit_exact, convert_keras, keras_layers

from edgeq.tflite import load_model_t, read_tflite_bytes, serialize_model_t

N = 12


def _single(
    shape: tuple[int, ...], make: Callable[[Any], Any], batch: int | None = None
) -> Callable[[], Any]:
    def build() -> Any:
        keras = keras_layers()
        keras.utils.set_random_seed(0)
        inp = keras.Input(shape, batch_size=batch)
        return keras.Model(inp, make(keras.layers)(inp))

    return build


def _check(
    tmp_path: Path,
    build: Callable[[], Any],
    *,
    litert: bool = True,
    dilation: tuple[int, int] | None = None,
    **kw: Any,
) -> Path:
    path = tmp_path / "m.tflite"
    data = convert_keras(build, **kw)
    path.write_bytes(data if dilation is None else _with_dilation(data, dilation))
    assert_bit_exact(path, tmp_path, n=N, litert=litert)
    return path


def _with_dilation(data: bytes, dilation: tuple[int, int]) -> bytes:
    """Set the dilation of every (SAME-padded) convolution. The converter lowers dilated SAME
    convolutions to SPACE_TO_BATCH_ND + CONV_2D + BATCH_TO_SPACE_ND, but a .tflite may carry
    the dilation in the op itself; SAME output shapes do not depend on it."""
    mt = load_model_t(data)
    edited = 0
    for op in mt.subgraphs[0].operators:
        opts = op.builtinOptions
        if opts is not None and hasattr(opts, "dilationHFactor"):
            assert opts.padding == 0  # SAME
            opts.dilationHFactor, opts.dilationWFactor = dilation
            edited += 1
    assert edited == 1
    return serialize_model_t(mt)


CONV_CASES = {
    "k3_s1_same_relu": ((9, 9, 3), dict(filters=8, kernel_size=3, padding="same", activation="relu")),
    "k3_s2_same_even": ((8, 10, 2), dict(filters=4, kernel_size=3, strides=2, padding="same")),
    "k3_s2_valid_relu6": ((9, 7, 3), dict(filters=5, kernel_size=3, strides=2, padding="valid",
                                          activation="relu6")),
    "k5x3_s2x1_same": ((11, 8, 2), dict(filters=6, kernel_size=(5, 3), strides=(2, 1),
                                         padding="same")),
    # dilation is edited in after conversion (see _check_dilated)
    "k3_dil2_same": ((10, 10, 3), dict(filters=4, kernel_size=3, padding="same", dilation=(2, 2))),
    "k2_dil3x2_same": ((12, 9, 2), dict(filters=3, kernel_size=2, padding="same", dilation=(3, 2))),
    "k1_pointwise_nobias": ((6, 6, 16), dict(filters=12, kernel_size=1, use_bias=False)),
    "k4_s3_same": ((13, 13, 1), dict(filters=8, kernel_size=4, strides=3, padding="same")),
}


def _conv(kw: dict[str, Any]) -> Callable[[Any], Any]:
    def make(L: Any) -> Any:
        act = kw.get("activation")
        conv = L.Conv2D(**{k: v for k, v in kw.items() if k not in ("activation", "dilation")})
        if act == "relu6":
            return lambda x: L.ReLU(6.0)(conv(x))
        if act == "relu":
            return lambda x: L.ReLU()(conv(x))
        return conv

    return make


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_sweep(tmp_path: Path, case: str) -> None:
    shape, kw = CONV_CASES[case]
    _check(tmp_path, _single(shape, _conv(kw)), dilation=kw.get("dilation"))


@pytest.mark.parametrize("case", ["k3_s2_same_even", "k3_dil2_same"])
def test_conv2d_per_tensor(tmp_path: Path, case: str) -> None:
    shape, kw = CONV_CASES[case]
    _check(tmp_path, _single(shape, _conv(kw)), per_channel=False, dilation=kw.get("dilation"))


DW_CASES = {
    "m1_k3_same_relu": ((8, 8, 4), dict(kernel_size=3, padding="same", activation="relu")),
    "m2_k3_s2_valid": ((9, 9, 3), dict(kernel_size=3, strides=2, depth_multiplier=2)),
    "m3_k5x3_same": ((7, 6, 2), dict(kernel_size=(5, 3), depth_multiplier=3, padding="same")),
    "m1_dil2_same_relu6": ((10, 10, 4), dict(kernel_size=3, padding="same", activation="relu6",
                                              dilation=(2, 2))),
    "m2_dil3_s2_same": ((11, 11, 2), dict(kernel_size=3, strides=2, padding="same",
                                           depth_multiplier=2, dilation=(3, 3))),
    "m4_from_1ch_s2_same": ((12, 10, 1), dict(kernel_size=3, strides=2, depth_multiplier=4,
                                               padding="same")),
}


def _dw(kw: dict[str, Any]) -> Callable[[Any], Any]:
    def make(L: Any) -> Any:
        act = kw.get("activation")
        dw = L.DepthwiseConv2D(**{k: v for k, v in kw.items() if k not in ("activation", "dilation")})
        if act == "relu6":
            return lambda x: L.ReLU(6.0)(dw(x))
        if act == "relu":
            return lambda x: L.ReLU()(dw(x))
        return dw

    return make


@pytest.mark.parametrize("case", list(DW_CASES))
def test_depthwise_conv2d_sweep(tmp_path: Path, case: str) -> None:
    shape, kw = DW_CASES[case]
    path = _check(tmp_path, _single(shape, _dw(kw)), dilation=kw.get("dilation"))
    assert "DEPTHWISE_CONV_2D" in read_tflite_bytes(path.read_bytes()).op_names


FC_CASES = {
    "relu": ((20,), lambda L: L.Dense(7, activation="relu")),
    "nobias": ((33,), lambda L: L.Dense(5, use_bias=False)),
    "wide": ((300,), lambda L: L.Dense(2)),
}


@pytest.mark.parametrize("case", list(FC_CASES))
@pytest.mark.parametrize("per_channel", [True, False])
def test_fully_connected_sweep(tmp_path: Path, case: str, per_channel: bool) -> None:
    shape, make = FC_CASES[case]
    path = _check(tmp_path, _single(shape, make), per_channel=per_channel)
    assert "FULLY_CONNECTED" in read_tflite_bytes(path.read_bytes()).op_names


POOL_CASES = {
    "max2_valid": lambda L: L.MaxPooling2D(2),
    "max3_s2_same": lambda L: L.MaxPooling2D(3, strides=2, padding="same"),
    "avg2_valid": lambda L: L.AveragePooling2D(2),
    "avg3_s2_same": lambda L: L.AveragePooling2D(3, strides=2, padding="same"),
    "avg3x2_s1_same": lambda L: L.AveragePooling2D((3, 2), strides=1, padding="same"),
    "avg_global": lambda L: L.AveragePooling2D((7, 5)),
}


@pytest.mark.parametrize("case", list(POOL_CASES))
def test_pool_sweep(tmp_path: Path, case: str) -> None:
    _check(tmp_path, _single((7, 5, 3), POOL_CASES[case]))


def test_conv1d_expand_dims_and_reshape_are_views(tmp_path: Path) -> None:
    from edgeq.codegen.edgeq_rt import write_edgeq_rt

    path = _check(tmp_path, _single((20, 3), lambda L: L.Conv1D(4, 3, padding="same")))
    ops = read_tflite_bytes(path.read_bytes()).op_names
    # batch 1 lets the converter write the ExpandDims as a RESHAPE; either way both are views
    assert ops[0] in ("EXPAND_DIMS", "RESHAPE") and "RESHAPE" in ops and "CONV_2D" in ops
    res = write_edgeq_rt(path, tmp_path / "g")
    assert [layer.op for layer in res.layers] == ["CONV_2D"] and len(res.views) == 2


TCONV_CASES = {
    "k3_s2_same": ((5, 4, 3), lambda L: L.Conv2DTranspose(4, 3, strides=2, padding="same")),
    "k4x2_s2x1_valid_relu": ((4, 5, 2), lambda L: L.Conv2DTranspose(
        3, (4, 2), strides=(2, 1), padding="valid", activation="relu")),
    "k2_s2_nobias": ((3, 3, 4), lambda L: L.Conv2DTranspose(5, 2, strides=2, use_bias=False)),
}


@pytest.mark.parametrize("case", list(TCONV_CASES))
@pytest.mark.parametrize("mode", ["int8", "int16x8"])
def test_transpose_conv_sweep(tmp_path: Path, case: str, mode: str) -> None:
    shape, make = TCONV_CASES[case]
    # a fixed batch keeps the converter from computing the output shape at run time
    path = _check(tmp_path, _single(shape, make, batch=1), mode=mode)
    assert "TRANSPOSE_CONV" in read_tflite_bytes(path.read_bytes()).op_names


SCRATCH_MAIN = r"""
#include <stdio.h>
#include "eq_kernels_conv.h"
int main(void)
{
    static const int32_t one[1] = {0};
    const eq_transpose_conv_params p = {
        .batches = %(batches)d, .in_h = %(in_h)d, .in_w = %(in_w)d, .in_c = %(in_c)d,
        .out_h = %(out_h)d, .out_w = %(out_w)d, .out_c = %(out_c)d,
        .requant = { .per_channel = 0, .multiplier = one, .shift = one } };
    printf("%%ld %%ld\n", (long)eq_transpose_conv_s8_get_buffer_size(&p),
           (long)eq_transpose_conv_s16_get_buffer_size(&p));
    return 0;
}
"""


def test_scratch_size_functions_agree_with_python(tmp_path: Path) -> None:
    """The planner reserves what the C kernel says it needs: the two size functions agree."""
    import subprocess

    from edgeq.codegen.edgeq_rt import runtime_dir
    from edgeq.codegen.kernels import kernel_source
    from edgeq.codegen.ops_conv import transpose_conv_scratch_bytes

    rng = np.random.default_rng(2)
    srcs = [str(kernel_source("eq_transpose_conv_s8")), str(kernel_source("eq_transpose_conv_s16"))]
    for k in range(4):
        dims = dict(zip(("batches", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c"),
                        (int(v) for v in rng.integers(1, 40, 7)), strict=True))
        main = tmp_path / f"main{k}.c"
        main.write_text(SCRATCH_MAIN % dims)
        exe = tmp_path / f"scratch{k}"
        subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I",
                        str(runtime_dir() / "include"), str(main), *srcs, "-o", str(exe)],
                       check=True)
        c_sizes = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True,
                                                  check=True).stdout.split()]
        assert c_sizes == [transpose_conv_scratch_bytes(dims, "int8"),
                           transpose_conv_scratch_bytes(dims, "int16")]


def test_two_inputs_three_outputs_one_also_read_later(tmp_path: Path) -> None:
    """Model outputs stay intact to the end even when a later layer reads them."""
    from edgeq.quantize.ptq import convert_ptq

    keras = keras_layers()
    keras.utils.set_random_seed(0)
    # explicit names: the converter orders inputs by name, default names depend on history
    a = keras.Input((6, 6, 2), batch_size=1, name="a_image")
    b = keras.Input((10,), batch_size=1, name="b_vector")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(a)
    y = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    model = keras.Model([a, b], [y, keras.layers.Dense(5)(b), x])
    rng = np.random.default_rng(0)

    def rep():  # noqa: ANN202
        for _ in range(8):
            yield [rng.standard_normal((1, 6, 6, 2)).astype(np.float32),
                   rng.standard_normal((1, 10)).astype(np.float32)]

    path = tmp_path / "multi.tflite"
    path.write_bytes(convert_ptq(model, rep))
    m = read_tflite_bytes(path.read_bytes())
    assert len(m.inputs) == 2 and len(m.outputs) == 3
    assert assert_bit_exact(path, tmp_path, n=N) == {"tflm": 0, "litert": 0}


# --- int16x8 -------------------------------------------------------------------------------------


INT16_CASES = {
    "conv_s2_same": ((9, 9, 2), lambda L: L.Conv2D(4, 3, strides=2, padding="same")),
    "conv_relu": ((8, 8, 2), lambda L: L.Conv2D(3, 3, activation="relu")),
    "dw_m2_same": ((8, 8, 3), lambda L: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")),
    "fc": ((40,), lambda L: L.Dense(6)),
    "maxpool": ((6, 6, 3), lambda L: L.MaxPooling2D(2)),
    "avgpool_same": ((7, 7, 2), lambda L: L.AveragePooling2D(3, strides=2, padding="same")),
}


@pytest.mark.parametrize("case", list(INT16_CASES))
def test_int16x8_sweep(tmp_path: Path, case: str) -> None:
    shape, make = INT16_CASES[case]
    path = _check(tmp_path, _single(shape, make), mode="int16x8")
    assert read_tflite_bytes(path.read_bytes()).input_tensors[0].dtype == "int16"


# --- extreme quantization parameters (edited into converted models) ------------------------------


def _edit_quant(data: bytes, edits: dict[int, tuple[float | None, int | None]]) -> bytes:
    """Replace (scale, zero point) of activation tensors: values a converter never picks."""
    mt = load_model_t(data)
    tensors = mt.subgraphs[0].tensors
    for idx, (scale, zp) in edits.items():
        q = tensors[idx].quantization
        if scale is not None:
            q.scale = np.array([scale], dtype=np.float32)
        if zp is not None:
            q.zeroPoint = np.array([zp], dtype=np.int64)
    return serialize_model_t(mt)


EXTREMES = {
    "input_zp_-128": {"in": (None, -128)},
    "input_zp_127": {"in": (None, 127)},
    "output_zp_-128": {"out": (None, -128)},
    "output_zp_127": {"out": (None, 127)},
    "tiny_output_scale": {"out": (1e-7, 3)},
    "huge_output_scale": {"out": (1e4, -5)},
    "both_ends": {"in": (None, 127), "out": (3e-6, -128)},
}


@pytest.fixture(scope="module")
def converted() -> Callable[[str, Callable[[], Any]], bytes]:
    """Conversions shared by the tests of this module (each costs seconds)."""
    cache: dict[str, bytes] = {}

    def get(key: str, build: Callable[[], Any]) -> bytes:
        if key not in cache:
            cache[key] = convert_keras(build)
        return cache[key]

    return get


@pytest.mark.parametrize("extreme", list(EXTREMES))
@pytest.mark.parametrize("op", ["conv", "depthwise", "fc", "avgpool", "maxpool"])
def test_extreme_quantization(
    tmp_path: Path, converted: Callable[[str, Callable[[], Any]], bytes], op: str, extreme: str
) -> None:
    makers = {
        "conv": ((6, 6, 3), lambda L: L.Conv2D(4, 3, padding="same", activation="relu")),
        "depthwise": ((6, 6, 3), lambda L: L.DepthwiseConv2D(3, depth_multiplier=2)),
        "fc": ((24,), lambda L: L.Dense(6)),
        "avgpool": ((6, 6, 3), lambda L: L.AveragePooling2D(2, padding="same")),
        "maxpool": ((6, 6, 3), lambda L: L.MaxPooling2D(2)),
    }
    shape, make = makers[op]
    data = converted(op, _single(shape, make))
    model = read_tflite_bytes(data)
    main = model.operators[0]
    edits: dict[int, tuple[float | None, int | None]] = {}
    spec = EXTREMES[extreme]
    if op in ("avgpool", "maxpool"):
        # pooling requires equal input and output quantization: edit both together
        scale, zp = spec.get("out", spec.get("in", (None, None)))
        edits = {main.inputs[0]: (scale, zp), main.outputs[0]: (scale, zp)}
    else:
        if "in" in spec:
            edits[main.inputs[0]] = spec["in"]
        if "out" in spec:
            edits[main.outputs[0]] = spec["out"]
    path = tmp_path / "edited.tflite"
    path.write_bytes(_edit_quant(data, edits))
    assert_bit_exact(path, tmp_path, n=N)


# --- QUANTIZE / DEQUANTIZE ---------------------------------------------------------------------


def test_float_io_quantize_and_dequantize(tmp_path: Path) -> None:
    path = _check(tmp_path, _single((10,), lambda L: L.Dense(4)), io_dtype="float32")
    ops = read_tflite_bytes(path.read_bytes()).op_names
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"


def test_float_io_int16x8(tmp_path: Path) -> None:
    path = _check(tmp_path, _single((10,), lambda L: L.Dense(4)), mode="int16x8",
                  io_dtype="float32")
    assert "QUANTIZE" in read_tflite_bytes(path.read_bytes()).op_names


@pytest.mark.parametrize(
    "in_type, in_scale, in_zp, out_scale, out_zp",
    [
        ("int8", 0.05, 3, 0.02, -7),  # int8 -> int8, scale up
        ("int8", 0.01, -128, 0.3, 127),  # int8 -> int8, scale down, extreme zero points
        ("int16", 0.0005, 0, 0.05, 10),  # int16 -> int8
        ("uint8", 0.02, 128, 0.02, 0),  # uint8 input of a uint8-I/O model
        ("uint8", 0.1, 255, 0.013, -128),
    ],
)
def test_requantize_between_integer_types(
    tmp_path: Path, in_type: str, in_scale: float, in_zp: int, out_scale: float, out_zp: int
) -> None:
    """A QUANTIZE from an integer tensor, made by editing a float-I/O model's first op."""
    data = convert_keras(_single((16,), lambda L: L.Dense(4)), io_dtype="float32")
    mt = load_model_t(data)
    sg = mt.subgraphs[0]
    sg.operators = sg.operators[:1]
    q_in, q_out = sg.operators[0].inputs[0], sg.operators[0].outputs[0]
    sg.outputs = [int(q_out)]
    t_in = sg.tensors[q_in]
    t_in.type = {"int8": 9, "int16": 7, "uint8": 3}[in_type]
    from ai_edge_litert import schema_py_generated as s

    t_in.quantization = s.QuantizationParametersT()
    t_in.quantization.scale = np.array([in_scale], dtype=np.float32)
    t_in.quantization.zeroPoint = np.array([in_zp], dtype=np.int64)
    t_out = sg.tensors[q_out].quantization
    t_out.scale = np.array([out_scale], dtype=np.float32)
    t_out.zeroPoint = np.array([out_zp], dtype=np.int64)
    path = tmp_path / "requant.tflite"
    path.write_bytes(serialize_model_t(mt))
    assert read_tflite_bytes(path.read_bytes()).operators[0].opcode == "QUANTIZE"
    assert_bit_exact(path, tmp_path, n=N)
