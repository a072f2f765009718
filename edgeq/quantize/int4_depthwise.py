"""int4 depthwise filters, written by edgeq into an int8 model.

Why: ai-edge-quantizer (0.10) quantizes CONV_2D and FULLY_CONNECTED weights to int4 but not
DEPTHWISE_CONV_2D, so on depthwise-heavy models the smallest mixed-precision model stayed at
~0.6x of the int8 weight bytes. TFLite Micro's depthwise kernel unpacks int4 filters and
edgeq-rt lowers them to its LUT kernel, so the only missing piece is the file: this module
takes the int8 model the quantizer built and rewrites the named depthwise filters as
per-channel symmetric int4 (scale = max|w| / 7, values in [-7, 7], two per byte, element 0 in
the low nibble) from the float weights, and re-quantizes their int32 biases to the new
``input_scale * filter_scale``. Everything else in the file is untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from edgeq.errors import QuantizeError

DEPTHWISE_CONV_2D = 4  # BuiltinOperator
INT4, INT32 = 17, 2  # TensorType
QMAX = 7


def int4_grid(w: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(int4 values, per-channel scales) of float weights ``w``, channels on ``axis``."""
    w = np.moveaxis(np.asarray(w, dtype=np.float64), axis, -1)
    amax = np.abs(w.reshape(-1, w.shape[-1])).max(axis=0)
    scale = np.where(amax > 0, amax / QMAX, 1.0)
    q = np.clip(np.round(w / scale), -QMAX, QMAX).astype(np.int8)
    return np.moveaxis(q, -1, axis), scale


def pack_int4(values: np.ndarray) -> np.ndarray:
    """Two's-complement nibbles, element 0 in the low nibble (TFLite's int4 layout)."""
    v = (np.asarray(values, dtype=np.int8).ravel() & 0x0F).astype(np.uint8)
    if v.size % 2:
        v = np.append(v, np.uint8(0))
    return (v[0::2] | (v[1::2] << 4)).astype(np.uint8)


def _opcode(model_t: object, op: object) -> int:
    code = model_t.operatorCodes[op.opcodeIndex]  # type: ignore[attr-defined]
    return max(int(code.builtinCode), int(code.deprecatedBuiltinCode))


def _name(tensor: object) -> str:
    n = tensor.name  # type: ignore[attr-defined]
    return n.decode() if isinstance(n, bytes) else str(n)


def _float_weights(float_model: bytes) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Depthwise op output name -> (float filter, float bias or None) of the float model."""
    from edgeq.tflite import read_tflite_bytes

    fm = read_tflite_bytes(float_model)
    out = {}
    for op in fm.operators:
        if op.opcode != "DEPTHWISE_CONV_2D":
            continue
        f = fm.tensors[op.inputs[1]]
        b = fm.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        if f.data is None or f.dtype != "float32":
            continue
        bias = None if b is None or b.data is None else np.asarray(b.data, dtype=np.float64)
        out[fm.tensors[op.outputs[0]].name] = (np.asarray(f.data, dtype=np.float64), bias)
    return out


def int4_depthwise(quantized: bytes, float_model: bytes, names: Iterable[str]) -> bytes:
    """``quantized`` with the filters of the named DEPTHWISE_CONV_2D ops stored as int4.

    ``names`` are op output-tensor names (as in ``WeightLayer.name``), the same in both models.
    """
    from edgeq.tflite import load_model_t, serialize_model_t
    from edgeq.tflite.reader import schema

    wanted = set(names)
    if not wanted:
        return quantized
    floats = _float_weights(float_model)
    missing = sorted(wanted - set(floats))
    if missing:
        raise QuantizeError(f"no float depthwise layer named {', '.join(missing)}; "
                            "int4 depthwise needs the float model the int8 one came from")
    s = schema()
    model_t = load_model_t(quantized)
    sg = model_t.subgraphs[0]
    done = set()
    for op in sg.operators:
        if _opcode(model_t, op) != DEPTHWISE_CONV_2D:
            continue
        name = _name(sg.tensors[op.outputs[0]])
        if name not in wanted:
            continue
        inp, filt = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]]
        if inp.type != 9:  # int8 activations only (int4x8)
            raise QuantizeError(f"{name}: int4 depthwise needs int8 activations")
        w, b = floats[name]
        q, scale = int4_grid(w, axis=-1)
        in_scale = float(inp.quantization.scale[0])
        filt.type = INT4
        _set_buffer(model_t, s, filt, pack_int4(q).tobytes())
        filt.quantization.scale = [float(v) for v in scale]
        filt.quantization.zeroPoint = [0] * len(scale)
        filt.quantization.quantizedDimension = 3
        filt.quantization.min = filt.quantization.max = None
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bias_t = sg.tensors[op.inputs[2]]
            bias = np.zeros(len(scale)) if b is None else b
            bias_scale = in_scale * scale
            qb = np.clip(np.round(bias / bias_scale), -(2**31), 2**31 - 1).astype("<i4")
            bias_t.type = INT32
            _set_buffer(model_t, s, bias_t, qb.tobytes())
            bias_t.quantization.scale = [float(v) for v in bias_scale]
            bias_t.quantization.zeroPoint = [0] * len(scale)
            bias_t.quantization.quantizedDimension = 0
        done.add(name)
    if done != wanted:
        raise QuantizeError(f"no int8 depthwise op named {', '.join(sorted(wanted - done))} "
                            "in the quantized model")
    return serialize_model_t(model_t)


def _set_buffer(model_t: object, s: object, tensor: object, data: bytes) -> None:
    """Give ``tensor`` ``data``: in place when no other tensor shares its buffer, else a new one."""
    users = sum(1 for sg in model_t.subgraphs for t in sg.tensors  # type: ignore[attr-defined]
                if t.buffer == tensor.buffer)  # type: ignore[attr-defined]
    arr = np.frombuffer(data, dtype=np.uint8).copy()
    if users == 1 and tensor.buffer > 0:  # type: ignore[attr-defined]
        buf = model_t.buffers[tensor.buffer]  # type: ignore[attr-defined]
        buf.data, buf.offset, buf.size = arr, 0, 0
        return
    buf = s.BufferT()  # type: ignore[attr-defined]
    buf.data = arr
    model_t.buffers.append(buf)  # type: ignore[attr-defined]
    tensor.buffer = len(model_t.buffers) - 1  # type: ignore[attr-defined]
