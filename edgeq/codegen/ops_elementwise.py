"""Lowerings of the elementwise family to edgeq-rt kernels: TFLM's "Prepare", done ahead of time.

Each function reads one operator, checks what TFLite Micro's kernel checks (so edgeq-rt refuses
exactly where TFLM would fail to prepare), computes the same multipliers, shifts, radii and
tables with the same float/double arithmetic as TFLM's C++ (float32 where TFLM computes in
``float``), and returns a ``KernelCall`` whose ``params`` mirror the C structs in
``firmware/runtime/include/eq_kernels_elementwise.h``. Shapes are padded on the left to
``MAX_RANK`` dimensions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgeq.codegen.lowering import KernelCall, lowering
from edgeq.errors import CodegenError
from edgeq.quantize.numerics import (
    fused_activation_range,
    quantize_multiplier,
    round_half_away,
)
from edgeq.tflite import Operator, Tensor, TfliteModel

MAX_RANK = 6  # EQ_MAX_RANK in eq_kernels_elementwise.h

_QRANGE = {"int8": (-128, 127), "int16": (-32768, 32767)}
_SUFFIX = {"int8": "s8", "int16": "s16"}
_ELEM_BYTES = {"int8": 1, "int16": 2, "int32": 4, "float32": 4, "uint8": 1}

# ---------------------------------------------------------------------------------------------
# helpers


def _fail(op: Operator, what: str, fix: str) -> CodegenError:
    return CodegenError(f"operator {op.index} ({op.opcode}): {what}; {fix}")


def _require_symmetric_int16(op: Operator, dtype: str, *zero_points: int) -> None:
    """TFLM's int16 kernels take no zero points: symmetric int16 activations only."""
    if dtype == "int16" and any(zero_points):
        raise _fail(op, f"int16 {op.opcode} needs zero points of 0",
                    "use symmetric int16 activations")


def _t(model: TfliteModel, idx: int) -> Tensor:
    return model.tensors[idx]


def _qparams(op: Operator, t: Tensor) -> tuple[np.float32, int]:
    """(float32 scale, zero point) of a per-tensor quantized tensor."""
    if t.quant is None or t.quant.scale.size == 0:
        raise _fail(op, f"tensor {t.name!r} is not quantized",
                    "quantize the model to int8 (edgeq quantize) before codegen")
    if t.quant.scale.size != 1:
        raise _fail(op, f"tensor {t.name!r} is quantized per channel",
                    "this op needs per-tensor activations")
    return np.float32(t.quant.scale[0]), int(t.quant.zero_point[0])


def _check_types(op: Operator, tensors: list[Tensor], allowed: tuple[str, ...]) -> str:
    dtype = tensors[0].dtype
    for t in tensors:
        if t.dtype != dtype or dtype not in allowed:
            kinds = "/".join(sorted({x.dtype for x in tensors}))
            raise _fail(op, f"type {kinds} is not supported (edgeq-rt has {'/'.join(allowed)})",
                        "quantize the model to int8 (or int16x8)")
    return dtype


def _pad_shape(shape: tuple[int, ...] | list[int]) -> list[int]:
    shape = [int(d) for d in shape]
    if len(shape) > MAX_RANK:
        raise CodegenError(f"tensor rank {len(shape)} exceeds edgeq-rt's maximum of {MAX_RANK}")
    return [1] * (MAX_RANK - len(shape)) + shape


def _strides(dims: list[int]) -> list[int]:
    out = [0] * len(dims)
    acc = 1
    for k in range(len(dims) - 1, -1, -1):
        out[k] = acc
        acc *= dims[k]
    return out


def _i32(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int32)


def _count(shape: tuple[int, ...] | list[int]) -> int:
    return int(np.prod(shape)) if len(shape) else 1


def _const_ints(model: TfliteModel, op: Operator, idx: int, what: str) -> np.ndarray:
    t = _t(model, idx)
    if t.data is None:
        raise _fail(op, f"{what} is computed at run time",
                    "edgeq-rt needs it constant in the .tflite (re-export with static shapes)")
    return np.asarray(t.data).astype(np.int64)


def activation_range(
    op: Operator, activation: str, scale: np.float32, zero_point: int, dtype: str
) -> tuple[int, int]:
    """The fused activation's clamp on the output grid (``numerics.fused_activation_range``)."""
    try:
        return fused_activation_range(activation, float(scale), zero_point, dtype)
    except ValueError:
        raise _fail(op, f"fused activation {activation} is not supported",
                    "use NONE, RELU, RELU6 or RELU_N1_TO_1") from None


def broadcast_shape(
    op: Operator, shape1: tuple[int, ...], shape2: tuple[int, ...], out_shape: tuple[int, ...]
) -> dict[str, Any]:
    """Output dims and per-input strides (0 on broadcast dims) for a binary elementwise op."""
    if tuple(shape1) == tuple(shape2):
        dims = _pad_shape(out_shape)
        strides = _strides(dims)
        return {"count": _count(out_shape), "broadcast": 0, "dims": _i32(dims),
                "in1_strides": _i32(strides), "in2_strides": _i32(strides)}
    d1, d2, do = _pad_shape(shape1), _pad_shape(shape2), _pad_shape(out_shape)
    s1, s2 = _strides(d1), _strides(d2)
    for k in range(MAX_RANK):
        want = max(d1[k], d2[k]) if min(d1[k], d2[k]) != 0 else 0
        if (d1[k] not in (1, do[k])) or (d2[k] not in (1, do[k])) or do[k] != want:
            raise _fail(op, f"shapes {list(shape1)} and {list(shape2)} do not broadcast "
                        f"to {list(out_shape)}", "fix the model's shapes")
        if d1[k] == 1 and do[k] != 1:
            s1[k] = 0
        if d2[k] == 1 and do[k] != 1:
            s2[k] = 0
    return {"count": _count(out_shape), "broadcast": 1, "dims": _i32(do),
            "in1_strides": _i32(s1), "in2_strides": _i32(s2)}


def calculate_input_radius(integer_bits: int, left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLite's CalculateInputRadius: largest |input| whose rescaled value stays representable."""
    max_input_rescaled = (
        1.0 * ((1 << integer_bits) - 1) * float(1 << (total_signed_bits - integer_bits))
        / float(1 << left_shift)
    )
    return int(math.floor(max_input_rescaled))


def _call(op: Operator, function: str, params_type: str, params: dict[str, Any],
          inputs: list[int], *, in_place: bool = False, macs: int = 0) -> KernelCall:
    return KernelCall(layer=op.index, op=op.opcode, function=function, params_type=params_type,
                      params=params, inputs=inputs, outputs=list(op.outputs[:1]),
                      in_place=in_place, macs=macs)


# ---------------------------------------------------------------------------------------------
# ADD / SUB / MUL


@lowering("ADD", "SUB")
def lower_add_sub(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM add_common.cc / sub_common.cc: rescale both inputs by 2^left_shift / (2 max scale)."""
    in1, in2, out = _t(model, op.inputs[0]), _t(model, op.inputs[1]), _t(model, op.outputs[0])
    dtype = _check_types(op, [in1, in2, out], ("int8", "int16"))
    s1, z1 = _qparams(op, in1)
    s2, z2 = _qparams(op, in2)
    so, zo = _qparams(op, out)
    left_shift = 15 if dtype == "int16" else 20
    # Both prepares in double: the tflite_micro oracle's SUB matches ADD's double arithmetic
    # bit for bit (its float32 variant differs by 1 LSB on some inputs).
    twice_max = 2.0 * float(max(s1, s2))
    real1 = float(s1) / twice_max
    real2 = float(s2) / twice_max
    real_out = twice_max / ((1 << left_shift) * float(so))
    m1, sh1 = quantize_multiplier(real1)
    m2, sh2 = quantize_multiplier(real2)
    mo, sho = quantize_multiplier(real_out)
    if max(sh1, sh2, sho) > 0:
        raise _fail(op, f"output scale is over 2^{left_shift - 1} times smaller than the "
                    "inputs' (TFLM's rescale multiplier would exceed 1)",
                    "recalibrate the model so the output range covers the inputs'")
    act_min, act_max = activation_range(
        op, op.options.get("fusedActivationFunction", "NONE"), so, zo, dtype)
    shape = broadcast_shape(op, in1.shape, in2.shape, out.shape)
    params = {
        "shape": shape, "left_shift": left_shift,
        "input1_offset": -z1, "input1_multiplier": m1, "input1_shift": sh1,
        "input2_offset": -z2, "input2_multiplier": m2, "input2_shift": sh2,
        "output_offset": zo, "output_multiplier": mo, "output_shift": sho,
        "act_min": act_min, "act_max": act_max,
    }
    fn = f"eq_{op.opcode.lower()}_{_SUFFIX[dtype]}"
    return _call(op, fn, "eq_add_params", params, [op.inputs[0], op.inputs[1]],
                 in_place=not shape["broadcast"], macs=shape["count"])


@lowering("MUL")
def lower_mul(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM mul_common.cc: one output multiplier s1*s2/so (double)."""
    in1, in2, out = _t(model, op.inputs[0]), _t(model, op.inputs[1]), _t(model, op.outputs[0])
    dtype = _check_types(op, [in1, in2, out], ("int8", "int16"))
    s1, z1 = _qparams(op, in1)
    s2, z2 = _qparams(op, in2)
    so, zo = _qparams(op, out)
    _require_symmetric_int16(op, dtype, z1, z2, zo)
    mo, sho = quantize_multiplier(float(s1) * float(s2) / float(so))
    act_min, act_max = activation_range(
        op, op.options.get("fusedActivationFunction", "NONE"), so, zo, dtype)
    shape = broadcast_shape(op, in1.shape, in2.shape, out.shape)
    params = {
        "shape": shape, "input1_offset": -z1, "input2_offset": -z2, "output_offset": zo,
        "output_multiplier": mo, "output_shift": sho, "act_min": act_min, "act_max": act_max,
    }
    return _call(op, f"eq_mul_{_SUFFIX[dtype]}", "eq_mul_params", params,
                 [op.inputs[0], op.inputs[1]], in_place=not shape["broadcast"],
                 macs=shape["count"])


# ---------------------------------------------------------------------------------------------
# SOFTMAX


def _softmax_rows(t: Tensor) -> tuple[int, int]:
    if not t.shape:
        return 1, 1
    return _count(t.shape[:-1]), int(t.shape[-1])


def gen_lut_int16(func: Any, input_min: float, input_max: float, output_min: float,
                  output_max: float, precision: Any = np.float32) -> np.ndarray:
    """TFLite's gen_lut for int16 tables: 512 interpolation steps plus one end point, each
    corrected by half its midpoint error. TFLM computes in float32; LiteRT's reciprocal table
    matches the same steps in double (``precision=np.float64``)."""
    f = precision
    nb_steps = 512
    step = f(f(input_max) - f(input_min)) / f(nb_steps)
    half_step = step / f(2)
    scaling_inv = f(65536) / f(f(output_max) - f(output_min))
    lut = np.zeros(nb_steps + 1, dtype=np.int16)

    def rnd(x: Any) -> Any:
        return f(round_half_away(x))

    for i in range(nb_steps):
        x0 = f(input_min) + f(i) * step
        val = func(x0)
        val_mid = func(f(x0 + half_step))
        val_next = func(f(input_min) + f(i + 1) * step)
        sample = rnd(val * scaling_inv)
        mid_interp = rnd((val_next * scaling_inv + rnd(val * scaling_inv)) / f(2))
        mid_val = rnd(val_mid * scaling_inv)
        bias = rnd((mid_interp - mid_val) / f(2))
        lut[i] = int(min(max(sample - bias, -32768.0), 32767.0))
    lut[nb_steps] = int(min(max(rnd(func(f(input_max)) * scaling_inv), -32768.0), 32767.0))
    return lut


def _expf(x: np.float32) -> np.float32:
    return np.float32(math.exp(float(x)))


def _one_over_one_plus_x(x: np.float32) -> np.float32:
    return np.float32(np.float32(1) / np.float32(np.float32(1) + x))


def _one_over_one_plus_x_f64(x: np.float64) -> np.float64:
    return np.float64(1.0 / (1.0 + float(x)))


@lowering("SOFTMAX")
def lower_softmax(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM softmax_common.cc: Q5.26 input rescale (int8) or exp/reciprocal LUTs (int16)."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    si, _zi = _qparams(op, inp)
    so, zo = _qparams(op, out)
    beta = float(np.float32(op.options.get("beta", 1.0)))
    outer, depth = _softmax_rows(inp)
    if inp.dtype == "int8":
        if out.dtype == "int8":
            if zo != -128 or so != np.float32(1.0 / 256):
                raise _fail(op, "int8 output must have scale 1/256 and zero point -128",
                            "re-quantize the model with the TFLite converter")
            fn = "eq_softmax_s8"
        elif out.dtype == "int16":
            if zo != -32768 or abs(float(so) - 1.0 / 65536) > 0.001 / 65536:
                raise _fail(op, "int16 output must have scale 1/65536 and zero point -32768",
                            "re-quantize the model with the TFLite converter")
            fn = "eq_softmax_s8_s16"
        else:
            raise _fail(op, f"output type {out.dtype} is not supported", "use int8 or int16")
        # PreprocessSoftmaxScaling with 5 integer bits, then the matching input radius.
        real = min(beta * float(si) * float(1 << 26), float((1 << 31) - 1))
        mult, left_shift = quantize_multiplier(real)
        diff_min = -calculate_input_radius(5, left_shift)
        params = {"outer": outer, "depth": depth, "input_multiplier": mult,
                  "input_left_shift": left_shift, "diff_min": diff_min}
        return _call(op, fn, "eq_softmax_params", params, [op.inputs[0]], in_place=True)
    if inp.dtype == "int16" and out.dtype == "int16":
        if zo != 0 or abs(float(so) - 1.0 / 32768) > 0.001 / 32768:
            raise _fail(op, "int16 output must have scale 1/32768 and zero point 0",
                        "re-quantize the model with the TFLite converter")
        # the input difference is rescaled so that [-65535, 0] covers [-10, 0]
        mult, shift = quantize_multiplier(float(si) * beta / (10.0 / 65535.0))
        params = {
            "outer": outer, "depth": depth, "input_multiplier": mult, "input_left_shift": shift,
            "exp_lut": gen_lut_int16(_expf, -10.0, 0.0, -1.0, 1.0),
            "one_over_one_plus_x_lut": gen_lut_int16(_one_over_one_plus_x, 0.0, 1.0, -1.0, 1.0),
            # measured: LiteRT's table differs from TFLM's in 2 entries (double arithmetic)
            "litert_one_over_one_plus_x_lut": gen_lut_int16(
                _one_over_one_plus_x_f64, 0.0, 1.0, -1.0, 1.0, precision=np.float64),
        }
        return _call(op, "eq_softmax_s16", "eq_softmax_s16_params", params, [op.inputs[0]],
                     in_place=True)
    raise _fail(op, f"type {inp.dtype}->{out.dtype} is not supported",
                "use int8->int8, int8->int16 or int16->int16")


# ---------------------------------------------------------------------------------------------
# MEAN


@lowering("MEAN")
def lower_mean(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM reduce_common.cc: integer mean, 1/count folded into the requantization.

    The oracle takes this path even when input and output share quantization (measured), so
    there is no separate divide-only kernel.
    """
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    dtype = _check_types(op, [inp, out], ("int8", "int16"))
    si, zi = _qparams(op, inp)
    so, zo = _qparams(op, out)
    rank = len(inp.shape)
    axes = sorted({int(a) + rank if int(a) < 0 else int(a)
                   for a in _const_ints(model, op, op.inputs[1], "the axis").reshape(-1)})
    if any(a < 0 or a >= rank for a in axes):
        raise _fail(op, f"axis {axes} is out of range for rank {rank}", "fix the model")
    dims = _pad_shape(inp.shape)
    off = MAX_RANK - rank
    reduced = {a + off for a in axes}
    strides = _strides(dims)
    kept_dims = [1 if k in reduced else dims[k] for k in range(MAX_RANK)]
    red_dims = [dims[k] if k in reduced else 1 for k in range(MAX_RANK)]
    n = _count(red_dims)
    if n == 0 or _count(kept_dims) != _count(out.shape):
        raise _fail(op, "output shape does not match the reduction", "fix the model")
    mult, shift = quantize_multiplier(float(si) / float(so))
    # QuantizedMeanOrSum: fold 1/n into the multiplier, keeping shift >= -31.
    fold = min(n.bit_length() - 1, 32, 31 + shift)
    mult = (mult << fold) // n
    shift -= fold
    params = {
        "out_count": _count(kept_dims),
        "kept_dims": _i32(kept_dims), "kept_strides": _i32(strides),
        "reduced_dims": _i32(red_dims), "reduced_strides": _i32(strides),
        "num_reduced": n,
        "input_zero_point": zi, "output_zero_point": zo,
        "multiplier": mult, "shift": shift,
    }
    return _call(op, f"eq_mean_{_SUFFIX[dtype]}", "eq_mean_params", params, [op.inputs[0]],
                 macs=_count(inp.shape))


# ---------------------------------------------------------------------------------------------
# activations


@lowering("RELU")
def lower_relu(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM activations_common.cc CalculateReluOpData: requantize, clamp at the zero point."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    dtype = _check_types(op, [inp, out], ("int8", "int16"))
    si, zi = _qparams(op, inp)
    so, zo = _qparams(op, out)
    _require_symmetric_int16(op, dtype, zi, zo)
    mult, shift = quantize_multiplier(float(si) / float(so))
    qmin, qmax = _QRANGE[dtype]
    params = {"count": _count(inp.shape), "input_offset": zi, "output_offset": zo,
              "output_multiplier": mult, "output_shift": shift,
              "act_min": max(qmin, zo), "act_max": qmax}
    return _call(op, f"eq_relu_{_SUFFIX[dtype]}", "eq_relu_params", params, [op.inputs[0]],
                 in_place=True)


def float_to_quantized(value: float, scale: np.float32, zero_point: int, dtype: str) -> int:
    """TFLM's FloatToQuantizedType: round(value / scale) + zero point, clamped (float32)."""
    q = int(round_half_away(np.float32(value) / scale)) + zero_point
    qmin, qmax = _QRANGE[dtype]
    return min(max(q, qmin), qmax)


@lowering("RELU6")
def lower_relu6(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM Relu6Prepare: clamp to [zero point, q(6)] of the input, no rescaling."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    dtype = _check_types(op, [inp, out], ("int8", "int16"))
    si, zi = _qparams(op, inp)
    params = {"count": _count(inp.shape), "lower": zi,
              "upper": float_to_quantized(6.0, si, zi, dtype)}
    return _call(op, f"eq_clamp_{_SUFFIX[dtype]}", "eq_clamp_params", params, [op.inputs[0]],
                 in_place=True)


def _leaky_multipliers(op: Operator, real_identity: float, real_alpha: float) -> dict[str, int]:
    if real_alpha < 0:
        raise _fail(op, "negative alpha is not supported", "use alpha >= 0")
    mi, shi = quantize_multiplier(real_identity)
    ma, sa = quantize_multiplier(real_alpha)
    return {"multiplier_identity": mi, "shift_identity": shi,
            "multiplier_alpha": ma, "shift_alpha": sa}


@lowering("LEAKY_RELU")
def lower_leaky_relu(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM leaky_relu_common.cc: identity and alpha multipliers.

    Measured: the tflite_micro interpreter derives them from double products, while LiteRT
    (and the TFLM that produced the seanet goldens) use float32 products; the two differ by
    1 LSB on a few int16 values. Both sets are emitted; the LiteRT-compatible build
    (EDGEQ_RT_SINGLE_ROUNDING) uses the float32 one.
    """
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    dtype = _check_types(op, [inp, out], ("int8", "int16"))
    si, zi = _qparams(op, inp)
    so, zo = _qparams(op, out)
    alpha = np.float32(op.options.get("alpha", 0.2))
    tflm = _leaky_multipliers(op, float(si) / float(so), float(si) * float(alpha) / float(so))
    litert = _leaky_multipliers(op, float(np.float32(si / so)),
                                float(np.float32(np.float32(si * alpha) / so)))
    params = {"count": _count(inp.shape), "input_offset": zi, "output_offset": zo,
              "tflm": tflm, "litert": litert}
    return _call(op, f"eq_leaky_relu_{_SUFFIX[dtype]}", "eq_leaky_relu_params", params,
                 [op.inputs[0]], in_place=True)


@lowering("LOGISTIC", "TANH")
def lower_sigmoid(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM logistic_common.cc / tanh.cc (int8): input to Q4.27 via frexp, input radius."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    if _check_types(op, [inp, out], ("int8", "int16")) == "int16":
        return _lower_sigmoid_s16(op, inp, out)
    si, zi = _qparams(op, inp)
    _so, zo = _qparams(op, out)
    if op.opcode == "LOGISTIC" and zo != -128:
        raise _fail(op, "int8 LOGISTIC output must have zero point -128",
                    "re-quantize the model with the TFLite converter")
    q, left_shift = math.frexp(float(si) * float(1 << 27))
    mult = int(round_half_away(q * float(1 << 31)))
    params = {"count": _count(inp.shape), "input_zero_point": zi,
              "input_range_radius": calculate_input_radius(4, left_shift, 31),
              "input_multiplier": mult, "input_left_shift": left_shift}
    fn = "eq_logistic_s8" if op.opcode == "LOGISTIC" else "eq_tanh_s8"
    return _call(op, fn, "eq_sigmoid_params", params, [op.inputs[0]], in_place=True)


def sigmoid_table_uint16() -> np.ndarray:
    """TFLite's 256-entry table of sigmoid(i / 24) in 0.16 format: each sample moved by half
    the error of linear interpolation at the midpoint of its step (so that interpolating
    between entries errs evenly), the last one the saturated 1.0 (65535)."""
    table = np.zeros(256, dtype=np.uint16)
    for i in range(256):
        val = 1.0 / (1.0 + math.exp(-i / 24))
        nxt = 1.0 / (1.0 + math.exp(-(i + 1) / 24))
        mid = 1.0 / (1.0 + math.exp(-(i + 0.5) / 24))
        corrected = 65536.0 * (val - ((val + nxt) / 2 - mid) / 2)
        table[i] = min(int(round_half_away(corrected)), 65535)
    table[255] = 65535
    return table


def _checked_log2(x: np.float32) -> tuple[bool, int]:
    """TFLite's CheckedLog2 (float32): (is a power of two within 1e-3 in log2, rounded log2)."""
    log2 = np.float32(np.float32(np.log(np.float32(x))) * np.float32(1.0 / np.log(np.float32(2))))
    rounded = np.float32(round_half_away(log2))
    return bool(abs(np.float32(log2 - rounded)) < np.float32(1e-3)), int(rounded)


def _lower_sigmoid_s16(op: Operator, inp: Tensor, out: Tensor) -> KernelCall:
    """TFLM's int16 Prepare: symmetric, output scale 2^-15; the input rescaled to 1/(3 * 4096)
    (a power-of-two input scale is a plain shift, folded here into multiplier 3 << shift)."""
    si, zi = _qparams(op, inp)
    so, zo = _qparams(op, out)
    _require_symmetric_int16(op, "int16", zi, zo)
    pot, log2_out = _checked_log2(so)
    if not pot or log2_out != -15:
        raise _fail(op, f"int16 {op.opcode} output scale must be 2^-15",
                    "re-quantize the model with the TFLite converter")
    pot, log2_in = _checked_log2(si)
    left_shift = 12 + log2_in
    pot = pot and (left_shift in ((0, 1) if op.opcode == "TANH" else (0,)))
    if pot:
        multiplier = 3 << left_shift
        left_shift = 0
    else:
        real = float(si) * 4096.0 * 3.0
        left_shift = 0
        while real <= 32767.0 / 2.0 and left_shift <= 30:
            left_shift += 1
            real *= 2.0
        multiplier = int(real)
        if multiplier > 32767:
            raise _fail(op, f"input scale {float(si):g} is too large for int16 {op.opcode}",
                        "recalibrate the model")
    params = {"count": _count(inp.shape), "input_multiplier": multiplier,
              "input_left_shift": left_shift, "sigmoid_table": sigmoid_table_uint16()}
    fn = "eq_logistic_s16" if op.opcode == "LOGISTIC" else "eq_tanh_s16"
    return _call(op, fn, "eq_sigmoid_s16_params", params, [op.inputs[0]], in_place=True)


def downscale_multiplier_int16(multiplier: int) -> int:
    """TFLite's DownScaleInt32ToInt16Multiplier: round a Q31 multiplier to Q15."""
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return 32767
    return (multiplier + (1 << 15)) >> 16


@lowering("HARD_SWISH")
def lower_hard_swish(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM hard_swish_common.cc: reluish and output 16-bit multipliers (float32 scales)."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    _check_types(op, [inp, out], ("int8",))
    si, zi = _qparams(op, inp)
    so, zo = _qparams(op, out)
    f32 = np.float32
    hires = f32(f32(1.0) / f32(128.0)) * si
    reluish_scale = f32(3.0) / f32(32768.0)
    om, oe = quantize_multiplier(float(f32(hires / so)))
    rm, re_ = quantize_multiplier(float(f32(hires / reluish_scale)))
    if oe > 0:
        raise _fail(op, "output scale is too small for HARD_SWISH (multiplier > 1)",
                    "recalibrate the model; TFLM cannot run this op either")
    params = {"count": _count(inp.shape), "input_zero_point": zi, "output_zero_point": zo,
              "reluish_multiplier_fixedpoint_int16": downscale_multiplier_int16(rm),
              "reluish_multiplier_exponent": re_,
              "output_multiplier_fixedpoint_int16": downscale_multiplier_int16(om),
              "output_multiplier_exponent": oe}
    return _call(op, "eq_hard_swish_s8", "eq_hard_swish_params", params, [op.inputs[0]],
                 in_place=True)


# ---------------------------------------------------------------------------------------------
# data movement


def _same_quant(op: Operator, a: Tensor, b: Tensor) -> bool:
    if a.dtype not in _QRANGE:
        return True
    sa, za = _qparams(op, a)
    sb, zb = _qparams(op, b)
    return bool(sa == sb and za == zb)


_MOVE_TYPES = ("int8", "int16", "int32", "float32")


@lowering("PAD", "PADV2")
def lower_pad(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM pad.cc: pad value = constant_values if given, else the output zero point."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    dtype = _check_types(op, [inp, out], _MOVE_TYPES)
    if not _same_quant(op, inp, out):
        raise _fail(op, "input and output quantization differ",
                    "TFLM's PAD needs them equal; re-export the model")
    paddings = _const_ints(model, op, op.inputs[1], "the paddings tensor").reshape(-1, 2)
    rank = len(inp.shape)
    if paddings.shape[0] != rank or (paddings < 0).any():
        raise _fail(op, "paddings do not match the input rank or are negative", "fix the model")
    pad_value = 0
    if dtype in _QRANGE:
        pad_value = _qparams(op, out)[1]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        cv = _t(model, op.inputs[2])
        if cv.data is None:
            raise _fail(op, "constant_values is computed at run time", "make it constant")
        if dtype == "float32":
            raise _fail(op, "float PADV2 is not supported", "quantize the model")
        pad_value = int(np.asarray(cv.data).reshape(-1)[0])
    before = [0] * (MAX_RANK - rank) + [int(p) for p in paddings[:, 0]]
    params = {"elem_bytes": _ELEM_BYTES[dtype], "out_dims": _i32(_pad_shape(out.shape)),
              "in_dims": _i32(_pad_shape(inp.shape)), "before": _i32(before),
              "pad_value": pad_value}
    return _call(op, "eq_pad_x", "eq_pad_params", params, [op.inputs[0]])


@lowering("TRANSPOSE")
def lower_transpose(model: TfliteModel, op: Operator) -> KernelCall:
    """TRANSPOSE as a strided gather: output axis k reads input axis perm[k]."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    dtype = _check_types(op, [inp, out], _MOVE_TYPES)
    perm = [int(p) for p in _const_ints(model, op, op.inputs[1], "the permutation").reshape(-1)]
    rank = len(inp.shape)
    perm = [p + rank if p < 0 else p for p in perm]
    if sorted(perm) != list(range(rank)):
        raise _fail(op, f"permutation {perm} is invalid for rank {rank}", "fix the model")
    in_strides = _strides(list(inp.shape)) if rank else []
    off = MAX_RANK - rank
    strides = [0] * off + [in_strides[p] for p in perm]
    out_dims = [1] * off + [int(inp.shape[p]) for p in perm]
    if tuple(out_dims[off:]) != tuple(out.shape):
        raise _fail(op, "output shape does not match the permutation", "fix the model")
    params = {"elem_bytes": _ELEM_BYTES[dtype], "in_offset": 0, "out_dims": _i32(out_dims),
              "in_strides": _i32(strides)}
    return _call(op, "eq_strided_copy_x", "eq_strided_copy_params", params, [op.inputs[0]])


def _slice_start(begin: int, stride: int, size: int, masked: bool) -> int:
    """TFLite's StartForAxis (strided_slice_logic.h)."""
    if size == 0:
        return 0
    start = (-(1 << 31) if stride > 0 else (1 << 31) - 1) if masked else begin
    if start < 0:
        start += size
    return min(max(start, 0), size) if stride > 0 else min(max(start, -1), size - 1)


def _slice_stop(end: int, stride: int, size: int, masked: bool, start: int, shrink: bool) -> int:
    """TFLite's StopForAxis: a shrunk axis takes exactly one element."""
    if size == 0:
        return 0
    if shrink:
        return start + 1
    stop = ((1 << 31) - 1 if stride > 0 else -(1 << 31)) if masked else end
    if stop < 0:
        stop += size
    return min(max(stop, 0), size) if stride > 0 else min(max(stop, -1), size - 1)


@lowering("STRIDED_SLICE")
def lower_strided_slice(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM strided_slice: begin/end/strides resolved per axis, then a strided gather."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    dtype = _check_types(op, [inp, out], _MOVE_TYPES)
    if not _same_quant(op, inp, out):
        raise _fail(op, "input and output quantization differ", "re-export the model")
    o = op.options
    if o.get("ellipsisMask", 0) or o.get("newAxisMask", 0) or o.get("offset", False):
        raise _fail(op, "ellipsis/new-axis masks and offset mode are not supported",
                    "express the slice with begin/end/strides only")
    rank = len(inp.shape)
    begin = _const_ints(model, op, op.inputs[1], "begin").reshape(-1)
    end = _const_ints(model, op, op.inputs[2], "end").reshape(-1)
    steps = _const_ints(model, op, op.inputs[3], "strides").reshape(-1)
    if not (len(begin) == len(end) == len(steps) == rank) or (steps == 0).any():
        raise _fail(op, "begin/end/strides do not match the input rank", "fix the model")
    in_strides = _strides(list(inp.shape))
    dims, strides, offset = [], [], 0
    for k in range(rank):
        size, step = int(inp.shape[k]), int(steps[k])
        start = _slice_start(int(begin[k]), step, size, bool(o.get("beginMask", 0) >> k & 1))
        stop = _slice_stop(int(end[k]), step, size, bool(o.get("endMask", 0) >> k & 1), start,
                           bool(o.get("shrinkAxisMask", 0) >> k & 1))
        n = max(0, -(-(stop - start) // step)) if step > 0 else max(0, -(-(start - stop) // -step))
        dims.append(n)
        strides.append(in_strides[k] * step)
        offset += (start if n else 0) * in_strides[k]
    if _count(dims) != _count(out.shape):
        raise _fail(op, f"slice has {_count(dims)} elements but the output {_count(out.shape)}",
                    "fix the model")
    off = MAX_RANK - rank
    params = {"elem_bytes": _ELEM_BYTES[dtype], "in_offset": offset,
              "out_dims": _i32([1] * off + dims), "in_strides": _i32([0] * off + strides)}
    return _call(op, "eq_strided_copy_x", "eq_strided_copy_params", params, [op.inputs[0]])


@lowering("CONCATENATION")
def lower_concatenation(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM concatenation.cc: a copy; int8 inputs must share the output's quantization."""
    ins = [_t(model, i) for i in op.inputs]
    out = _t(model, op.outputs[0])
    dtype = _check_types(op, [*ins, out], _MOVE_TYPES)
    if op.options.get("fusedActivationFunction", "NONE") not in ("NONE", ""):
        raise _fail(op, "fused activation on CONCATENATION", "TFLM refuses it too; remove it")
    if len(ins) > 16:
        raise _fail(op, f"{len(ins)} inputs (edgeq-rt has at most 16)", "split the concat")
    for t in ins:
        if dtype == "int8" and not _same_quant(op, t, out):
            raise _fail(op, f"input {t.name!r} has another scale or zero point than the output",
                        "TFLM needs them equal for int8; re-quantize the model")
        if dtype == "int16" and _qparams(op, t)[1] != 0:
            raise _fail(op, "int16 inputs need zero point 0", "use symmetric int16 activations")
    rank = len(out.shape)
    axis = int(op.options.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise _fail(op, f"axis {axis} is out of range", "fix the model")
    outer = _count(out.shape[:axis])
    inner = _count(out.shape[axis + 1:])
    copy = [int(t.shape[axis]) * inner for t in ins]
    if sum(copy) * outer != _count(out.shape):
        raise _fail(op, "input shapes do not add up to the output shape", "fix the model")
    params = {"elem_bytes": _ELEM_BYTES[dtype], "num_inputs": len(ins), "outer": outer,
              "copy_elems": _i32(copy)}
    return _call(op, "eq_concat_x", "eq_concat_params", params, list(op.inputs))
