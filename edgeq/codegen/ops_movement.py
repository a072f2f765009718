"""Lowerings of the data-movement ops users' models bring: TILE, RESIZE_NEAREST_NEIGHBOR,
RESIZE_BILINEAR, SPLIT, SPLIT_V, UNPACK, PACK and GATHER.

Apart from RESIZE_BILINEAR's int8 interpolation they copy elements without requantizing (as
TFLM does), so one ``_x`` kernel per op moves any element type; the parameter structs are in
``firmware/runtime/include/eq_kernels_movement.h``. SPLIT, SPLIT_V and UNPACK are one kernel
with several outputs; PACK is a concatenation of ``[outer, inner]`` rows (``eq_concat_x``).
Like the elementwise lowerings, each refuses what TFLite Micro's Prepare refuses.
"""

from __future__ import annotations

import math

import numpy as np

from edgeq.codegen.lowering import KernelCall, lowering
from edgeq.codegen.ops_elementwise import (
    _ELEM_BYTES,
    MAX_RANK,
    _check_types,
    _const_ints,
    _count,
    _fail,
    _i32,
    _pad_shape,
    _t,
)
from edgeq.quantize.numerics import round_half_away
from edgeq.tflite import Operator, Tensor, TfliteModel

_MOVE_TYPES = ("int8", "int16", "int32", "float32")
MAX_SPLIT_OUTPUTS = 64  # EQ_SPLIT_MAX_OUTPUTS in eq_split_x.c
MAX_PACK_INPUTS = 16  # EQ_CONCAT_MAX_INPUTS in eq_concat_x.c


def _axis(op: Operator, axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise _fail(op, f"axis {axis} is out of range for rank {rank}", "fix the model")
    return a


def _movement(op: Operator, function: str, params_type: str, params: dict, inputs: list[int],
              outputs: list[int]) -> KernelCall:
    return KernelCall(layer=op.index, op=op.opcode, function=function, params_type=params_type,
                      params=params, inputs=inputs, outputs=outputs)


# ---------------------------------------------------------------------------------------------
# TILE


@lowering("TILE")
def lower_tile(model: TfliteModel, op: Operator) -> KernelCall:
    """TILE (LiteRT's reference; TFLite Micro has no TILE kernel): constant multiples."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    dtype = _check_types(op, [inp, out], _MOVE_TYPES)
    multiples = [int(m) for m in
                 _const_ints(model, op, op.inputs[1], "the multiples tensor").reshape(-1)]
    rank = len(inp.shape)
    if len(multiples) != rank or any(m < 0 for m in multiples):
        raise _fail(op, f"multiples {multiples} do not match the input rank {rank}",
                    "fix the model")
    if [int(d) * m for d, m in zip(inp.shape, multiples, strict=True)] != list(out.shape):
        raise _fail(op, "output shape is not the input shape times the multiples",
                    "fix the model")
    pad = MAX_RANK - rank
    params = {"elem_bytes": _ELEM_BYTES[dtype], "in_dims": _i32(_pad_shape(inp.shape)),
              "multiples": _i32([1] * pad + multiples)}
    return _movement(op, "eq_tile_x", "eq_tile_params", params, [op.inputs[0]],
                     [op.outputs[0]])


# ---------------------------------------------------------------------------------------------
# RESIZE_NEAREST_NEIGHBOR


def nearest_indices(in_size: int, out_size: int, align_corners: bool,
                    half_pixel_centers: bool) -> np.ndarray:
    """TFLite's GetNearestNeighbor for every output coordinate, in its float32 arithmetic."""
    f = np.float32
    if align_corners and out_size > 1:
        scale = f(f(in_size - 1) / f(out_size - 1))
    else:
        scale = f(f(in_size) / f(out_size))
    offset = f(0.5) if half_pixel_centers else f(0.0)
    out = []
    for v in range(out_size):
        x = f(f(f(v) + offset) * scale)
        idx = int(round_half_away(x)) if align_corners else math.floor(float(x))
        idx = min(idx, in_size - 1)
        if half_pixel_centers:
            idx = max(0, idx)
        out.append(idx)
    return _i32(out)


def _resize_geometry(model: TfliteModel, op: Operator, inp: Tensor, out: Tensor
                     ) -> tuple[int, int, int, int, list[int], bool, bool]:
    """(batches, in h, in w, channels, [out h, out w], align_corners, half_pixel_centers) of a
    RESIZE_* op whose constant size agrees with its NHWC output."""
    if len(inp.shape) != 4 or len(out.shape) != 4:
        raise _fail(op, "input is not 4-D (NHWC)", "resize 4-D images only")
    size = [int(s) for s in _const_ints(model, op, op.inputs[1], "the size tensor").reshape(-1)]
    n, h, w, c = (int(d) for d in inp.shape)
    if len(size) != 2 or list(out.shape) != [n, size[0], size[1], c] or min(size) <= 0:
        raise _fail(op, f"size {size} does not match the output shape {list(out.shape)}",
                    "fix the model")
    o = op.options
    align, half = bool(o.get("alignCorners", False)), bool(o.get("halfPixelCenters", False))
    return n, h, w, c, size, align, half


@lowering("RESIZE_NEAREST_NEIGHBOR")
def lower_resize_nearest(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM resize_nearest_neighbor.cc: NHWC, constant size; index tables computed here."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    dtype = _check_types(op, [inp, out], _MOVE_TYPES)
    n, h, w, c, size, align, half = _resize_geometry(model, op, inp, out)
    params = {"elem_bytes": _ELEM_BYTES[dtype], "batches": n, "in_height": h, "in_width": w,
              "channels": c, "out_height": size[0], "out_width": size[1],
              "y_index": nearest_indices(h, size[0], align, half),
              "x_index": nearest_indices(w, size[1], align, half)}
    return _movement(op, "eq_resize_nearest_x", "eq_resize_nearest_params", params,
                     [op.inputs[0]], [op.outputs[0]])


# ---------------------------------------------------------------------------------------------
# RESIZE_BILINEAR


def _div0(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def bilinear_tables(in_size: int, out_size: int, align_corners: bool,
                    half_pixel_centers: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower index, upper index, 10-bit weight of the upper one) per output coordinate:
    TFLite's ResizeBilinearInteger scale and ComputeInterpolationValuesInteger."""
    if align_corners and out_size > 1:
        scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = ((1 << 10) * in_size + out_size // 2) // out_size
    lo, hi, weight = [], [], []
    for v in range(out_size):
        scaled = v * scale + scale // 2 - (1 << 9) if half_pixel_centers else v * scale
        low = max(_div0(scaled, 1 << 10), 0)
        lo.append(low)
        hi.append(min(_div0(scaled + (1 << 10) - 1, 1 << 10), in_size - 1))
        weight.append(scaled - (1 << 10) * low)
    return _i32(lo), _i32(hi), _i32(weight)


@lowering("RESIZE_BILINEAR")
def lower_resize_bilinear(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM resize_bilinear.cc (int8): NHWC, constant size, not both align_corners and
    half_pixel_centers; the interpolation tables are computed here."""
    inp, out = _t(model, op.inputs[0]), _t(model, op.outputs[0])
    _check_types(op, [inp, out], ("int8",))
    n, h, w, c, size, align, half = _resize_geometry(model, op, inp, out)
    if align and half:
        raise _fail(op, "align_corners and half_pixel_centers are both set",
                    "TFLM refuses this combination too; set at most one")
    y0, y1, wy = bilinear_tables(h, size[0], align, half)
    x0, x1, wx = bilinear_tables(w, size[1], align, half)
    params = {"batches": n, "in_height": h, "in_width": w, "channels": c,
              "out_height": size[0], "out_width": size[1],
              "y0": y0, "y1": y1, "wy": wy, "x0": x0, "x1": x1, "wx": wx}
    return _movement(op, "eq_resize_bilinear_s8", "eq_resize_bilinear_params", params,
                     [op.inputs[0]], [op.outputs[0]])


# ---------------------------------------------------------------------------------------------
# SPLIT / SPLIT_V / UNPACK


def _split_call(model: TfliteModel, op: Operator, data: int, axis: int) -> KernelCall:
    """Deal the rows of ``[outer, ...]`` out to the outputs (any split along ``axis``)."""
    inp = _t(model, data)
    outs = [_t(model, i) for i in op.outputs]
    dtype = _check_types(op, [inp, *outs], _MOVE_TYPES)
    if len(outs) > MAX_SPLIT_OUTPUTS:
        raise _fail(op, f"{len(outs)} outputs (edgeq-rt has at most {MAX_SPLIT_OUTPUTS})",
                    "split into fewer parts")
    axis = _axis(op, axis, len(inp.shape))
    outer = _count(inp.shape[:axis])
    copy = [_count(t.shape) // max(outer, 1) for t in outs]
    if outer * sum(copy) != _count(inp.shape) or any(
            c * outer != _count(t.shape) for c, t in zip(copy, outs, strict=True)):
        raise _fail(op, "output shapes do not add up to the input shape", "fix the model")
    params = {"elem_bytes": _ELEM_BYTES[dtype], "num_outputs": len(outs), "outer": outer,
              "copy_elems": _i32(copy)}
    return _movement(op, "eq_split_x", "eq_split_params", params, [data], list(op.outputs))


@lowering("SPLIT")
def lower_split(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM split.cc: inputs (axis, data), equal parts."""
    axis = int(_const_ints(model, op, op.inputs[0], "the axis").reshape(-1)[0])
    return _split_call(model, op, op.inputs[1], axis)


@lowering("SPLIT_V")
def lower_split_v(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM split_v.cc: inputs (data, size_splits, axis); sizes come from the output shapes."""
    axis = int(_const_ints(model, op, op.inputs[2], "the axis").reshape(-1)[0])
    return _split_call(model, op, op.inputs[0], axis)


@lowering("UNPACK")
def lower_unpack(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM unpack.cc: a split into single slices with the axis dropped."""
    return _split_call(model, op, op.inputs[0], int(op.options.get("axis", 0)))


# ---------------------------------------------------------------------------------------------
# PACK


@lowering("PACK")
def lower_pack(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM pack.cc: the inputs stacked along a new axis (a copy, no requantization)."""
    ins = [_t(model, i) for i in op.inputs]
    out = _t(model, op.outputs[0])
    dtype = _check_types(op, [*ins, out], _MOVE_TYPES)
    if len(ins) > MAX_PACK_INPUTS:
        raise _fail(op, f"{len(ins)} inputs (edgeq-rt has at most {MAX_PACK_INPUTS})",
                    "stack fewer tensors at once")
    axis = _axis(op, int(op.options.get("axis", 0)), len(out.shape))
    outer = _count(out.shape[:axis])
    inner = _count(ins[0].shape) // max(outer, 1)
    if any(_count(t.shape) != _count(ins[0].shape) for t in ins) or \
            outer * inner * len(ins) != _count(out.shape):
        raise _fail(op, "input shapes do not stack to the output shape", "fix the model")
    params = {"elem_bytes": _ELEM_BYTES[dtype], "num_inputs": len(ins), "outer": outer,
              "copy_elems": _i32([inner] * len(ins))}
    return _movement(op, "eq_concat_x", "eq_concat_params", params, list(op.inputs),
                     [op.outputs[0]])


# ---------------------------------------------------------------------------------------------
# GATHER


@lowering("GATHER")
def lower_gather(model: TfliteModel, op: Operator) -> KernelCall:
    """TFLM gather.cc: int8 or float32 data, int32 positions, any axis and batch_dims."""
    inp, idx, out = _t(model, op.inputs[0]), _t(model, op.inputs[1]), _t(model, op.outputs[0])
    dtype = _check_types(op, [inp, out], ("int8", "float32"))
    if idx.dtype != "int32":
        raise _fail(op, f"positions are {idx.dtype}", "TFLM's GATHER takes int32 positions")
    rank, irank = len(inp.shape), len(idx.shape)
    axis = _axis(op, int(op.options.get("axis", 0)), rank)
    batch_dims = int(op.options.get("batchDims", 0))
    batch_dims = batch_dims + irank if batch_dims < 0 else batch_dims
    if not (0 <= batch_dims <= axis and batch_dims < rank and batch_dims <= irank) or \
            list(inp.shape[:batch_dims]) != list(idx.shape[:batch_dims]):
        raise _fail(op, f"batch_dims {batch_dims} does not fit axis {axis}", "fix the model")
    axis_size = int(inp.shape[axis])
    if idx.data is not None:
        values = np.asarray(idx.data).reshape(-1)
        if values.size and (values.min() < 0 or values.max() >= axis_size):
            raise _fail(op, f"a constant position is outside [0, {axis_size})", "fix the model")
    expected = [*inp.shape[:axis], *idx.shape[batch_dims:], *inp.shape[axis + 1:]]
    if [int(d) for d in expected] != [int(d) for d in out.shape]:
        raise _fail(op, "output shape does not match the gather", "fix the model")
    params = {"elem_bytes": _ELEM_BYTES[dtype], "batch_size": _count(inp.shape[:batch_dims]),
              "outer_size": _count(inp.shape[batch_dims:axis]), "axis_size": axis_size,
              "coord_size": _count(idx.shape[batch_dims:]),
              "inner_size": _count(inp.shape[axis + 1:])}
    return _movement(op, "eq_gather_x", "eq_gather_params", params,
                     [op.inputs[0], op.inputs[1]], [op.outputs[0]])
