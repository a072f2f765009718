"""Lowerings of the arithmetic that layer norms and attention blocks convert to:
SQUARED_DIFFERENCE, RSQRT and BATCH_MATMUL (TFLM's "Prepare", done ahead of time).

Multipliers use the same float/double arithmetic as TFLM's C++ (float32 where TFLM computes in
``float``); the parameter structs are in ``firmware/runtime/include/eq_kernels_math.h``.
"""

from __future__ import annotations

import numpy as np

from edgeq.codegen.lowering import KernelCall, lowering
from edgeq.codegen.ops_elementwise import (
    _SUFFIX,
    _check_types,
    _count,
    _fail,
    _i32,
    _qparams,
    _require_symmetric_int16,
    _t,
    broadcast_shape,
)
from edgeq.quantize.numerics import quantize_multiplier
from edgeq.tflite import Operator, TfliteModel

BATCH_RANK = 3  # batch dimensions of a rank-5 BATCH_MATMUL operand


@lowering("SQUARED_DIFFERENCE")
def lower_squared_difference(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM squared_difference.cc PrepareQuantized: inputs to a common scale 2^left_shift /
    (2 max scale), the square requantized with (2 max scale)^2 / (2^(2 left_shift) out scale)."""
    in1, in2, out = _t(model, op.inputs[0]), _t(model, op.inputs[1]), _t(model, op.outputs[0])
    dtype = _check_types(op, [in1, in2, out], ("int8", "int16"))
    s1, z1 = _qparams(op, in1)
    s2, z2 = _qparams(op, in2)
    so, zo = _qparams(op, out)
    _require_symmetric_int16(op, dtype, z1, z2, zo)
    left_shift = 7 if dtype == "int8" else 0
    twice_max = 2.0 * float(max(s1, s2))
    m1, sh1 = quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max)
    # (1 << 2 left_shift) * scale is a float32 product in TFLM (exact: a power of two)
    mo, sho = quantize_multiplier(
        twice_max * twice_max / float(np.float32((1 << (2 * left_shift)) * so)))
    shape = broadcast_shape(op, in1.shape, in2.shape, out.shape)
    params = {
        "shape": shape, "left_shift": left_shift,
        "input1_offset": -z1, "input1_multiplier": m1, "input1_shift": sh1,
        "input2_offset": -z2, "input2_multiplier": m2, "input2_shift": sh2,
        "output_offset": zo, "output_multiplier": mo, "output_shift": sho,
    }
    return KernelCall(layer=op.index, op=op.opcode,
                      function=f"eq_squared_difference_{_SUFFIX[dtype]}",
                      params_type="eq_squared_difference_params", params=params,
                      inputs=[op.inputs[0], op.inputs[1]], outputs=[op.outputs[0]],
                      in_place=not shape["broadcast"], macs=shape["count"])


@lowering("RSQRT")
def lower_rsqrt(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM elementwise.cc: output multiplier 1 / (sqrtf(in scale) * out scale)."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    dtype = _check_types(op, [inp, out], ("int8", "int16"))
    si, zi = _qparams(op, inp)
    so, zo = _qparams(op, out)
    _require_symmetric_int16(op, dtype, zi, zo)
    product = np.float32(np.sqrt(np.float32(si)) * so)  # float arithmetic, as TFLM's
    mult, shift = quantize_multiplier(1.0 / float(product))
    params = {"count": _count(inp.shape), "input_offset": zi, "output_offset": zo,
              "multiplier": mult, "shift": shift}
    return KernelCall(layer=op.index, op=op.opcode, function=f"eq_rsqrt_{_SUFFIX[dtype]}",
                      params_type="eq_rsqrt_params", params=params, inputs=[op.inputs[0]],
                      outputs=[op.outputs[0]], in_place=True)


@lowering("BATCH_MATMUL")
def lower_batch_matmul(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM batch_matmul.cc: broadcast batch dims (rank <= 5), adj_x/adj_y, one multiplier
    double(lhs scale) * double(rhs scale) / double(out scale); no fused activation."""
    lhs, rhs, out = _t(model, op.inputs[0]), _t(model, op.inputs[1]), _t(model, op.outputs[0])
    dtype = _check_types(op, [lhs, rhs, out], ("int8", "int16"))
    sl, zl = _qparams(op, lhs)
    sr, zr = _qparams(op, rhs)
    so, zo = _qparams(op, out)
    _require_symmetric_int16(op, dtype, zl, zr, zo)
    if not (2 <= len(lhs.shape) <= 5 and 2 <= len(rhs.shape) <= 5):
        raise _fail(op, "operands must have rank 2 to 5", "reshape the operands")
    adj_x, adj_y = bool(op.options.get("adjX", False)), bool(op.options.get("adjY", False))
    m0, m1 = (int(d) for d in lhs.shape[-2:])
    n0, n1 = (int(d) for d in rhs.shape[-2:])
    rows, depth, row_stride, l_depth_stride = (m1, m0, 1, m1) if adj_x else (m0, m1, m1, 1)
    cols, r_depth, col_stride, r_depth_stride = (n0, n1, n1, 1) if adj_y else (n1, n0, 1, n1)
    if depth != r_depth:
        raise _fail(op, f"accumulation depths differ ({depth} and {r_depth})", "fix the model")
    lb = [1] * (BATCH_RANK - len(lhs.shape) + 2) + [int(d) for d in lhs.shape[:-2]]
    rb = [1] * (BATCH_RANK - len(rhs.shape) + 2) + [int(d) for d in rhs.shape[:-2]]
    batch, l_strides, r_strides = [], [0] * BATCH_RANK, [0] * BATCH_RANK
    l_acc, r_acc = m0 * m1, n0 * n1
    for k in range(BATCH_RANK - 1, -1, -1):
        if lb[k] != rb[k] and 1 not in (lb[k], rb[k]):
            raise _fail(op, f"batch dimensions {lhs.shape[:-2]} and {rhs.shape[:-2]} do not "
                        "broadcast", "fix the model")
        l_strides[k] = l_acc if lb[k] > 1 else 0
        r_strides[k] = r_acc if rb[k] > 1 else 0
        l_acc *= lb[k]
        r_acc *= rb[k]
    batch = [max(a, b) for a, b in zip(lb, rb, strict=True)]
    if _count(out.shape) != _count(batch) * rows * cols or int(out.shape[-1]) != cols:
        raise _fail(op, "output shape does not match the product", "fix the model")
    mult, shift = quantize_multiplier(float(sl) * float(sr) / float(so))
    params = {
        "batch_dims": _i32(batch), "lhs_batch_strides": _i32(l_strides),
        "rhs_batch_strides": _i32(r_strides), "rows": rows, "cols": cols, "depth": depth,
        "lhs_row_stride": row_stride, "lhs_depth_stride": l_depth_stride,
        "rhs_depth_stride": r_depth_stride, "rhs_col_stride": col_stride,
        "lhs_offset": -zl, "rhs_offset": -zr, "output_offset": zo,
        "output_multiplier": mult, "output_shift": shift,
    }
    return KernelCall(layer=op.index, op=op.opcode, function=f"eq_batch_matmul_{_SUFFIX[dtype]}",
                      params_type="eq_batch_matmul_params", params=params,
                      inputs=[op.inputs[0], op.inputs[1]], outputs=[op.outputs[0]],
                      macs=_count(batch) * rows * cols * depth)
