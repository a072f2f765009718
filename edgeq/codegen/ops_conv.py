"""Lowerings of the "conv family" to edgeq-rt kernels: TFLM's Prepare, done ahead of time.

CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D, MAX_POOL_2D (int8, and int16x8
with int8 weights), QUANTIZE, DEQUANTIZE, and RESHAPE/SQUEEZE/EXPAND_DIMS as views. Each
lowering computes exactly what TFLite Micro computes in its Prepare (multipliers from double
products of float32 scales, paddings, activation clamps), so the kernels only loop; any input
the kernels cannot reproduce bit-exactly raises ``CodegenError`` with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeq.codegen import weight_packing
from edgeq.codegen.lowering import KernelCall, lowering
from edgeq.errors import CodegenError
from edgeq.quantize.numerics import (
    fused_activation_range,
    quantize_multiplier,
)
from edgeq.tflite import Operator, Tensor, TfliteModel

C_DTYPE_ENUM = {"int8": "EQ_INT8", "int16": "EQ_INT16", "float32": "EQ_FLOAT32",
                "int32": "EQ_INT32", "uint8": "EQ_UINT8"}
_SUFFIX = {"int8": "s8", "int16": "s16"}


def tensor(model: TfliteModel, index: int) -> Tensor:
    return model.tensors[index]


def scale_of(t: Tensor) -> float:
    """The per-tensor scale as TFLM reads it (float32 widened to double)."""
    if t.quant is None or t.quant.scale.size == 0:
        raise CodegenError(f"tensor {t.name!r} has no quantization")
    return float(np.float32(t.quant.scale[0]))


def zero_point_of(t: Tensor) -> int:
    if t.quant is None or t.quant.zero_point.size == 0:
        return 0
    return int(t.quant.zero_point[0])


def require_dtype(t: Tensor, allowed: tuple[str, ...], role: str) -> None:
    if t.dtype not in allowed:
        raise CodegenError(f"{role} is {t.dtype}, needs {'/'.join(allowed)}")
    if t.dtype in ("int8", "int16", "uint8") and (t.quant is None or t.quant.scale.size == 0):
        raise CodegenError(f"{role} is {t.dtype} without quantization parameters")


def activation_range(act: str, out: Tensor) -> tuple[int, int]:
    """The fused activation's clamp on ``out``'s grid (``numerics.fused_activation_range``)."""
    try:
        return fused_activation_range(act, scale_of(out), zero_point_of(out), out.dtype)
    except ValueError:
        raise CodegenError(f"fused activation {act} is not supported") from None


def same_padding(stride: int, dilation: int, in_size: int, filter_size: int, out_size: int) -> int:
    """TFLM's ComputePaddingWithOffset: the top/left padding (the rest is clipped)."""
    effective = (filter_size - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - in_size, 0)
    return total // 2


def out_size(padding: str, in_size: int, filter_size: int, stride: int, dilation: int) -> int:
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    if padding == "VALID":
        return (in_size + stride - effective) // stride
    raise CodegenError(f"padding {padding} is not supported")


def _padding(opts: dict[str, Any], in_hw: tuple[int, int], f_hw: tuple[int, int],
             out_hw: tuple[int, int], dil: tuple[int, int]) -> dict[str, int]:
    stride = (int(opts.get("strideH", 1)), int(opts.get("strideW", 1)))
    pad = str(opts.get("padding", "VALID"))
    for k in range(2):
        want = out_size(pad, in_hw[k], f_hw[k], stride[k], dil[k])
        if want != out_hw[k]:
            raise CodegenError(f"output size {out_hw} does not match {pad} padding ({want})")
    if pad == "VALID":
        return {"h": 0, "w": 0}
    return {"h": same_padding(stride[0], dil[0], in_hw[0], f_hw[0], out_hw[0]),
            "w": same_padding(stride[1], dil[1], in_hw[1], f_hw[1], out_hw[1])}


def raster_overlap(
    batches: int, in_hwc: tuple[int, int, int], out_hwc: tuple[int, int, int],
    stride: dict[str, int], padding: dict[str, int], in_bytes: int, out_bytes: int,
) -> int:
    """How far above its input's start a raster-order kernel's output may begin (bytes).

    The conv, depthwise and pooling kernels finish each output pixel (all channels) before the
    next, in NHWC raster order, and never read input bytes below the first byte of the current
    pixel's window (rows/columns clipped at 0) again. Writing pixel ``p`` is safe when its bytes
    lie below every input byte still to be read; the minimum over pixels of that margin is the
    allowed offset (negative: the output must start that far below the input).
    """
    ih, iw, ic = in_hwc
    oh, ow, oc = out_hwc
    rows = np.clip(np.arange(oh) * stride["h"] - padding["h"], 0, ih - 1)
    cols = np.clip(np.arange(ow) * stride["w"] - padding["w"], 0, iw - 1)
    first = (rows[:, None] * iw + cols[None, :]).reshape(-1) * ic
    first = (np.arange(batches)[:, None] * (ih * iw * ic) + first[None, :]).reshape(-1)
    still_needed = np.minimum.accumulate(first[::-1])[::-1] * in_bytes
    written_end = (np.arange(first.size) + 1) * oc * out_bytes
    return int(np.min(still_needed - written_end))


def requant_params(inp: Tensor, filt: Tensor, out: Tensor, channels: int) -> dict[str, Any]:
    """Per-channel (or per-tensor) multipliers: ``in_scale * filter_scale / out_scale`` in double."""
    if filt.quant is None or filt.quant.scale.size == 0:
        raise CodegenError("filter has no quantization parameters")
    fscales = np.asarray(filt.quant.scale, dtype=np.float32)
    per_channel = fscales.size > 1
    if per_channel and fscales.size != channels:
        raise CodegenError(f"filter has {fscales.size} scales for {channels} output channels")
    if np.any(np.asarray(filt.quant.zero_point) != 0) and (per_channel or inp.dtype == "int16"):
        raise CodegenError("filter zero points must be 0 (symmetric weights)")
    in_s, out_s = scale_of(inp), scale_of(out)
    mults, shifts = [], []
    for fs in fscales:
        m, s = quantize_multiplier(in_s * float(fs) / out_s)
        mults.append(m)
        shifts.append(s)
    return {
        "per_channel": int(per_channel),
        "multiplier": np.asarray(mults, dtype=np.int32),
        "shift": np.asarray(shifts, dtype=np.int32),
    }


def fast_requant(requant: dict[str, Any]) -> np.ndarray | None:
    """Per entry (multiplier, 2^(e-2), e-1) with e = -shift, for the int8 kernels'
    ``eq_requantize_double_pre`` (TFLM's double rounding as one SMLAL and one shift); None
    unless every shift is a right shift by at least 2 (then the kernels use the generic path)."""
    e = -np.asarray(requant["shift"], dtype=np.int64)
    if e.size == 0 or np.any(e < 2) or np.any(e > 31):
        return None
    mult = np.asarray(requant["multiplier"], dtype=np.int64)
    return np.stack([mult, 2 ** (e - 2), e - 1], axis=1).astype(np.int32).reshape(-1)


def _add_fast_requant(requant: dict[str, Any]) -> None:
    """Where the table exists the int8 conv/depthwise kernels read only it, so the plain
    multiplier/shift arrays are not emitted (8 bytes per channel; ``plain_requant`` gets them
    back for kernels that need them)."""
    fast = fast_requant(requant)
    if fast is not None:
        requant["fast"] = fast
        del requant["multiplier"], requant["shift"]


def plain_requant(requant: dict[str, Any]) -> dict[str, Any]:
    """The requantization without the fast table, multiplier/shift rebuilt from it if dropped:
    for kernels that read the plain arrays (the LUT variants)."""
    out = {k: v for k, v in requant.items() if k != "fast"}
    if "fast" in requant and "multiplier" not in requant:
        fast = np.asarray(requant["fast"], dtype=np.int64).reshape(-1, 3)
        out["multiplier"] = fast[:, 0].astype(np.int32)
        out["shift"] = (-(fast[:, 2] + 1)).astype(np.int32)
    return out


def _overlap(params: dict[str, Any], inp: Tensor, out: Tensor) -> int:
    c_in = params.get("in_c", params.get("channels"))
    c_out = params.get("out_c", params.get("channels"))
    es_in = inp.nbytes // max(int(np.prod(inp.shape)), 1)
    es_out = out.nbytes // max(int(np.prod(out.shape)), 1)
    return raster_overlap(params["batches"], (params["in_h"], params["in_w"], c_in),
                          (params["out_h"], params["out_w"], c_out), params["stride"],
                          params["padding"], es_in, es_out)


def _io_types(model: TfliteModel, op: Operator) -> tuple[Tensor, Tensor, str]:
    inp = tensor(model, op.inputs[0])
    out = tensor(model, op.outputs[0])
    require_dtype(inp, ("int8", "int16"), "input")
    if out.dtype != inp.dtype:
        raise CodegenError(f"output is {out.dtype} but input is {inp.dtype}")
    require_dtype(out, (inp.dtype,), "output")
    if inp.dtype == "int16" and (zero_point_of(inp) != 0 or zero_point_of(out) != 0):
        raise CodegenError("int16 activations need zero point 0 (int16x8 scheme)")
    return inp, out, inp.dtype


def _weights(model: TfliteModel, op: Operator, act_dtype: str) -> tuple[Tensor, Tensor | None, int]:
    filt = tensor(model, op.inputs[1])
    if filt.dtype != "int8":
        raise CodegenError(f"filter is {filt.dtype}, needs int8")
    if not filt.is_constant:
        raise CodegenError("filter is not a constant tensor")
    bias = None
    bias_64 = 0
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = tensor(model, op.inputs[2])
        allowed = ("int32",) if act_dtype == "int8" else ("int64", "int32")
        if bias.dtype not in allowed:
            raise CodegenError(f"bias is {bias.dtype}, needs {'/'.join(allowed)}")
        if not bias.is_constant:
            raise CodegenError("bias is not a constant tensor")
    if act_dtype == "int16":
        bias_64 = int(bias is None or bias.dtype == "int64")
    return filt, bias, bias_64


def _shape4(t: Tensor, role: str) -> tuple[int, int, int, int]:
    if len(t.shape) != 4:
        raise CodegenError(f"{role} has rank {len(t.shape)}, needs 4 (NHWC)")
    n, h, w, c = (int(d) for d in t.shape)
    return n, h, w, c


def folded_bias(filt: Tensor, bias: Tensor | None, input_offset: int,
                channel_axis: int = 0) -> np.ndarray:
    """Per output channel ``bias + input_offset * sum(filter)``: where a window lies wholly inside
    the image, TFLM's ``sum(w * (x + off)) + bias`` equals ``folded + sum(w * x)``, so the kernel
    skips one add per tap. Wrapped to int32 like the kernel's two's complement sums, so the
    final accumulator is the same integer whenever TFLM's own int32 sum does not overflow."""
    w = np.moveaxis(np.asarray(filt.data, dtype=np.int64), channel_axis, 0)
    acc = input_offset * w.reshape(w.shape[0], -1).sum(axis=1)
    if bias is not None:
        acc = acc + np.asarray(bias.data, dtype=np.int64).reshape(-1)
    return ((acc + 2**31) % 2**32 - 2**31).astype(np.int32)


@lowering("CONV_2D")
def lower_conv2d(model: TfliteModel, op: Operator) -> KernelCall:
    inp, out, dt = _io_types(model, op)
    filt, bias, bias_64 = _weights(model, op, dt)
    n, ih, iw, ic = _shape4(inp, "input")
    _, oh, ow, oc = _shape4(out, "output")
    foc, fh, fw, fic = _shape4(filt, "filter")
    if foc != oc or fic <= 0 or ic % fic != 0 or oc % (ic // fic) != 0:
        raise CodegenError(f"filter shape {filt.shape} does not fit input {inp.shape}")
    o = op.options
    dil = (int(o.get("dilationHFactor", 1)), int(o.get("dilationWFactor", 1)))
    lo, hi = activation_range(o.get("fusedActivationFunction", "NONE"), out)
    params = {
        "batches": n, "in_h": ih, "in_w": iw, "in_c": ic, "out_h": oh, "out_w": ow, "out_c": oc,
        "filter_h": fh, "filter_w": fw, "filter_in_c": fic,
        "stride": {"h": int(o.get("strideH", 1)), "w": int(o.get("strideW", 1))},
        "dilation": {"h": dil[0], "w": dil[1]},
        "padding": _padding(o, (ih, iw), (fh, fw), (oh, ow), dil),
        "input_offset": -zero_point_of(inp), "output_offset": zero_point_of(out),
        "act_min": lo, "act_max": hi, "bias_64": bias_64,
        "requant": requant_params(inp, filt, out, oc),
    }
    filter_input = op.inputs[1]
    if dt == "int8":
        _add_fast_requant(params["requant"])
    if dt == "int8" and fic == ic:
        params["bias_folded"] = folded_bias(filt, bias, -zero_point_of(inp))
        rows = np.asarray(filt.data, dtype=np.int8).reshape(oc, fh, fw * ic)
        padded = weight_packing.padded_row(fw * ic)
        if dil[1] == 1 and weight_packing.can_pack(ic):
            # the kernel reads the packed copy; the plain filter is not emitted
            params["filter_packed"] = weight_packing.pack_blocks(rows.reshape(oc, -1))
            params["packed_row"] = 0
            filter_input = -1
        elif (dil[1] == 1 and oc >= weight_packing.WINDOW_MIN_CHANNELS
              and fh * padded <= weight_packing.CONV_WINDOW_MAX):
            # small in_c: whole windows (rows zero-padded to whole words) through the same tile
            params["filter_packed"] = weight_packing.pack_blocks(
                weight_packing.pad_rows(rows, padded).reshape(oc, -1))
            params["packed_row"] = padded
            filter_input = -1
    return KernelCall(
        layer=op.index, op=op.opcode, function=f"eq_conv2d_{_SUFFIX[dt]}",
        params_type="eq_conv2d_params", params=params,
        inputs=[op.inputs[0], filter_input, bias.index if bias is not None else -1],
        outputs=[op.outputs[0]], macs=n * oh * ow * oc * fh * fw * fic,
        extra={"overlap_bytes": _overlap(params, inp, out)},
    )


@lowering("DEPTHWISE_CONV_2D")
def lower_depthwise_conv2d(model: TfliteModel, op: Operator) -> KernelCall:
    inp, out, dt = _io_types(model, op)
    filt, bias, bias_64 = _weights(model, op, dt)
    n, ih, iw, ic = _shape4(inp, "input")
    _, oh, ow, oc = _shape4(out, "output")
    one, fh, fw, foc = _shape4(filt, "filter")
    if one != 1 or foc != oc or ic <= 0 or oc % ic != 0:
        raise CodegenError(f"filter shape {filt.shape} does not fit input {inp.shape}")
    o = op.options
    dil = (int(o.get("dilationHFactor", 1)), int(o.get("dilationWFactor", 1)))
    lo, hi = activation_range(o.get("fusedActivationFunction", "NONE"), out)
    params = {
        "batches": n, "in_h": ih, "in_w": iw, "in_c": ic, "out_h": oh, "out_w": ow, "out_c": oc,
        "filter_h": fh, "filter_w": fw, "depth_multiplier": oc // ic,
        "stride": {"h": int(o.get("strideH", 1)), "w": int(o.get("strideW", 1))},
        "dilation": {"h": dil[0], "w": dil[1]},
        "padding": _padding(o, (ih, iw), (fh, fw), (oh, ow), dil),
        "input_offset": -zero_point_of(inp), "output_offset": zero_point_of(out),
        "act_min": lo, "act_max": hi, "bias_64": bias_64,
        "requant": requant_params(inp, filt, out, oc),
    }
    filter_input = op.inputs[1]
    if dt == "int8":
        _add_fast_requant(params["requant"])
    if dt == "int8" and oc == ic:
        params["bias_folded"] = folded_bias(filt, bias, -zero_point_of(inp), channel_axis=3)
        if weight_packing.can_pack_depthwise(oc, 1):
            params["filter_packed"] = weight_packing.pack_depthwise(filt.data)
            filter_input = -1
    elif dt == "int8" and weight_packing.can_pack_depthwise_multiplier(oc // ic, fh, fw):
        # depth multiplier > 1: a small convolution per input channel on the conv tile
        params["bias_folded"] = folded_bias(filt, bias, -zero_point_of(inp), channel_axis=3)
        params["filter_blocks"] = weight_packing.pack_depthwise_multiplier(filt.data, oc // ic)
        params["packed_row"] = weight_packing.padded_row(fw)
        filter_input = -1
    return KernelCall(
        layer=op.index, op=op.opcode, function=f"eq_depthwise_conv2d_{_SUFFIX[dt]}",
        params_type="eq_depthwise_conv2d_params", params=params,
        inputs=[op.inputs[0], filter_input, bias.index if bias is not None else -1],
        outputs=[op.outputs[0]], macs=n * oh * ow * oc * fh * fw,
        extra={"overlap_bytes": _overlap(params, inp, out)},
    )


@lowering("FULLY_CONNECTED")
def lower_fully_connected(model: TfliteModel, op: Operator) -> KernelCall:
    inp, out, dt = _io_types(model, op)
    filt, bias, bias_64 = _weights(model, op, dt)
    if len(filt.shape) != 2:
        raise CodegenError(f"filter has rank {len(filt.shape)}, needs 2")
    out_depth, depth = (int(d) for d in filt.shape)
    count = int(np.prod(inp.shape))
    if depth <= 0 or count % depth != 0:
        raise CodegenError(f"input {inp.shape} is not a multiple of the filter depth {depth}")
    batches = count // depth
    if int(np.prod(out.shape)) != batches * out_depth:
        raise CodegenError(f"output {out.shape} does not hold {batches}x{out_depth} values")
    o = op.options
    if int(o.get("weightsFormat", 0)) != 0:
        raise CodegenError("shuffled FULLY_CONNECTED weights are not supported")
    lo, hi = activation_range(o.get("fusedActivationFunction", "NONE"), out)
    params = {
        "batches": batches, "accum_depth": depth, "out_depth": out_depth,
        "input_offset": -zero_point_of(inp),
        "filter_offset": -zero_point_of(filt) if filt.quant is not None else 0,
        "output_offset": zero_point_of(out),
        "act_min": lo, "act_max": hi, "bias_64": bias_64,
        "requant": requant_params(inp, filt, out, out_depth),
    }
    filter_input = op.inputs[1]
    if dt == "int8" and params["filter_offset"] == 0:
        # every FC "window" is whole: the input offset always folds into the bias
        params["bias_folded"] = folded_bias(filt, bias, params["input_offset"])
        if weight_packing.can_pack(depth):
            params["filter_packed"] = weight_packing.pack_blocks(
                np.asarray(filt.data, dtype=np.int8).reshape(out_depth, depth))
            filter_input = -1
    return KernelCall(
        layer=op.index, op=op.opcode, function=f"eq_fully_connected_{_SUFFIX[dt]}",
        params_type="eq_fully_connected_params", params=params,
        inputs=[op.inputs[0], filter_input, bias.index if bias is not None else -1],
        outputs=[op.outputs[0]], macs=batches * out_depth * depth,
    )


def _lower_pool(model: TfliteModel, op: Operator, kind: str) -> KernelCall:
    inp, out, dt = _io_types(model, op)
    if scale_of(inp) != scale_of(out) or zero_point_of(inp) != zero_point_of(out):
        raise CodegenError("pooling input and output quantization differ")
    n, ih, iw, c = _shape4(inp, "input")
    _, oh, ow, oc = _shape4(out, "output")
    if oc != c:
        raise CodegenError("pooling changes the channel count")
    o = op.options
    fh, fw = int(o.get("filterHeight", 1)), int(o.get("filterWidth", 1))
    lo, hi = activation_range(o.get("fusedActivationFunction", "NONE"), out)
    params = {
        "batches": n, "in_h": ih, "in_w": iw, "channels": c, "out_h": oh, "out_w": ow,
        "filter_h": fh, "filter_w": fw,
        "stride": {"h": int(o.get("strideH", 1)), "w": int(o.get("strideW", 1))},
        "padding": _padding(o, (ih, iw), (fh, fw), (oh, ow), (1, 1)),
        "act_min": lo, "act_max": hi,
    }
    return KernelCall(
        layer=op.index, op=op.opcode, function=f"eq_{kind}_pool_{_SUFFIX[dt]}",
        params_type="eq_pool_params", params=params, inputs=[op.inputs[0]],
        outputs=[op.outputs[0]], macs=n * oh * ow * c * fh * fw,
        extra={"overlap_bytes": _overlap(params, inp, out)},
    )


@lowering("AVERAGE_POOL_2D")
def lower_avg_pool(model: TfliteModel, op: Operator) -> KernelCall:
    return _lower_pool(model, op, "avg")


@lowering("MAX_POOL_2D")
def lower_max_pool(model: TfliteModel, op: Operator) -> KernelCall:
    return _lower_pool(model, op, "max")


@lowering("QUANTIZE")
def lower_quantize(model: TfliteModel, op: Operator) -> KernelCall:
    inp, out = tensor(model, op.inputs[0]), tensor(model, op.outputs[0])
    count = int(np.prod(out.shape))
    if int(np.prod(inp.shape)) != count:
        raise CodegenError("QUANTIZE changes the element count")
    if inp.dtype == "float32":
        require_dtype(out, ("int8", "int16"), "output")
        params: dict[str, Any] = {
            "count": count, "scale": np.float32(scale_of(out)),
            "zero_point": zero_point_of(out), "out_dtype": C_DTYPE_ENUM[out.dtype],
        }
        fn, ptype = "eq_quantize_f32", "eq_quantize_params"
    else:
        require_dtype(inp, ("int8", "int16", "int32", "uint8"), "input")
        require_dtype(out, ("int8", "int16", "int32", "uint8"), "output")
        m, s = quantize_multiplier(scale_of(inp) / scale_of(out))
        params = {
            "count": count, "in_dtype": C_DTYPE_ENUM[inp.dtype],
            "out_dtype": C_DTYPE_ENUM[out.dtype],
            "input_zero_point": zero_point_of(inp), "output_zero_point": zero_point_of(out),
            "multiplier": m, "shift": s,
        }
        fn, ptype = "eq_requantize_x", "eq_requantize_params"
    return KernelCall(
        layer=op.index, op=op.opcode, function=fn, params_type=ptype, params=params,
        inputs=[op.inputs[0]], outputs=[op.outputs[0]], macs=count,
        in_place=inp.nbytes == out.nbytes,
    )


@lowering("DEQUANTIZE")
def lower_dequantize(model: TfliteModel, op: Operator) -> KernelCall:
    inp, out = tensor(model, op.inputs[0]), tensor(model, op.outputs[0])
    require_dtype(inp, ("int8", "int16"), "input")
    if out.dtype != "float32":
        raise CodegenError(f"output is {out.dtype}, needs float32")
    count = int(np.prod(inp.shape))
    params = {
        "count": count, "in_dtype": C_DTYPE_ENUM[inp.dtype],
        "scale": np.float32(scale_of(inp)), "zero_point": zero_point_of(inp),
    }
    return KernelCall(
        layer=op.index, op=op.opcode, function="eq_dequantize_f32",
        params_type="eq_dequantize_params", params=params, inputs=[op.inputs[0]],
        outputs=[op.outputs[0]], macs=count,
    )


@lowering("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def lower_view(model: TfliteModel, op: Operator) -> KernelCall:
    """Shape-only ops: the output is the input's storage under another shape (no code)."""
    inp, out = tensor(model, op.inputs[0]), tensor(model, op.outputs[0])
    if inp.dtype != out.dtype or inp.nbytes != out.nbytes:
        raise CodegenError(f"{inp.dtype}{list(inp.shape)} -> {out.dtype}{list(out.shape)} "
                           "is not a pure reshape")
    return KernelCall(
        layer=op.index, op=op.opcode, function="", params_type="", params={},
        inputs=[op.inputs[0]], outputs=[op.outputs[0]], view=True,
    )


def transpose_conv_scratch_bytes(params: dict[str, Any], act_dtype: str) -> int:
    """Mirror of C ``eq_transpose_conv_{s8,s16}_get_buffer_size``: one accumulator (int32 for
    int8, int64 for int16) per output element."""
    acc_bytes = 4 if act_dtype == "int8" else 8
    return params["batches"] * params["out_h"] * params["out_w"] * params["out_c"] * acc_bytes


@lowering("TRANSPOSE_CONV")
def lower_transpose_conv(model: TfliteModel, op: Operator) -> KernelCall:
    """Inputs are (output shape, filter, input[, bias]); the output shape must match the output
    tensor's static shape (the generated code has no dynamic shapes)."""
    if len(op.inputs) < 3:
        raise CodegenError("TRANSPOSE_CONV needs output shape, filter and input")
    shape_t = tensor(model, op.inputs[0])
    inp = tensor(model, op.inputs[2])
    out = tensor(model, op.outputs[0])
    require_dtype(inp, ("int8", "int16"), "input")
    dt = inp.dtype
    require_dtype(out, (dt,), "output")
    if dt == "int16" and (zero_point_of(inp) != 0 or zero_point_of(out) != 0):
        raise CodegenError("int16 activations need zero point 0 (int16x8 scheme)")
    if shape_t.is_constant and tuple(int(v) for v in shape_t.data.reshape(-1)) != out.shape:
        raise CodegenError(f"output shape tensor {shape_t.data.tolist()} differs from {out.shape}")
    filt = tensor(model, op.inputs[1])
    if filt.dtype != "int8" or not filt.is_constant:
        raise CodegenError(f"filter is {filt.dtype}{'' if filt.is_constant else ' (not constant)'}"
                           ", needs a constant int8 tensor")
    bias = None
    if len(op.inputs) > 3 and op.inputs[3] >= 0:
        bias = tensor(model, op.inputs[3])
        allowed = ("int32",) if dt == "int8" else ("int64", "int32")
        if bias.dtype not in allowed or not bias.is_constant:
            raise CodegenError(f"bias is {bias.dtype}, needs a constant {'/'.join(allowed)}")
    n, ih, iw, ic = _shape4(inp, "input")
    _, oh, ow, oc = _shape4(out, "output")
    foc, fh, fw, fic = _shape4(filt, "filter")
    if foc != oc or fic != ic:
        raise CodegenError(f"filter shape {filt.shape} does not fit {inp.shape} -> {out.shape}")
    o = op.options
    stride = {"h": int(o.get("strideH", 1)), "w": int(o.get("strideW", 1))}
    pad = str(o.get("padding", "VALID"))
    padding = {"h": 0, "w": 0}
    if pad == "SAME":  # TFLM: the forward convolution's padding, with the output as its input
        padding = {
            "h": same_padding(stride["h"], 1, oh, fh, out_size(pad, oh, fh, stride["h"], 1)),
            "w": same_padding(stride["w"], 1, ow, fw, out_size(pad, ow, fw, stride["w"], 1)),
        }
    elif pad != "VALID":
        raise CodegenError(f"padding {pad} is not supported")
    lo, hi = activation_range(o.get("fusedActivationFunction", "NONE"), out)
    params = {
        "batches": n, "in_h": ih, "in_w": iw, "in_c": ic, "out_h": oh, "out_w": ow, "out_c": oc,
        "filter_h": fh, "filter_w": fw, "stride": stride, "padding": padding,
        "input_offset": -zero_point_of(inp), "output_offset": zero_point_of(out),
        "act_min": lo, "act_max": hi,
        "bias_64": int(dt == "int16" and (bias is None or bias.dtype == "int64")),
        "requant": requant_params(inp, filt, out, oc),
    }
    return KernelCall(
        layer=op.index, op=op.opcode, function=f"eq_transpose_conv_{_SUFFIX[dt]}",
        params_type="eq_transpose_conv_params", params=params,
        inputs=[op.inputs[1], op.inputs[2], bias.index if bias is not None else -1],
        outputs=[op.outputs[0]], macs=n * ih * iw * ic * fh * fw * oc,
        scratch_bytes=transpose_conv_scratch_bytes(params, dt),
    )
