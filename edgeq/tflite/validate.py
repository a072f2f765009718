"""Refuse a corrupt or hostile ``.tflite`` before anything (reader, codegen, interpreters) uses it.

A flatbuffer is a web of offsets and lengths the file itself states. A flipped byte can make a
vector claim two billion entries, a shape claim 1.6 G elements, a scale turn negative or a name
stop being UTF-8; code downstream then indexes out of range, divides by zero or allocates
gigabytes. Two passes stop that:

* :func:`check_layout` runs on the raw bytes *before* the flatbuffers object API unpacks them:
  the root and every vector of tables lies inside the file, and the total number of tables the
  unpacker would visit is bounded (tables may be shared, so a small file could otherwise expand
  quadratically).
* :func:`check_model` runs on the unpacked ``ModelT``: indices in range, shapes positive and
  bounded, constant data exactly ``elements x dtype size``, quantization finite with positive
  scales and consistent lengths, op codes known, strings valid UTF-8, and the resource bounds
  below.

The bounds are stated relative to the largest board edgeq supports (4 MiB flash, 4 MiB RAM, see
``board_configs/``; a test keeps them in step): a model may be 16x larger than anything that
could run on it, so fit checks still report honestly on too-big models, but nothing beyond that
reaches an allocator.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgeq.errors import ModelError

MIB = 1 << 20
LARGEST_BOARD_FLASH = 4 * MIB
LARGEST_BOARD_RAM = 4 * MIB
HEADROOM = 16
MAX_MODEL_BYTES = 2 * HEADROOM * LARGEST_BOARD_FLASH  # the file (weights plus graph)
MAX_WEIGHT_BYTES = HEADROOM * LARGEST_BOARD_FLASH  # all constant tensors
MAX_TENSOR_BYTES = HEADROOM * LARGEST_BOARD_RAM  # any one tensor
MAX_ACTIVATION_BYTES = 4 * HEADROOM * LARGEST_BOARD_RAM  # all non-constant tensors: arena bound
MAX_RANK = 8
MAX_GRAPH_TABLES = 1_000_000  # tensors + operators over all subgraphs (as unpacked)
MAX_SUBGRAPHS = 1024

# dtype sizes in bits (TensorType enum -> bits); None: no fixed size (string, resource, variant)
_TYPE_BITS: dict[int, int | None] = {
    0: 32, 1: 16, 2: 32, 3: 8, 4: 64, 5: None, 6: 8, 7: 16, 8: 64, 9: 8, 10: 64, 11: 128,
    12: 64, 13: None, 14: None, 15: 32, 16: 16, 17: 4, 18: 16, 19: 2,
}
# zero-point range by storage type (int8, uint8, int16, int4)
_ZP_RANGE: dict[int, tuple[int, int]] = {9: (-128, 127), 3: (0, 255), 7: (-32768, 32767),
                                         17: (-8, 7)}
# option fields that are divisors or window sizes: 0 or negative means a corrupt file
_POSITIVE_OPTIONS = ("strideW", "strideH", "strideD", "dilationWFactor", "dilationHFactor",
                     "dilationDFactor", "filterWidth", "filterHeight")

# inputs an op cannot do without (leading positions, which must not be -1 "omitted")
_MIN_INPUTS: dict[str, int] = {
    **dict.fromkeys(("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL",
                     "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "RESHAPE", "PAD",
                     "PADV2", "TRANSPOSE", "MEAN", "SUM", "REDUCE_MAX", "GATHER",
                     "BATCH_MATMUL", "PRELU", "SPLIT", "SVDF", "EMBEDDING_LOOKUP"), 2),
    **dict.fromkeys(("TRANSPOSE_CONV", "STRIDED_SLICE", "SLICE"), 3),
    **dict.fromkeys(("SOFTMAX", "LOGISTIC", "TANH", "RELU", "RELU6", "RELU_N1_TO_1",
                     "LEAKY_RELU", "HARD_SWISH", "QUANTIZE", "DEQUANTIZE", "AVERAGE_POOL_2D",
                     "MAX_POOL_2D", "L2_NORMALIZATION", "CONCATENATION", "SQUEEZE", "EXPAND_DIMS",
                     "ABS", "NEG", "EXP", "LOG", "SQRT", "RSQRT", "ELU", "PACK", "UNPACK",
                     "UNIDIRECTIONAL_SEQUENCE_LSTM", "LOG_SOFTMAX", "SHAPE", "CAST"), 1),
}
_NO_OUTPUTS = {"ASSIGN_VARIABLE", "CALL_ONCE"}

# vtable slots of the vectors of *tables* (scalar vectors are bounds-checked by numpy views)
_MODEL_TABLE_VECTORS = {"operator_codes": 6, "subgraphs": 8, "buffers": 12, "metadata": 16,
                        "signature_defs": 18}
_SUBGRAPH_TABLE_VECTORS = {"tensors": 4, "operators": 10}


def printable(text: str, limit: int = 40) -> str:
    """Model text as it may appear in a one-line message: control characters become '?'."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _bad(source: str, what: str) -> ModelError:
    return ModelError(f"{source}: corrupt .tflite: {what}; re-export the model")


# --- pass 1: raw layout ------------------------------------------------------------------------


def _vector_len(tab: Any, slot: int, size: int, source: str, what: str) -> int:
    off = tab.Offset(slot)
    if off == 0:
        return 0
    start = tab.Vector(off)
    n = tab.VectorLen(off)
    if start < 0 or n < 0 or start + 4 * n > size:
        raise _bad(source, f"{what} vector of {n} entries runs past the end of the file")
    return int(n)


def check_layout(data: bytes, source: str = "<bytes>") -> None:
    """Root and vectors of tables inside the file; the unpacked graph has bounded size."""
    from edgeq.tflite.reader import schema

    size = len(data)
    if size > MAX_MODEL_BYTES:
        raise ModelError(f"{source}: {size:,} bytes is over edgeq's model limit of "
                         f"{MAX_MODEL_BYTES // MIB} MiB; no supported board can hold it")
    root = int.from_bytes(data[0:4], "little")
    if root < 8 or root + 4 > size:
        raise _bad(source, f"root table offset {root} is outside the {size}-byte file")
    s = schema()
    model = s.Model.GetRootAs(data, 0)
    counts = {k: _vector_len(model._tab, slot, size, source, k)
              for k, slot in _MODEL_TABLE_VECTORS.items()}
    if counts["subgraphs"] > MAX_SUBGRAPHS:
        raise _bad(source, f"{counts['subgraphs']} subgraphs (limit {MAX_SUBGRAPHS})")
    total = 0
    for i in range(counts["subgraphs"]):
        sg = model.Subgraphs(i)
        for k, slot in _SUBGRAPH_TABLE_VECTORS.items():
            total += _vector_len(sg._tab, slot, size, source, f"subgraph {i} {k}")
        if total > MAX_GRAPH_TABLES:
            raise _bad(source, f"over {MAX_GRAPH_TABLES:,} tensors and operators")
    for i in range(counts["signature_defs"]):
        sig = model.SignatureDefs(i)
        total += _vector_len(sig._tab, 4, size, source, f"signature {i} inputs")
        total += _vector_len(sig._tab, 6, size, source, f"signature {i} outputs")
    if total + sum(counts.values()) > MAX_GRAPH_TABLES:
        raise _bad(source, f"over {MAX_GRAPH_TABLES:,} tables")


# --- pass 2: the unpacked model ----------------------------------------------------------------


def _text(v: Any, source: str, what: str) -> str:
    if v is None:
        return ""
    if isinstance(v, bytes | bytearray):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(source, f"{what} is not valid UTF-8") from None
    return str(v)


def _ints(v: Any) -> list[int]:
    if v is None:
        return []
    return [int(x) for x in np.asarray(v).reshape(-1)]


def _elements(shape: list[int]) -> int:
    return math.prod(shape) if shape else 1


def _check_quantization(q: Any, ttype: int, shape: list[int], source: str, what: str) -> None:
    if q is None:
        return
    scale = np.asarray(q.scale if q.scale is not None else [], dtype=np.float64).reshape(-1)
    zp = _ints(q.zeroPoint)
    for name, arr in (("min", q.min), ("max", q.max)):
        if arr is not None and not np.all(np.isfinite(np.asarray(arr, dtype=np.float64))):
            raise _bad(source, f"{what} has a non-finite quantization {name}")
    if scale.size == 0:
        if zp:
            raise _bad(source, f"{what} has {len(zp)} zero points but no scale")
        return
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        bad = float(scale[~(np.isfinite(scale) & (scale > 0))][0])
        raise _bad(source, f"{what} has quantization scale {bad:g} (must be finite and > 0)")
    if zp and len(zp) != scale.size:
        raise _bad(source, f"{what} has {scale.size} scales but {len(zp)} zero points")
    lo_hi = _ZP_RANGE.get(ttype)
    if lo_hi is not None and zp and not all(lo_hi[0] <= z <= lo_hi[1] for z in zp):
        bad_zp = next(z for z in zp if not lo_hi[0] <= z <= lo_hi[1])
        raise _bad(source, f"{what} has zero point {bad_zp} outside {lo_hi[0]}..{lo_hi[1]}")
    if scale.size > 1:
        axis = int(q.quantizedDimension)
        if len(shape) == 1 and shape[0] == scale.size:
            return  # older converters put a bias's axis 3 on its only dimension; TFLM accepts it
        if not 0 <= axis < len(shape):
            raise _bad(source, f"{what} is quantized along axis {axis} of a rank-{len(shape)} "
                               "tensor")
        if shape[axis] != scale.size:
            raise _bad(source, f"{what} has {scale.size} per-channel scales for "
                               f"{shape[axis]} channels")


def _check_tensor(t: Any, i: int, sg: int, model_t: Any, size: int, source: str) -> tuple[int, bool]:
    """Validate one tensor; returns its size in bytes and whether it is a constant."""
    from edgeq.tflite.reader import dtype_name

    name = _text(t.name, source, f"tensor {i} name")
    what = f"tensor {i} ('{printable(name)}')" if sg == 0 else f"subgraph {sg} tensor {i}"
    ttype = int(t.type)
    if ttype not in _TYPE_BITS:
        raise _bad(source, f"{what} has unknown type {ttype}")
    shape = _ints(t.shape)
    if len(shape) > MAX_RANK:
        raise _bad(source, f"{what} has rank {len(shape)} (limit {MAX_RANK})")
    if any(d < 0 for d in shape):
        raise _bad(source, f"{what} has shape {tuple(shape)}; dimensions cannot be negative")
    sig = _ints(t.shapeSignature)
    if sig and (len(sig) != len(shape) or any(d == 0 or d < -1 for d in sig)):
        raise _bad(source, f"{what} has shape signature {tuple(sig)} for shape {tuple(shape)}")
    count = _elements(shape)
    bits = _TYPE_BITS[ttype]
    nbytes = -(-count * bits // 8) if bits else count
    if nbytes > MAX_TENSOR_BYTES:
        raise ModelError(f"{source}: {what} of shape {tuple(shape)} needs {nbytes:,} bytes, over "
                         f"edgeq's per-tensor limit of {MAX_TENSOR_BYTES // MIB} MiB")
    buffers = model_t.buffers or []
    b = int(t.buffer)
    if not 0 <= b < max(len(buffers), 1):
        raise _bad(source, f"{what} uses buffer {b} of {len(buffers)}")
    _check_quantization(t.quantization, ttype, shape, source, what)
    held = _buffer_size(buffers[b], size, source, b) if b > 0 and b < len(buffers) else 0
    if held and bits and t.sparsity is None and held != nbytes:
        raise _bad(source, f"{what} of {dtype_name(ttype)} {tuple(shape)} needs {nbytes} bytes "
                           f"but its buffer {b} holds {held}")
    return nbytes, held > 0


def _buffer_size(buf: Any, size: int, source: str, index: int) -> int:
    data = buf.data
    if data is not None and len(data) > 0:
        return len(data)
    off, n = int(buf.offset or 0), int(buf.size or 0)
    if n == 0:
        return 0
    if off <= 1 or off + n > size:
        raise _bad(source, f"buffer {index} spans bytes {off}..{off + n} of a {size}-byte file")
    return n


def _check_operator(op: Any, j: int, ntensors: int, codes: list[Any], source: str,
                    where: str) -> None:
    from edgeq.tflite.reader import _options, builtin_op_name

    what = f"{where}operator {j}"
    if not 0 <= int(op.opcodeIndex) < len(codes):
        raise _bad(source, f"{what} uses op code {op.opcodeIndex} of {len(codes)}")
    oc = codes[int(op.opcodeIndex)]
    name = builtin_op_name(max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode)))
    ins, outs = _ints(op.inputs), _ints(op.outputs)
    need = _MIN_INPUTS.get(name, 0)
    if len(ins) < need or any(v < 0 for v in ins[:need]):
        raise _bad(source, f"{what} ({name}) has inputs {ins[:8]}; it needs {need}")
    if not outs and name not in _NO_OUTPUTS:
        raise _bad(source, f"{what} ({name}) has no outputs")
    for kind, lo in (("input", -1), ("output", 0), ("intermediate", 0)):
        vals = _ints(getattr(op, kind + "s"))
        bad = [v for v in vals if not lo <= v < ntensors]
        if bad:
            raise _bad(source, f"{what} {kind} tensor {bad[0]} is not one of {ntensors} tensors")
    opts = _options(op)
    for key in _POSITIVE_OPTIONS:
        if key in opts and int(opts[key]) < 1:
            raise _bad(source, f"{what} has {key} = {opts[key]} (must be >= 1)")


def check_model(model_t: Any, size: int, source: str = "<bytes>") -> None:
    """Semantic checks of an unpacked model; raises ``ModelError`` naming the first problem."""
    from edgeq.tflite.reader import _enum_names

    if int(model_t.version) != 3:
        raise _bad(source, f"schema version {model_t.version} (TFLite files are version 3)")
    if not model_t.subgraphs:
        raise _bad(source, "no subgraphs")
    _text(model_t.description, source, "model description")
    buffers = model_t.buffers or []
    for i, b in enumerate(buffers):
        _buffer_size(b, size, source, i)
    known = _enum_names("BuiltinOperator")
    codes = model_t.operatorCodes or []
    for k, oc in enumerate(codes):
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        if code not in known:
            raise _bad(source, f"operator code {k} names unknown builtin op {code}")
        if int(oc.version) < 1:
            raise _bad(source, f"operator code {k} has version {oc.version}")
        _text(oc.customCode, source, f"custom op name {k}")
    for k, m in enumerate(model_t.metadata or []):
        _text(m.name, source, f"metadata name {k}")
        if not 0 <= int(m.buffer) < len(buffers):
            raise _bad(source, f"metadata {k} uses buffer {m.buffer} of {len(buffers)}")
    weights = activations = 0
    for g, sg in enumerate(model_t.subgraphs):
        where = f"subgraph {g} " if g else ""
        _text(sg.name, source, f"subgraph {g} name")
        tensors = sg.tensors or []
        for i, t in enumerate(tensors):
            nbytes, constant = _check_tensor(t, i, g, model_t, size, source)
            if constant:
                weights += nbytes
            else:
                activations += nbytes
        for kind in ("inputs", "outputs"):
            bad = [v for v in _ints(getattr(sg, kind)) if not 0 <= v < len(tensors)]
            if bad:
                raise _bad(source, f"{where}graph {kind[:-1]} {bad[0]} is not one of "
                                   f"{len(tensors)} tensors")
        for j, op in enumerate(sg.operators or []):
            _check_operator(op, j, len(tensors), codes, source, where)
    if weights > MAX_WEIGHT_BYTES:
        raise ModelError(f"{source}: {weights:,} bytes of weights, over edgeq's limit of "
                         f"{MAX_WEIGHT_BYTES // MIB} MiB; no supported board can hold them")
    if activations > MAX_ACTIVATION_BYTES:
        raise ModelError(f"{source}: activations total {activations:,} bytes, over edgeq's limit "
                         f"of {MAX_ACTIVATION_BYTES // MIB} MiB; no supported board has the RAM")
    for k, sd in enumerate(model_t.signatureDefs or []):
        _text(sd.signatureKey, source, f"signature {k} key")
        for tm in (sd.inputs or []) + (sd.outputs or []):
            _text(tm.name, source, f"signature {k} tensor name")
