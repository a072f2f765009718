"""edgeq-rt elementwise-family kernels: bit-exact with TFLite Micro (and LiteRT BUILTIN_REF).

Each case builds a one-operator .tflite (flatbuffers object API, so any quantization can be
planted), lowers it with edgeq.codegen.ops_elementwise, compiles the kernel with host gcc
-Wall -Wextra -Werror, runs random inputs over the full integer range, and compares every
output element with the TFLM interpreter and LiteRT's reference kernels. Real models: the seanet
int16 single-op models against their golden CSVs, and mobilenet_v2's TRANSPOSE/PAD/ADD/MEAN.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_elementwise import (
    CFLAGS,
    ELEMENTWISE_KERNELS,
    RUNTIME,
    T,
    build_kernel_lib,
    build_model,
    compare_with_tflm,
    extract_op,
    lower_single,
    opts,
    random_inputs,
    run_kernel,
)

from edgeq.codegen.lowering import registered_ops
from edgeq.codegen.ops_elementwise import calculate_input_radius, gen_lut_int16
from edgeq.errors import CodegenError
from edgeq.tflite import read_tflite_bytes

NONE, RELU, RELU_N1_TO_1, RELU6 = 0, 1, 2, 3
# random quantization configs per op (raise for a deeper sweep; 40 per op were run clean)
SWEEP_CASES = int(os.environ.get("EDGEQ_SWEEP_CASES", "6"))


def _const(values: list[int] | np.ndarray, shape: tuple[int, ...] | None = None) -> T:
    arr = np.asarray(values, dtype=np.int32)
    return T(shape or arr.shape, dtype="int32", scale=None, data=arr)


def _assert_exact(model: bytes, tmp: Path, n: int = 24, litert: bool = True) -> None:
    got, want, got_lr, ref = compare_with_tflm(model, tmp, n=n, litert=litert)
    bad = np.argwhere(got != want)
    assert bad.size == 0, (
        f"{len(bad)} of {got.size} outputs differ from TFLM; first at {bad[0].tolist()}: "
        f"edgeq-rt {got[tuple(bad[0])]} vs TFLM {want[tuple(bad[0])]}"
    )
    if ref is not None:
        assert got_lr is not None
        assert np.array_equal(got_lr, ref), (
            f"LiteRT-compatible build: {int((got_lr != ref).sum())} outputs differ from LiteRT"
        )


# ---------------------------------------------------------------------------------------------
# binary arithmetic: shapes, broadcasting, fused activations, extreme quantization

BINARY_CASES: list[tuple[str, str, tuple, tuple, tuple, tuple, tuple, tuple, int]] = [
    # op, dtype, shape1, shape2, out shape, (s1, z1), (s2, z2), (so, zo), activation
    ("ADD", "int8", (1, 4, 4, 3), (1, 4, 4, 3), (1, 4, 4, 3), (0.1, 3), (0.07, -5), (0.12, -2),
     NONE),
    ("ADD", "int8", (1, 5, 3, 8), (1, 1, 1, 8), (1, 5, 3, 8), (0.02, -128), (0.5, 127),
     (0.4, 10), RELU),
    ("ADD", "int8", (1, 4, 1, 3), (1, 1, 6, 1), (1, 4, 6, 3), (1e-4, 0), (10.0, -3), (20.0, 5),
     RELU6),
    ("ADD", "int8", (1, 7), (1, 7), (1, 7), (1e-6, -128), (1e-6, 127), (2e-6, -128),
     RELU_N1_TO_1),
    ("ADD", "int8", (1, 2, 3, 4, 5), (1, 1, 3, 1, 5), (1, 2, 3, 4, 5), (0.3, 1), (0.3, 1),
     (0.6, 0), NONE),
    ("SUB", "int8", (1, 4, 4, 3), (1, 4, 4, 3), (1, 4, 4, 3), (0.1, 3), (0.07, -5), (0.12, -2),
     NONE),
    ("SUB", "int8", (1, 3, 5), (1, 1, 5), (1, 3, 5), (0.05, -128), (0.9, 127), (1.0, 0), RELU),
    ("MUL", "int8", (1, 4, 4, 3), (1, 4, 4, 3), (1, 4, 4, 3), (0.1, 3), (0.07, -5), (0.3, -2),
     NONE),
    ("MUL", "int8", (1, 4, 1, 3), (1, 1, 5, 1), (1, 4, 5, 3), (0.1, -128), (0.07, 127),
     (0.05, -2), RELU6),
    ("MUL", "int8", (1, 6, 2), (1, 6, 2), (1, 6, 2), (1e-3, 0), (1e-3, 5), (1e-5, -128), RELU),
    ("MUL", "int8", (1, 9), (1, 1), (1, 9), (2.0, 0), (3.0, 0), (50.0, 0), NONE),
    ("ADD", "int16", (1, 3, 8), (1, 3, 8), (1, 3, 8), (1e-3, 0), (4e-4, 0), (1.5e-3, 0), NONE),
    ("ADD", "int16", (1, 3, 8), (1, 1, 8), (1, 3, 8), (1e-4, 0), (2e-3, 0), (2e-3, 0), RELU),
    ("SUB", "int16", (1, 2, 6), (1, 2, 6), (1, 2, 6), (3e-4, 0), (3e-4, 0), (5e-4, 0), NONE),
    ("MUL", "int16", (1, 2, 6), (1, 2, 6), (1, 2, 6), (3e-4, 0), (2e-4, 0), (1e-4, 0), NONE),
]


@pytest.mark.parametrize("case", BINARY_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}x{c[3]}")
def test_binary_ops_bit_exact(case: tuple[Any, ...], tmp_path: Path) -> None:
    op, dtype, sh1, sh2, sho, q1, q2, qo, act = case
    o, kind = opts(f"{op.capitalize()}Options", fusedActivationFunction=act)
    model = build_model(op, [T(sh1, dtype, *q1), T(sh2, dtype, *q2)], [T(sho, dtype, *qo)],
                        o, kind)
    _assert_exact(model, tmp_path)


def test_add_with_constant_operand(tmp_path: Path) -> None:
    """A constant second input (a broadcast bias) is passed as a const array."""
    bias = T((1, 1, 1, 4), "int8", 0.02, -7, data=np.array([[[[-128, -3, 40, 127]]]]))
    o, kind = opts("AddOptions", fusedActivationFunction=RELU)
    model = build_model("ADD", [T((1, 3, 3, 4), "int8", 0.05, 2), bias],
                        [T((1, 3, 3, 4), "int8", 0.06, -20)], o, kind)
    call = lower_single(model)
    assert call.params["shape"]["broadcast"] == 1
    _assert_exact(model, tmp_path)


# ---------------------------------------------------------------------------------------------
# softmax


@pytest.mark.parametrize(
    "shape,scale,zp,beta,out",
    [
        ((1, 10), 0.1, 3, 1.0, "int8"),
        ((1, 3, 7), 0.5, -3, 1.0, "int8"),
        ((1, 12), 1e-3, -128, 1.0, "int8"),
        ((1, 2, 2, 33), 4.0, 127, 0.5, "int8"),
        ((1, 10), 0.05, 0, 2.0, "int8"),
        ((1, 10), 0.1, 3, 1.0, "int16"),
    ],
)
def test_softmax_int8_bit_exact(shape: tuple[int, ...], scale: float, zp: int, beta: float,
                                out: str, tmp_path: Path) -> None:
    oq = (1 / 256, -128) if out == "int8" else (1 / 65536, -32768)
    o, kind = opts("SoftmaxOptions", beta=beta)
    model = build_model("SOFTMAX", [T(shape, "int8", scale, zp)], [T(shape, out, *oq)], o, kind)
    _assert_exact(model, tmp_path)


@pytest.mark.parametrize("scale", [1e-3, 2e-4, 3e-2])
def test_softmax_int16_lut_bit_exact(scale: float, tmp_path: Path) -> None:
    o, kind = opts("SoftmaxOptions", beta=1.0)
    model = build_model("SOFTMAX", [T((1, 2, 16), "int16", scale, 0)],
                        [T((1, 2, 16), "int16", 1 / 32768, 0)], o, kind)
    _assert_exact(model, tmp_path)


def test_int16_softmax_luts_match_their_functions() -> None:
    """The generated tables sample exp on [-10, 0] and 1/(1+x) on [0, 1] in Q0.15."""
    exp_lut = gen_lut_int16(lambda x: np.float32(np.exp(x)), -10.0, 0.0, -1.0, 1.0)
    assert exp_lut.shape == (513,) and exp_lut.dtype == np.int16
    assert exp_lut[-1] == 32767 and abs(int(exp_lut[0]) - round(np.exp(-10) * 32768)) <= 1
    xs = np.linspace(-10, 0, 513)
    assert np.max(np.abs(exp_lut / 32768 - np.exp(xs))) < 2e-4


def test_input_radius_matches_tflite_formula() -> None:
    # (2^5 - 1) * 2^26 / 2^left_shift, floored
    assert calculate_input_radius(5, 26) == 31
    assert calculate_input_radius(4, 20) == 15 * 2**27 // 2**20


# ---------------------------------------------------------------------------------------------
# mean


@pytest.mark.parametrize(
    "shape,axes,keep,qin,qout",
    [
        ((1, 5, 6, 4), [1, 2], True, (0.1, 3), (0.05, -1)),
        ((1, 5, 6, 4), [1, 2], False, (0.1, 3), (0.1, 3)),
        ((1, 7, 7, 16), [2, 1], True, (0.02, -128), (0.003, 127)),
        ((1, 3, 4, 5), [-1], False, (0.5, 0), (0.6, 10)),
        ((1, 3, 4, 5), [1], True, (1e-4, 5), (1e-4, 5)),
        ((1, 8, 9), [1, 2], False, (0.05, -20), (2e-3, 0)),
        ((1, 16, 16, 3), [1, 2], True, (2.0, 100), (0.01, -100)),
    ],
)
def test_mean_bit_exact(shape: tuple[int, ...], axes: list[int], keep: bool, qin: tuple,
                        qout: tuple, tmp_path: Path) -> None:
    out_shape = [1 if (k in [a % len(shape) for a in axes]) else d for k, d in enumerate(shape)]
    if not keep:
        out_shape = [d for k, d in enumerate(shape) if k not in [a % len(shape) for a in axes]]
    o, kind = opts("ReducerOptions", keepDims=keep)
    model = build_model("MEAN", [T(shape, "int8", *qin), _const(axes)],
                        [T(tuple(out_shape), "int8", *qout)], o, kind)
    _assert_exact(model, tmp_path)


def test_mean_int16(tmp_path: Path) -> None:
    o, kind = opts("ReducerOptions", keepDims=True)
    model = build_model("MEAN", [T((1, 4, 5, 6), "int16", 1e-3, 0), _const([1, 2])],
                        [T((1, 1, 1, 6), "int16", 2e-4, 0)], o, kind)
    _assert_exact(model, tmp_path, litert=False)


# ---------------------------------------------------------------------------------------------
# activations


UNARY_CASES: list[tuple[str, str, tuple, tuple, Any]] = [
    # op, dtype, (si, zi), (so, zo), options
    ("RELU", "int8", (0.1, 3), (0.05, -128), None),
    ("RELU", "int8", (0.02, -128), (0.2, 127), None),
    ("RELU", "int16", (1e-3, 0), (5e-4, 0), None),
    ("RELU6", "int8", (0.1, 3), (0.1, 3), None),
    ("RELU6", "int8", (0.01, -128), (0.01, -128), None),
    ("RELU6", "int16", (1e-3, 0), (1e-3, 0), None),
    ("LEAKY_RELU", "int8", (0.1, 3), (0.07, -10), ("LeakyReluOptions", 0.2)),
    ("LEAKY_RELU", "int8", (0.5, -128), (0.01, 127), ("LeakyReluOptions", 0.01)),
    ("LEAKY_RELU", "int8", (0.03, 20), (0.04, 0), ("LeakyReluOptions", 2.5)),
    ("LEAKY_RELU", "int16", (1e-3, 0), (9e-4, 0), ("LeakyReluOptions", 0.3)),
    ("LOGISTIC", "int8", (0.1, 3), (1 / 256, -128), None),
    ("LOGISTIC", "int8", (1e-3, -128), (1 / 256, -128), None),
    ("LOGISTIC", "int8", (0.5, 127), (1 / 256, -128), None),
    ("TANH", "int8", (0.05, 3), (1 / 128, 0), None),
    ("TANH", "int8", (1.0, -128), (1 / 128, 0), None),
    ("TANH", "int8", (2e-3, 60), (1 / 128, 0), None),
    ("HARD_SWISH", "int8", (0.05, 3), (0.03, -50), None),
    ("HARD_SWISH", "int8", (1e-3, -128), (0.5, 127), None),
    ("HARD_SWISH", "int8", (0.2, 127), (0.2, -128), None),
]


@pytest.mark.parametrize("case", UNARY_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2][0]}")
def test_activations_bit_exact(case: tuple[Any, ...], tmp_path: Path) -> None:
    op, dtype, qi, qo, options = case
    shape = (1, 4, 5, 7)
    o, kind = (None, None) if options is None else opts(options[0], alpha=options[1])
    model = build_model(op, [T(shape, dtype, *qi)], [T(shape, dtype, *qo)], o, kind)
    # exhaustive over the int8 range plus random samples
    xs = random_inputs(model, 24)
    if dtype == "int8":
        xs[0][0].reshape(-1)[:] = np.resize(np.arange(-128, 128, dtype=np.int8), 140)
    got, want, got_lr, ref = compare_with_tflm(model, tmp_path, inputs=xs, litert=True)
    assert np.array_equal(got, want), f"{int((got != want).sum())} outputs differ from TFLM"
    assert got_lr is not None and np.array_equal(got_lr, ref)


# ---------------------------------------------------------------------------------------------
# data movement


@pytest.mark.parametrize(
    "dtype,shape,paddings,const_value",
    [
        ("int8", (1, 3, 3, 2), [[0, 0], [1, 2], [2, 1], [0, 1]], None),
        ("int8", (1, 5), [[0, 0], [3, 0]], None),
        ("int8", (1, 2, 3), [[0, 0], [0, 0], [4, 4]], -100),
        ("int16", (1, 2, 3, 4), [[0, 0], [1, 1], [0, 3], [2, 0]], None),
    ],
)
def test_pad_bit_exact(dtype: str, shape: tuple[int, ...], paddings: list[list[int]],
                       const_value: int | None, tmp_path: Path) -> None:
    pads = np.asarray(paddings)
    out_shape = tuple(int(d + a + b) for d, (a, b) in zip(shape, paddings, strict=True))
    zp = -7 if dtype == "int8" else 0
    inputs = [T(shape, dtype, 0.1, zp), _const(pads)]
    op = "PAD"
    if const_value is not None:
        op = "PADV2"
        inputs.append(T((1,), dtype, 0.1, zp, data=np.array([const_value])))
    model = build_model(op, inputs, [T(out_shape, dtype, 0.1, zp)])
    _assert_exact(model, tmp_path)


@pytest.mark.parametrize(
    "shape,perm",
    [((1, 3, 4, 5), [0, 3, 1, 2]), ((1, 6, 7), [0, 2, 1]), ((1, 2, 3, 4, 5), [0, 4, 2, 3, 1]),
     ((1, 8, 3), [0, 1, 2])],
)
@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_transpose_bit_exact(shape: tuple[int, ...], perm: list[int], dtype: str,
                             tmp_path: Path) -> None:
    out_shape = tuple(shape[p] for p in perm)
    o, kind = opts("TransposeOptions")
    model = build_model("TRANSPOSE", [T(shape, dtype, 0.1, 0), _const(perm)],
                        [T(out_shape, dtype, 0.1, 0)], o, kind)
    _assert_exact(model, tmp_path)


@pytest.mark.parametrize(
    "shapes,axis",
    [([(1, 2, 2, 3), (1, 2, 2, 5)], 3), ([(1, 2, 3), (1, 4, 3), (1, 1, 3)], 1),
     ([(1, 2, 2, 3), (1, 2, 2, 3)], -2)],
)
def test_concatenation_bit_exact(shapes: list[tuple[int, ...]], axis: int,
                                 tmp_path: Path) -> None:
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    o, kind = opts("ConcatenationOptions", axis=axis)
    model = build_model("CONCATENATION", [T(s, "int8", 0.1, 3) for s in shapes],
                        [T(tuple(out), "int8", 0.1, 3)], o, kind)
    _assert_exact(model, tmp_path)


@pytest.mark.parametrize(
    "shape,begin,end,strides,masks,out_shape",
    [
        ((1, 8, 6, 2), [0, -6, 0, 0], [0, 0, 0, 2], [1, 1, 1, 1], (13, 15, 0), (1, 6, 6, 2)),
        ((1, 7, 5), [0, 6, 1], [1, 0, 5], [1, -2, 2], (0, 0, 0), (1, 3, 2)),
        ((1, 4, 6), [0, 2, 0], [1, 3, 6], [1, 1, 3], (0, 0, 2), (1, 2)),
    ],
)
def test_strided_slice_bit_exact(shape: tuple, begin: list, end: list, strides: list,
                                 masks: tuple, out_shape: tuple, tmp_path: Path) -> None:
    o, kind = opts("StridedSliceOptions", beginMask=masks[0], endMask=masks[1],
                   shrinkAxisMask=masks[2])
    model = build_model("STRIDED_SLICE",
                        [T(shape, "int8", 0.1, 0), _const(begin), _const(end), _const(strides)],
                        [T(out_shape, "int8", 0.1, 0)], o, kind)
    _assert_exact(model, tmp_path)


# ---------------------------------------------------------------------------------------------
# refusals: where TFLM's Prepare fails (or edgeq-rt has no kernel), codegen says so in one line


def _refused(model: bytes) -> str:
    with pytest.raises(CodegenError) as exc:
        lower_single(model)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("operator 0 (")
    return msg


def test_refusals_name_the_problem_and_the_fix() -> None:
    o, kind = opts("ConcatenationOptions", axis=1)
    msg = _refused(build_model("CONCATENATION", [T((1, 2), "int8", 0.1, 0),
                                                 T((1, 2), "int8", 0.2, 0)],
                               [T((1, 4), "int8", 0.1, 0)], o, kind))
    assert "scale or zero point" in msg and "re-quantize" in msg
    msg = _refused(build_model("LOGISTIC", [T((1, 4), "int8", 0.1, 0)],
                               [T((1, 4), "int8", 1 / 256, 0)]))
    assert "zero point -128" in msg
    o, kind = opts("SoftmaxOptions", beta=1.0)
    msg = _refused(build_model("SOFTMAX", [T((1, 4), "int8", 0.1, 0)],
                               [T((1, 4), "int8", 0.1, -128)], o, kind))
    assert "1/256" in msg
    o, kind = opts("AddOptions", fusedActivationFunction=0)
    msg = _refused(build_model("ADD", [T((1, 4), "float32", None), T((1, 4), "float32", None)],
                               [T((1, 4), "float32", None)], o, kind))
    assert "float32" in msg and "quantize" in msg
    o, kind = opts("MulOptions", fusedActivationFunction=0)
    msg = _refused(build_model("MUL", [T((1, 4), "int16", 0.1, 3), T((1, 4), "int16", 0.1, 0)],
                               [T((1, 4), "int16", 0.1, 0)], o, kind))
    assert "zero points of 0" in msg
    msg = _refused(build_model("HARD_SWISH", [T((1, 4), "int8", 0.5, 0)],
                               [T((1, 4), "int8", 1e-3, 0)]))
    assert "HARD_SWISH" in msg


def test_every_elementwise_op_is_registered() -> None:
    ops = registered_ops()
    for name in ["ADD", "SUB", "MUL", "SOFTMAX", "MEAN", "RELU", "RELU6", "LEAKY_RELU",
                 "LOGISTIC", "TANH", "HARD_SWISH", "PAD", "PADV2", "TRANSPOSE", "CONCATENATION",
                 "STRIDED_SLICE"]:
        assert name in ops, name


# ---------------------------------------------------------------------------------------------
# build options and cross compilation


def test_single_rounding_build_is_unchanged(tmp_path: Path) -> None:
    """ADD/SUB/MUL/SOFTMAX round twice in both oracles, so EDGEQ_RT_SINGLE_ROUNDING (which
    switches FULLY_CONNECTED to LiteRT's single rounding) must not change them."""
    o, kind = opts("MulOptions", fusedActivationFunction=0)
    model = build_model("MUL", [T((1, 6, 5), "int8", 0.1, 3), T((1, 6, 5), "int8", 0.07, -5)],
                        [T((1, 6, 5), "int8", 0.03, -2)], o, kind)
    xs = random_inputs(model, 16)
    call = lower_single(model)
    a = run_kernel(call, model, xs, tmp_path / "double")
    b = run_kernel(call, model, xs, tmp_path / "single", ("-DEDGEQ_RT_SINGLE_ROUNDING",))
    assert np.array_equal(a, b)


def test_kernels_cross_compile_for_cortex_m4(tmp_path: Path) -> None:
    lib = build_kernel_lib(tmp_path, ("-mcpu=cortex-m4", "-mthumb", "-O2"),
                           compiler="arm-none-eabi-gcc")
    assert lib.stat().st_size > 0
    nm = subprocess.run(["arm-none-eabi-nm", str(lib)], check=True, capture_output=True,
                        text=True).stdout
    for fn in ["eq_add_s8", "eq_softmax_s8", "eq_mean_s8", "eq_pad_x", "eq_concat_x",
               "eq_strided_copy_x", "eq_hard_swish_s8"]:
        assert f" T {fn}" in nm, fn
    assert " D " not in nm and " B " not in nm, "kernels must not define globals"


def test_kernel_list_matches_sources() -> None:
    on_disk = {p.name for p in (RUNTIME / "kernels").glob("eq_*.c")}
    assert set(ELEMENTWISE_KERNELS) <= on_disk
    assert "-Werror" in CFLAGS


# ---------------------------------------------------------------------------------------------
# real third-party models


def _seanet_cases(shared: Path, op: str) -> list[Path]:
    return sorted((shared / "tflm" / "seanet" / op).glob(f"{op}*.tflite"))


@pytest.mark.slow
@pytest.mark.parametrize("op", ["add", "sub", "leaky_relu", "pad", "strided_slice"])
def test_seanet_int16_goldens(op: str, shared_models: Path, tmp_path: Path) -> None:
    """The LiteRT-compatible build reproduces every golden CSV. The default (TFLM) build does
    too, except LEAKY_RELU: the goldens come from a TFLM that derived its multipliers in
    float32 (as LiteRT does), the installed tflite_micro derives them in double, and the
    default build follows the installed interpreter."""
    from edgeq.oracles import run_tflm

    cases = _seanet_cases(shared_models, op)
    assert cases, f"no seanet {op} models"
    golden_differs = 0
    for mp in cases:
        data = mp.read_bytes()
        m = read_tflite_bytes(data)
        ins = []
        for j, t in enumerate(m.input_tensors):
            vals = np.loadtxt(mp.with_name(f"{mp.stem}_input{j}_int16.csv"), delimiter=",",
                              dtype=np.int64).reshape(-1)
            assert vals.size == int(np.prod(t.shape))
            ins.append(vals.reshape(1, -1).astype(np.int16))
        gold = np.loadtxt(mp.with_name(f"{mp.stem}_golden_int16.csv"), delimiter=",",
                          dtype=np.int64).reshape(1, -1)
        call = lower_single(data)
        litert_build = run_kernel(call, data, ins, tmp_path / mp.stem / "lr",
                                  ("-DEDGEQ_RT_SINGLE_ROUNDING",))
        assert np.array_equal(litert_build, gold), f"{mp.name}: LiteRT build differs"
        default_build = run_kernel(call, data, ins, tmp_path / mp.stem / "tflm")
        if op == "leaky_relu":
            x = ins[0].reshape(1, *m.input_tensors[0].shape[1:])
            tflm = run_tflm(data, x)[0].reshape(1, -1)
            assert np.array_equal(default_build, tflm), f"{mp.name}: differs from TFLM"
            golden_differs += int((default_build != gold).sum())
        else:
            assert np.array_equal(default_build, gold), f"{mp.name}: default build differs"
    if op == "leaky_relu":  # the measured gap between the two TFLM versions stays tiny
        assert golden_differs <= 10


@pytest.mark.slow
def test_mobilenet_v2_elementwise_layers(shared_models: Path, tmp_path: Path) -> None:
    """Every distinct TRANSPOSE/PAD/ADD/MEAN layer of the real PyTorch-exported MobileNetV2,
    cut out as a one-op model with its real shapes and quantization."""
    data = (shared_models / "tflm" / "mobilenet_v2_quantized_1x3x224x224.tflite").read_bytes()
    m = read_tflite_bytes(data)
    seen: set[tuple[str, tuple[int, ...]]] = set()
    for op in m.operators:
        key = (op.opcode, m.tensors[op.inputs[0]].shape)
        if op.opcode not in ("TRANSPOSE", "PAD", "ADD", "MEAN") or key in seen:
            continue
        seen.add(key)
        got, want, _, _ = compare_with_tflm(extract_op(data, op.index),
                                            tmp_path / str(op.index), n=2)
        assert np.array_equal(got, want), f"layer {op.index} {op.opcode} differs"
    assert {k[0] for k in seen} == {"TRANSPOSE", "PAD", "ADD", "MEAN"}


# ---------------------------------------------------------------------------------------------
# the full generated-model path (edgeq.codegen.edgeq_rt + host harness)


def _mixed_int8_model():  # noqa: ANN202
    from helpers_edgeq_rt import keras_layers

    k = keras_layers()
    k.utils.set_random_seed(0)  # deterministic weights: a reproducible test
    layers = k.layers
    x = layers.Input((8, 8, 3))
    a = layers.Conv2D(8, 3, padding="same", activation="relu6")(x)
    b = layers.Conv2D(8, 1)(x)
    y = layers.ReLU()(layers.Add()([a, b]))
    c = layers.Conv2D(6, 3)(layers.ZeroPadding2D(((1, 0), (0, 2)))(y))
    c = layers.LeakyReLU(0.1)(c)
    m = layers.Multiply()([c, layers.Activation("sigmoid")(c)])
    cat = layers.Concatenate()([layers.Activation("tanh")(m), m])
    s = layers.Subtract()([cat, layers.Conv2D(12, 1)(cat)])
    gp = layers.GlobalAveragePooling2D()(layers.Permute((3, 1, 2))(s))
    return k.Model(x, layers.Dense(10, activation="softmax")(gp))


def _int16x8_model():  # noqa: ANN202
    from helpers_edgeq_rt import keras_layers

    k = keras_layers()
    k.utils.set_random_seed(0)  # deterministic weights: a reproducible test
    layers = k.layers
    x = layers.Input((6, 6, 3))
    y = layers.Add()([layers.Conv2D(8, 3, padding="same")(x), layers.Conv2D(8, 1)(x)])
    y = layers.ZeroPadding2D(1)(layers.LeakyReLU(0.2)(y))
    gp = layers.GlobalAveragePooling2D()(y)
    return k.Model(x, layers.Dense(5, activation="softmax")(gp))


def _activations_int8_model():  # noqa: ANN202
    from helpers_edgeq_rt import keras_layers

    from edgeq.tfenv import import_tf

    tf = import_tf()
    k = keras_layers()
    k.utils.set_random_seed(0)  # deterministic weights: a reproducible test
    layers = k.layers
    x = layers.Input((8, 8, 3))
    a = layers.Conv2D(8, 3, padding="same")(x)
    hs = layers.Lambda(lambda t: t * tf.nn.relu6(t + 3.0) / 6.0)(a)  # -> HARD_SWISH
    r = layers.ReLU()(layers.Concatenate()([hs, layers.Conv2D(8, 1)(x), a]))
    p = layers.MaxPooling2D()(r)
    r6 = layers.ReLU(6.0)(layers.Concatenate()([p, p]))
    return k.Model(x, layers.Dense(4)(layers.GlobalAveragePooling2D()(r6)))


@pytest.mark.slow
@pytest.mark.parametrize(
    "build,mode,ops",
    [
        (_mixed_int8_model, "int8",
         {"ADD", "SUB", "MUL", "PAD", "LEAKY_RELU", "LOGISTIC", "TANH", "CONCATENATION",
          "TRANSPOSE", "MEAN", "SOFTMAX"}),
        (_int16x8_model, "int16x8", {"ADD", "LEAKY_RELU", "PAD", "MEAN", "SOFTMAX"}),
        (_activations_int8_model, "int8", {"HARD_SWISH", "CONCATENATION", "RELU", "RELU6"}),
    ],
    ids=["int8-mix", "int16x8", "int8-activations"],
)
def test_generated_models_bit_exact(build: Any, mode: str, ops: set[str],
                                    tmp_path: Path) -> None:
    """Keras -> PTQ .tflite -> generated model.c -> gcc: every output equal to TFLM (double
    rounding build) and to LiteRT BUILTIN_REF (single-rounding build)."""
    from helpers_edgeq_rt import assert_bit_exact, convert_keras

    data = convert_keras(build, mode=mode)
    assert ops <= {op.opcode for op in read_tflite_bytes(data).operators}
    path = tmp_path / "model.tflite"
    path.write_bytes(data)
    counts = assert_bit_exact(path, tmp_path, n=50)
    assert counts == {"tflm": 0, "litert": 0}


# ---------------------------------------------------------------------------------------------
# randomized quantization sweep: scales over many decades, zero points over the whole range


def _random_case(op: str, rng: np.random.Generator) -> bytes:
    def lu(lo: float, hi: float) -> float:
        return float(10 ** rng.uniform(lo, hi))

    def zp() -> int:
        return int(rng.integers(-128, 128))

    shape = (1, int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(rng.integers(1, 9)))
    act = int(rng.choice([NONE, RELU, RELU_N1_TO_1, RELU6]))
    if op in ("ADD", "SUB"):
        s1, s2 = lu(-6, 2), lu(-6, 2)
        o, kind = opts(f"{op.capitalize()}Options", fusedActivationFunction=act)
        other = (1, 1, shape[2], shape[3]) if rng.random() < 0.5 else shape
        return build_model(op, [T(shape, "int8", s1, zp()), T(other, "int8", s2, zp())],
                           [T(shape, "int8", max(s1, s2) * lu(-1.5, 1.5), zp())], o, kind)
    if op == "MUL":
        s1, s2 = lu(-5, 1), lu(-5, 1)
        o, kind = opts("MulOptions", fusedActivationFunction=act)
        return build_model(op, [T(shape, "int8", s1, zp()), T(shape, "int8", s2, zp())],
                           [T(shape, "int8", s1 * s2 * lu(-2, 3), zp())], o, kind)
    if op == "SOFTMAX":
        o, kind = opts("SoftmaxOptions", beta=float(rng.uniform(0.1, 3.0)))
        return build_model(op, [T(shape, "int8", lu(-4, 1), zp())],
                           [T(shape, "int8", 1 / 256, -128)], o, kind)
    if op == "MEAN":
        axes = [[1, 2], [1], [2], [3], [-1, 1]][int(rng.integers(0, 5))]
        out = tuple(1 if k in [a % 4 for a in axes] else d for k, d in enumerate(shape))
        si = lu(-4, 1)
        o, kind = opts("ReducerOptions", keepDims=True)
        return build_model(op, [T(shape, "int8", si, zp()), _const(axes)],
                           [T(out, "int8", si * lu(-2, 2), zp())], o, kind)
    si = lu(-4, 0.5)
    if op == "LEAKY_RELU":
        o, kind = opts("LeakyReluOptions", alpha=float(rng.uniform(0.0, 3.0)))
        return build_model(op, [T(shape, "int8", si, zp())],
                           [T(shape, "int8", si * lu(-2, 2), zp())], o, kind)
    if op == "RELU":
        return build_model(op, [T(shape, "int8", si, zp())],
                           [T(shape, "int8", si * lu(-2, 2), zp())])
    if op == "LOGISTIC":
        return build_model(op, [T(shape, "int8", si, zp())], [T(shape, "int8", 1 / 256, -128)])
    if op == "TANH":
        return build_model(op, [T(shape, "int8", si, zp())], [T(shape, "int8", 1 / 128, 0)])
    assert op == "HARD_SWISH"
    return build_model(op, [T(shape, "int8", si, zp())],
                       [T(shape, "int8", si * lu(-1.5, 1), zp())])


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL", "SOFTMAX", "MEAN", "LEAKY_RELU", "RELU",
                                "LOGISTIC", "TANH", "HARD_SWISH"])
def test_random_quantization_sweep(op: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(sum(map(ord, op)))
    for k in range(SWEEP_CASES):
        model = _random_case(op, rng)
        got, want, _, _ = compare_with_tflm(model, tmp_path / str(k), n=12, seed=k)
        assert np.array_equal(got, want), (
            f"case {k}: {int((got != want).sum())} of {got.size} outputs differ from TFLM"
        )


def _random_int16_case(op: str, rng: np.random.Generator) -> bytes:
    def lu(lo: float, hi: float) -> float:
        return float(10 ** rng.uniform(lo, hi))

    shape = (1, int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 9)))
    si = lu(-5, -2)
    if op in ("ADD", "SUB"):
        s2 = si * lu(-1, 1)
        o, kind = opts(f"{op.capitalize()}Options", potScaleInt16=False,
                       fusedActivationFunction=int(rng.choice([NONE, RELU])))
        return build_model(op, [T(shape, "int16", si, 0), T(shape, "int16", s2, 0)],
                           [T(shape, "int16", max(si, s2) * lu(-1, 1), 0)], o, kind)
    if op == "MUL":
        s2 = lu(-5, -2)
        o, kind = opts("MulOptions", fusedActivationFunction=NONE)
        return build_model(op, [T(shape, "int16", si, 0), T(shape, "int16", s2, 0)],
                           [T(shape, "int16", si * s2 * lu(1, 4), 0)], o, kind)
    if op == "SOFTMAX":
        o, kind = opts("SoftmaxOptions", beta=float(rng.uniform(0.5, 2.0)))
        return build_model(op, [T(shape, "int16", lu(-4, -2), 0)],
                           [T(shape, "int16", 1 / 32768, 0)], o, kind)
    if op == "MEAN":
        o, kind = opts("ReducerOptions", keepDims=True)
        out = (1, 1, 1, shape[3])
        return build_model(op, [T(shape, "int16", si, 0), _const([1, 2])],
                           [T(out, "int16", si * lu(-1, 1), 0)], o, kind)
    if op == "LEAKY_RELU":
        o, kind = opts("LeakyReluOptions", alpha=float(rng.uniform(0.0, 1.0)))
        return build_model(op, [T(shape, "int16", si, 0)],
                           [T(shape, "int16", si * lu(-1, 1), 0)], o, kind)
    assert op == "RELU"
    return build_model(op, [T(shape, "int16", si, 0)], [T(shape, "int16", si * lu(-1, 1), 0)])


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL", "SOFTMAX", "MEAN", "LEAKY_RELU", "RELU"])
def test_random_int16_sweep_both_oracles(op: str, tmp_path: Path) -> None:
    """int16x8: the default build against TFLM, the LiteRT-compatible build against LiteRT."""
    rng = np.random.default_rng(1000 + sum(map(ord, op)))
    for k in range(SWEEP_CASES):
        model = _random_int16_case(op, rng)
        got, want, got_lr, ref = compare_with_tflm(model, tmp_path / str(k), n=12, seed=k,
                                                   litert=op != "MEAN")
        assert np.array_equal(got, want), f"case {k}: {int((got != want).sum())} differ (TFLM)"
        if ref is not None:
            assert got_lr is not None
            assert np.array_equal(got_lr, ref), (
                f"case {k}: {int((got_lr != ref).sum())} differ (LiteRT)"
            )


def test_add_refuses_unrepresentable_rescale() -> None:
    o, kind = opts("AddOptions", fusedActivationFunction=NONE)
    msg = _refused(build_model("ADD", [T((1, 4), "int8", 1.0, 0), T((1, 4), "int8", 1.0, 0)],
                               [T((1, 4), "int8", 1e-7, 0)], o, kind))
    assert "2^19" in msg and "recalibrate" in msg


@pytest.mark.slow
@pytest.mark.parametrize("op", ["add", "sub", "leaky_relu", "pad", "strided_slice"])
def test_seanet_generated_models_match_golden(op: str, shared_models: Path,
                                              tmp_path: Path) -> None:
    """The full path (generated model.c + planner + host harness) on two seanet models per op,
    LiteRT-compatible build against the golden CSVs."""
    from helpers_host_harness import build_host_model

    for mp in _seanet_cases(shared_models, op)[:2]:
        host = build_host_model(mp, tmp_path / mp.stem, single_rounding=True)
        ins = []
        for k, spec in enumerate(host.inputs):
            vals = np.loadtxt(mp.with_name(f"{mp.stem}_input{k}_int16.csv"), delimiter=",",
                              dtype=np.int64).astype(np.int16)
            ins.append(vals.reshape(1, *spec.shape[1:]) if len(spec.shape) > 1
                       else vals.reshape(spec.shape))
        gold = np.loadtxt(mp.with_name(f"{mp.stem}_golden_int16.csv"), delimiter=",",
                          dtype=np.int64).reshape(-1)
        got = host.run(ins)[0].reshape(-1)
        assert np.array_equal(got, gold), f"{mp.name}: {int((got != gold).sum())} differ"
