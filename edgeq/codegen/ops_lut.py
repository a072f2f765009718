"""LUT-coded and int4 weights for edgeq-rt: lowering CONV_2D / DEPTHWISE_CONV_2D /
FULLY_CONNECTED to the ``eq_*_s8_lut`` kernels.

Why: a compressed layer (pruned + clustered, ternary, binary) still holds ordinary int8 weights
in the .tflite, so TFLM runs it unchanged -- but each output channel uses at most 2^k distinct
values. Storing k-bit indices (k = 1, 2, 4) plus a per-channel int8 table is what makes the
firmware's flash actually shrink. int4 filters (mixed-precision models) are the same kernels
with the packed nibbles as indices into one shared two's-complement table.

Two lowering variants, chosen by the generator (``generate_edgeq_rt(weight_coding=...)``):
- ``int4`` (always on): int4 filters, which the plain int8 lowerings refuse;
- ``lut`` (``weight_coding="lut"``): int8 filters with <= 16 distinct values per channel, as
  dense k-bit indices or, for pruned layers when smaller, as a per-channel bitmap of nonzeros
  plus indices of the nonzeros only (``eq_*_s8_sparse_lut``, one channel decoded into scratch
  at a time). A layer that would not shrink keeps the plain int8 kernel (``None`` defers).
The arithmetic is the int8 kernels' own, so the output is bit-exact with the uncompressed model.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgeq.codegen.lowering import KernelCall, lowering_variant, registered_ops
from edgeq.codegen.ops_conv import plain_requant
from edgeq.codegen.weight_coding import (
    SparseLut,
    lut_encode,
    pack_indices,
    sparse_lut_encode,
    unpack_indices,
)
from edgeq.errors import CodegenError
from edgeq.tflite import Operator, TfliteModel

__all__ = ["lut_encode", "pack_indices", "unpack_indices", "lower_int4", "lower_lut"]
_SPARSE_KERNELS = {
    "CONV_2D": ("eq_conv2d_s8_sparse_lut", "eq_conv2d_sparse_lut_params"),
    "DEPTHWISE_CONV_2D": ("eq_depthwise_conv2d_s8_sparse_lut",
                          "eq_depthwise_conv2d_sparse_lut_params"),
    "FULLY_CONNECTED": ("eq_fully_connected_s8_sparse_lut", "eq_fully_connected_sparse_lut_params"),
}
_KERNELS = {
    "CONV_2D": ("eq_conv2d_s8_lut", "eq_conv2d_lut_params", "conv", 0),
    "DEPTHWISE_CONV_2D": ("eq_depthwise_conv2d_s8_lut", "eq_depthwise_conv2d_lut_params", "conv",
                          3),
    "FULLY_CONNECTED": ("eq_fully_connected_s8_lut", "eq_fully_connected_lut_params", "fc", 0),
}
INT4_TABLE = np.array([i if i < 8 else i - 16 for i in range(16)], dtype=np.int8)


def lut_weight_bytes(call: KernelCall) -> int:
    """Flash bytes of a LUT call's indices and table."""
    lut = call.params.get("lut", {})
    return int(np.asarray(lut.get("indices", [])).size + np.asarray(lut.get("table", [])).size)


def _as_int8_filter(model: TfliteModel, op: Operator) -> TfliteModel:
    """A view of ``model`` whose int4 filter reads as int8 (same values, same scales)."""
    tensors = list(model.tensors)
    f = tensors[op.inputs[1]]
    tensors[op.inputs[1]] = dataclasses.replace(f, type=9)  # TensorType.INT8
    return dataclasses.replace(model, tensors=tensors)


def _lut_call(base: KernelCall, opcode: str, bits: int, packed: np.ndarray, table: np.ndarray,
              per_channel: bool) -> KernelCall:
    function, params_type, inner, _ = _KERNELS[opcode]
    return dataclasses.replace(
        base,
        function=function,
        params_type=params_type,
        params={inner: _lut_base_params(base), "lut": {
            "bits": bits, "table_per_channel": int(per_channel),
            "indices": packed.astype(np.uint8), "table": table.astype(np.int8),
        }},
        inputs=[base.inputs[0], base.inputs[2]],  # the filter lives in the params now
        extra={**base.extra, "lut_bits": bits},
    )


def _lut_base_params(base: KernelCall) -> dict:
    """The plain lowering's parameters minus what only the int8 kernels read (the packed filter:
    the LUT kernels decode their own weights, the copy would undo the flash saving)."""
    params = {k: v for k, v in base.params.items() if k not in ("filter_packed", "filter_blocks")}
    if isinstance(params.get("requant"), dict):
        params["requant"] = plain_requant(params["requant"])
    return params


def _plain(opcode: str):  # noqa: ANN202
    fn = registered_ops().get(opcode)
    if fn is None:
        raise CodegenError(f"no int8 lowering registered for {opcode}")
    return fn


@lowering_variant("int4", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
def lower_int4(model: TfliteModel, op: Operator) -> KernelCall | None:
    """int4 filters -> LUT kernel with 4-bit indices into the shared two's-complement table."""
    f = model.tensors[op.inputs[1]]
    if f.dtype != "int4":
        return None
    if model.tensors[op.inputs[0]].dtype != "int8":
        raise CodegenError("int4 filters need int8 activations (int4x8)")
    base = _plain(op.opcode)(_as_int8_filter(model, op), op)
    vals = np.asarray(f.data, dtype=np.int8).reshape(-1)
    packed = pack_indices((vals & 0x0F).astype(np.uint8), 4)
    return _lut_call(base, op.opcode, 4, packed, INT4_TABLE, per_channel=False)


@lowering_variant("lut", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
def lower_lut(model: TfliteModel, op: Operator) -> KernelCall | None:
    """int8 filters with <= 16 values per channel -> the smaller of dense and sparse LUT coding
    (when smaller than int8); else None."""
    f = model.tensors[op.inputs[1]]
    if f.dtype != "int8" or f.data is None or model.tensors[op.inputs[0]].dtype != "int8":
        return None
    axis = _KERNELS[op.opcode][3]
    dense = lut_encode(f.data, axis)  # None: > 16 values, or no saving
    sparse = sparse_lut_encode(f.data, axis)
    dense_bytes = dense[1].size + dense[2].size if dense is not None else f.data.size
    if sparse is not None and sparse.nbytes < min(dense_bytes, f.data.size):
        return _sparse_call(_plain(op.opcode)(model, op), op.opcode, sparse)
    if dense is None:
        return None
    bits, packed, table, per_channel = dense
    base = _plain(op.opcode)(model, op)
    return _lut_call(base, op.opcode, bits, packed, table, per_channel)


def _sparse_call(base: KernelCall, opcode: str, enc: SparseLut) -> KernelCall:
    function, params_type = _SPARSE_KERNELS[opcode]
    inner = _KERNELS[opcode][2]
    return dataclasses.replace(
        base,
        function=function,
        params_type=params_type,
        params={inner: _lut_base_params(base), "lut": {
            "bits": enc.bits, "table_per_channel": int(enc.per_channel),
            "channel_size": enc.channel_size, "mask": enc.mask, "offsets": enc.offsets,
            "indices": enc.indices, "table": enc.table,
        }},
        inputs=[base.inputs[0], base.inputs[2]],
        scratch_bytes=enc.channel_size,  # eq_sparse_lut_scratch_size(): one decoded channel
        extra={**base.extra, "lut_bits": enc.bits, "sparse": True},
    )
