"""Lowering of UNIDIRECTIONAL_SEQUENCE_LSTM (int8, 16-bit cell state) to ``eq_sequence_lstm_s8``.

TFLite Micro's integer LSTM Prepare, done ahead of time: each gate's two fully connected
products are requantized to int16 on the 2^-12 grid, gate activations come out on 2^-15, the cell
state is int16 on a power-of-two grid. Multipliers are computed as TFLM computes them (the
gate products from the float32 product of the input and weight scales; the element-wise
products from double scales). Only the plain Keras LSTM is supported (no peephole, projection,
layer norm or CIFG) -- the one TFLM runs.

State: TFLM keeps the hidden and cell state in variable tensors across ``Invoke()`` until
``Reset()``; edgeq's oracle resets after every sample, and the kernel starts every invoke from
that reset state (hidden = its zero point, cell = 0), so state lives in the call's scratch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgeq.codegen.lowering import KernelCall, lowering
from edgeq.codegen.ops_elementwise import sigmoid_table_uint16
from edgeq.errors import CodegenError
from edgeq.quantize.numerics import quantize_multiplier
from edgeq.tflite import Operator, Tensor, TfliteModel

GATE_SCALE = 2.0 ** -12  # gate pre-activations (Q3.12)
ACT_SCALE = 2.0 ** -15  # gate activations (Q0.15)
# TFLite's input order: weights input->{i,f,c,o} 1-4, recurrent->{i,f,c,o} 5-8, bias 12-15
_IN_W, _REC_W, _BIAS = (1, 2, 3, 4), (5, 6, 7, 8), (12, 13, 14, 15)
_ABSENT = (9, 10, 11, 16, 17, 20, 21, 22, 23)  # peephole, projection, layer norm
_HIDDEN, _CELL = 18, 19


def lstm_scratch_bytes(units: int) -> int:
    """Mirror of EQ_SEQUENCE_LSTM_S8_SCRATCH_BYTES: five int16 vectors and one int8 vector."""
    return 5 * 2 * units + units


def _t(model: TfliteModel, op: Operator, k: int) -> Tensor | None:
    i = op.inputs[k] if k < len(op.inputs) else -1
    return model.tensors[i] if i >= 0 else None


def _scale(t: Tensor, role: str) -> float:
    if t.quant is None or len(t.quant.scale) != 1:
        raise CodegenError(f"{role} needs one (per-tensor) scale")
    return float(np.float32(t.quant.scale[0]))


def _zp(t: Tensor) -> int:
    return int(t.quant.zero_point[0]) if t.quant is not None and len(t.quant.zero_point) else 0


@lowering("UNIDIRECTIONAL_SEQUENCE_LSTM")
def lower_sequence_lstm(model: TfliteModel, op: Operator) -> KernelCall:
    if len(op.inputs) != 24:
        raise CodegenError(f"expects 24 inputs, has {len(op.inputs)}")
    o = op.options
    if o.get("timeMajor", False):
        raise CodegenError("time-major LSTM is not supported (batch-major only)")
    if any(_t(model, op, k) is not None for k in _ABSENT):
        raise CodegenError("peephole, projection or layer-norm LSTM is not supported")
    inp = _t(model, op, 0)
    out = model.tensors[op.outputs[0]]
    hidden, cell = _t(model, op, _HIDDEN), _t(model, op, _CELL)
    if inp is None or hidden is None or cell is None:
        raise CodegenError("input, hidden or cell state tensor missing")
    if "float32" in (inp.dtype, out.dtype):
        raise CodegenError("the LSTM is float32 (a .tflite quantizer left it in float); pass "
                           "the Keras model instead, which edgeq converts to an int8 LSTM")
    if inp.dtype != "int8" or out.dtype != "int8" or hidden.dtype != "int8":
        raise CodegenError(f"needs int8 activations (input {inp.dtype}, output {out.dtype})")
    if cell.dtype != "int16":
        raise CodegenError(f"needs a 16-bit cell state, not {cell.dtype}")
    weights = [_t(model, op, k) for k in _IN_W + _REC_W]
    biases = [_t(model, op, k) for k in _BIAS]
    if any(w is None or w.data is None or w.dtype != "int8" for w in weights):
        raise CodegenError("needs constant int8 weights for all four gates (no CIFG)")
    if any(b is None or b.data is None or b.dtype != "int32" for b in biases):
        raise CodegenError("needs constant int32 biases for all four gates")
    if any(_zp(w) != 0 for w in weights):  # type: ignore[arg-type]
        raise CodegenError("weights must be symmetric (zero point 0)")
    if len(inp.shape) != 3 or inp.shape[0] != 1:
        raise CodegenError(f"input shape {inp.shape} is not (1, T, F)")
    _, steps, feat = (int(d) for d in inp.shape)
    units = int(np.prod(hidden.shape)) if hidden.shape else 0
    if tuple(int(d) for d in out.shape) != (1, steps, units) or units <= 0:
        raise CodegenError(f"output shape {out.shape} is not (1, {steps}, {units})")
    if int(np.prod(cell.shape)) != units:
        raise CodegenError("cell state size differs from the hidden state size")
    for k, w in enumerate(weights):
        want = (units, feat) if k < 4 else (units, units)
        if tuple(int(d) for d in w.shape) != want:  # type: ignore[union-attr]
            raise CodegenError(f"gate weight {w.shape} is not {want}")  # type: ignore[union-attr]
    for b in biases:
        if tuple(int(d) for d in b.shape) != (units,):  # type: ignore[union-attr]
            raise CodegenError(f"gate bias {b.shape} is not ({units},)")  # type: ignore[union-attr]
    s_in, s_h, s_c = _scale(inp, "LSTM input"), _scale(hidden, "hidden state"), \
        _scale(cell, "cell state")
    if (_scale(out, "LSTM output"), _zp(out)) != (s_h, _zp(hidden)):
        raise CodegenError("output and hidden state quantization differ")
    cell_pow = round(math.log2(s_c))
    if abs(math.log2(s_c) - cell_pow) >= 1e-3:
        raise CodegenError(f"cell state scale {s_c:g} is not a power of two")
    act = o.get("fusedActivationFunction", "TANH")
    if act not in ("TANH", "SIGMOID"):
        raise CodegenError(f"cell activation {act} is not supported (TANH or SIGMOID)")

    in_mult, in_shift, rec_mult, rec_shift = [], [], [], []
    for k in range(4):
        # TFLM: double(float(s_x * s_w)) / double(2^-12), QuantizeMultiplier
        m, s = quantize_multiplier(float(np.float32(s_in) * np.float32(_scale(weights[k], "weights")))
                     / GATE_SCALE)
        in_mult.append(m)
        in_shift.append(s)
        m, s = quantize_multiplier(float(np.float32(s_h) * np.float32(_scale(weights[4 + k], "weights")))
                     / GATE_SCALE)
        rec_mult.append(m)
        rec_shift.append(s)
    forget_m, forget_s = quantize_multiplier(ACT_SCALE * s_c / s_c)
    input_m, input_s = quantize_multiplier(ACT_SCALE * ACT_SCALE / s_c)
    output_m, output_s = quantize_multiplier(ACT_SCALE * ACT_SCALE / s_h)
    clip = float(o.get("cellClip", 0.0) or 0.0)
    q_clip = int(min(max(clip / s_c, -32768.0), 32767.0)) if clip > 0 else 0
    params: dict[str, Any] = {
        "time_steps": steps, "input_size": feat, "units": units,
        "input_zero_point": _zp(inp), "hidden_zero_point": _zp(hidden),
        "input_weights": np.concatenate(
            [np.asarray(w.data, dtype=np.int8).reshape(-1) for w in weights[:4]]),  # type: ignore[union-attr]
        "recurrent_weights": np.concatenate(
            [np.asarray(w.data, dtype=np.int8).reshape(-1) for w in weights[4:]]),  # type: ignore[union-attr]
        "bias": np.concatenate(
            [np.asarray(b.data, dtype=np.int32).reshape(-1) for b in biases]),  # type: ignore[union-attr]
        "input_multiplier": np.array(in_mult, dtype=np.int32),
        "input_shift": np.array(in_shift, dtype=np.int32),
        "recurrent_multiplier": np.array(rec_mult, dtype=np.int32),
        "recurrent_shift": np.array(rec_shift, dtype=np.int32),
        "cell_gate_tanh": 1 if act == "TANH" else 0,
        "forget_multiplier": forget_m, "forget_shift": forget_s,
        "input_multiplier_mul": input_m, "input_shift_mul": input_s,
        "output_multiplier_mul": output_m, "output_shift_mul": output_s,
        "cell_clip": q_clip, "cell_scale_power": cell_pow,
        "sigmoid_table": sigmoid_table_uint16(),
    }
    macs = steps * 4 * units * (feat + units)
    return KernelCall(
        layer=op.index, op=op.opcode, function="eq_sequence_lstm_s8",
        params_type="eq_sequence_lstm_params", params=params, inputs=[op.inputs[0]],
        outputs=[op.outputs[0]], scratch_bytes=lstm_scratch_bytes(units), macs=macs,
    )
