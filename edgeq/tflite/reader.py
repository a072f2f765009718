"""Parse a ``.tflite`` file into plain dataclasses (ops, tensors, shapes, quantization, buffers).

Uses the flatbuffers object API (``ModelT``) from the schema module LiteRT ships. Parsing is
wrapped so a corrupt or truncated file becomes a one-line ``ModelError``, never a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.errors import ModelError

TFLITE_IDENTIFIER = b"TFL3"

# TensorType enum value -> (name, numpy dtype or None when numpy has no such type)
_TENSOR_TYPES: dict[int, tuple[str, Any]] = {
    0: ("float32", np.float32),
    1: ("float16", np.float16),
    2: ("int32", np.int32),
    3: ("uint8", np.uint8),
    4: ("int64", np.int64),
    5: ("string", None),
    6: ("bool", np.bool_),
    7: ("int16", np.int16),
    8: ("complex64", np.complex64),
    9: ("int8", np.int8),
    10: ("float64", np.float64),
    11: ("complex128", np.complex128),
    12: ("uint64", np.uint64),
    13: ("resource", None),
    14: ("variant", None),
    15: ("uint32", np.uint32),
    16: ("uint16", np.uint16),
    17: ("int4", None),
    18: ("bfloat16", None),
    19: ("int2", None),
}


def schema() -> Any:
    """The generated TFLite schema module (flatbuffers object API)."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def dtype_name(tensor_type: int) -> str:
    return _TENSOR_TYPES.get(tensor_type, (f"type{tensor_type}", None))[0]


@cache
def _enum_names(enum_class_name: str) -> dict[int, str]:
    cls = getattr(schema(), enum_class_name)
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def builtin_op_name(code: int) -> str:
    return _enum_names("BuiltinOperator").get(code, f"OP_{code}")


def activation_name(code: int) -> str:
    return _enum_names("ActivationFunctionType").get(code, f"ACT_{code}")


def padding_name(code: int) -> str:
    return _enum_names("Padding").get(code, f"PADDING_{code}")


@dataclass(frozen=True)
class Quantization:
    """Affine ``real = scale * (q - zero_point)``; arrays hold one entry per channel."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0
    min: np.ndarray | None = None
    max: np.ndarray | None = None

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "scale": [float(s) for s in self.scale],
            "zero_point": [int(z) for z in self.zero_point],
            "axis": self.axis,
        }


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type: int
    buffer: int
    quant: Quantization | None
    data: np.ndarray | None = None  # constant data (weights, bias), shaped, else None
    is_variable: bool = False
    shape_signature: tuple[int, ...] | None = None

    @property
    def dtype(self) -> str:
        return dtype_name(self.type)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        np_dt = _TENSOR_TYPES.get(self.type, (None, None))[1]
        count = int(np.prod(self.shape)) if self.shape else 1
        if np_dt is None:
            return count // 2 if self.dtype == "int4" else count
        return count * np.dtype(np_dt).itemsize


@dataclass
class Operator:
    index: int
    opcode: str  # BuiltinOperator name, or "CUSTOM:<code>"
    version: int
    inputs: list[int]  # tensor indices; -1 means an omitted optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    intermediates: list[int] = field(default_factory=list)


@dataclass
class TfliteModel:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    version: int
    description: str
    size_bytes: int
    num_subgraphs: int
    metadata_names: list[str]

    @property
    def input_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.inputs]

    @property
    def output_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.outputs]

    @property
    def op_names(self) -> list[str]:
        """Distinct op names in first-use order."""
        seen: dict[str, None] = {}
        for op in self.operators:
            seen.setdefault(op.opcode, None)
        return list(seen)

    def producer(self, tensor_index: int) -> Operator | None:
        for op in self.operators:
            if tensor_index in op.outputs:
                return op
        return None

    def consumers(self, tensor_index: int) -> list[Operator]:
        return [op for op in self.operators if tensor_index in op.inputs]

    def weight_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors if t.is_constant)


def load_model_t(data: bytes, source: str = "<bytes>") -> Any:
    """Unpack a flatbuffer into the mutable object API (``ModelT``) for editing.

    Raises ``ModelError`` for anything that is not a complete TFLite flatbuffer.
    """
    if len(data) < 8:
        raise ModelError(f"{source}: file is too small to be a .tflite model ({len(data)} bytes)")
    if data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(
            f"{source}: not a TFLite flatbuffer (missing 'TFL3' identifier); "
            "pass a .tflite produced by a TFLite converter"
        )
    from edgeq.tflite.validate import check_layout, check_model

    s = schema()
    try:
        check_layout(data, source)
        model_t = s.ModelT.InitFromPackedBuf(bytearray(data), 0)
        check_model(model_t, len(data), source)
    except ModelError:
        raise
    except Exception as exc:  # flatbuffers raises assorted errors on bad offsets
        import struct

        why = ("an offset points outside the file" if isinstance(exc, struct.error | IndexError)
               else type(exc).__name__)
        raise ModelError(f"{source}: corrupt or truncated .tflite ({why}); re-export the model"
                         ) from None
    return model_t


def serialize_model_t(model_t: Any) -> bytes:
    """Pack an object-API model back into flatbuffer bytes (with the TFL3 identifier)."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model_t.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def read_tflite(path: str | os.PathLike[str]) -> TfliteModel:
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such file; check the path")
    if p.is_dir():
        raise ModelError(f"{p}: is a directory, expected a .tflite file")
    from edgeq.tflite.validate import MAX_MODEL_BYTES, MIB

    if p.stat().st_size > MAX_MODEL_BYTES:
        raise ModelError(f"{p}: {p.stat().st_size:,} bytes is over edgeq's model limit of "
                         f"{MAX_MODEL_BYTES // MIB} MiB; no supported board can hold it")
    return read_tflite_bytes(p.read_bytes(), source=str(p))


def read_tflite_bytes(data: bytes, source: str = "<bytes>") -> TfliteModel:
    model_t = load_model_t(data, source)
    try:
        return _to_model(model_t, data)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"{source}: corrupt or truncated .tflite ({type(exc).__name__}: {exc}); "
            "re-export the model"
        ) from None


def _decode(v: Any) -> str:
    if v is None:
        return ""
    return v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else str(v)


def _as_int_tuple(v: Any) -> tuple[int, ...]:
    if v is None:
        return ()
    return tuple(int(x) for x in np.asarray(v).reshape(-1))


def _buffer_data(model_t: Any, raw: bytes, idx: int) -> bytes | None:
    if idx <= 0 or idx >= len(model_t.buffers):
        return None
    b = model_t.buffers[idx]
    if b.data is not None and len(b.data) > 0:
        return bytes(np.asarray(b.data, dtype=np.uint8).tobytes())
    if b.offset and b.size:
        return raw[b.offset : b.offset + b.size]
    return None


def _tensor_data(buf: bytes, ttype: int, shape: tuple[int, ...]) -> np.ndarray:
    name, np_dt = _TENSOR_TYPES.get(ttype, ("?", None))
    if name == "int4":
        packed = np.frombuffer(buf, dtype=np.uint8)
        lo = (packed & 0x0F).astype(np.int8)
        hi = (packed >> 4).astype(np.int8)
        vals = np.empty(packed.size * 2, dtype=np.int8)
        vals[0::2] = lo
        vals[1::2] = hi
        vals = np.where(vals > 7, vals - 16, vals).astype(np.int8)
        count = int(np.prod(shape)) if shape else 1
        return vals[:count].reshape(shape)
    if np_dt is None:
        return np.frombuffer(buf, dtype=np.uint8).copy()
    arr = np.frombuffer(buf, dtype=np_dt).copy()
    count = int(np.prod(shape)) if shape else 1
    if arr.size != count:
        raise ModelError(f"constant tensor holds {arr.size} values but its shape needs {count}")
    return arr.reshape(shape)


def _quantization(q: Any) -> Quantization | None:
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    scale = np.asarray(q.scale, dtype=np.float32).reshape(-1)
    zp = (
        np.asarray(q.zeroPoint, dtype=np.int64).reshape(-1)
        if q.zeroPoint is not None and len(q.zeroPoint)
        else np.zeros_like(scale, dtype=np.int64)
    )
    qmin = np.asarray(q.min, dtype=np.float32) if q.min is not None and len(q.min) else None
    qmax = np.asarray(q.max, dtype=np.float32) if q.max is not None and len(q.max) else None
    axis = int(q.quantizedDimension)
    return Quantization(scale=scale, zero_point=zp, axis=axis, min=qmin, max=qmax)


def _options(op_t: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for opts in (op_t.builtinOptions, getattr(op_t, "builtinOptions2", None)):
        if opts is None:
            continue
        for k, v in vars(opts).items():
            if isinstance(v, np.ndarray):
                v = v.tolist()
            out[k] = v
    if "fusedActivationFunction" in out:
        out["fusedActivationFunction"] = activation_name(out["fusedActivationFunction"])
    if "padding" in out and isinstance(out["padding"], int):
        out["padding"] = padding_name(out["padding"])
    return out


def _to_model(model_t: Any, raw: bytes) -> TfliteModel:
    sg = model_t.subgraphs[0]
    tensors: list[Tensor] = []
    for i, t in enumerate(sg.tensors or []):
        shape = _as_int_tuple(t.shape)
        buf = _buffer_data(model_t, raw, t.buffer)
        data = _tensor_data(buf, t.type, shape) if buf is not None else None
        sig = _as_int_tuple(t.shapeSignature) if t.shapeSignature is not None else None
        tensors.append(
            Tensor(
                index=i,
                name=_decode(t.name),
                shape=shape,
                type=int(t.type),
                buffer=int(t.buffer),
                quant=_quantization(t.quantization),
                data=data,
                is_variable=bool(t.isVariable),
                shape_signature=sig,
            )
        )
    codes = model_t.operatorCodes or []
    operators: list[Operator] = []
    for i, op_t in enumerate(sg.operators or []):
        oc = codes[op_t.opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        name = builtin_op_name(code)
        if name == "CUSTOM":
            name = f"CUSTOM:{_decode(oc.customCode)}"
        operators.append(
            Operator(
                index=i,
                opcode=name,
                version=int(oc.version),
                inputs=list(_as_int_tuple(op_t.inputs)),
                outputs=list(_as_int_tuple(op_t.outputs)),
                options=_options(op_t),
                intermediates=list(_as_int_tuple(op_t.intermediates)),
            )
        )
    return TfliteModel(
        tensors=tensors,
        operators=operators,
        inputs=list(_as_int_tuple(sg.inputs)),
        outputs=list(_as_int_tuple(sg.outputs)),
        version=int(model_t.version),
        description=_decode(model_t.description),
        size_bytes=len(raw),
        num_subgraphs=len(model_t.subgraphs),
        metadata_names=[_decode(m.name) for m in (model_t.metadata or [])],
    )
