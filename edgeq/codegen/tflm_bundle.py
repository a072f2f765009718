"""TFLite Micro bundle: the C++ files a TFLM user drops into an existing TFLM project.

TFLM parses the flatbuffer at boot, so the model ships as a byte array; what goes wrong in
practice is a missing op registration, a too-small ``MicroMutableOpResolver<N>`` or a guessed
arena. This module measures those with the real TFLM interpreter and writes them down:

* ``model_data.cc/.h``   the ``.tflite`` as an ``alignas(16)`` const array + size constant
* ``model_ops.h``        registers exactly the model's ops into ``MicroMutableOpResolver<N>``
* ``model_config.h``     arena size (measured minimum + stated margin), I/O shapes, types,
                         quantization, labels
* ``test_vectors.cc/.h`` inputs with the outputs TFLM's reference kernels produce for them
* ``main_example.cc``    the canonical TFLM setup that checks the test vectors
* ``tflm_bundle.mk`` / ``tflm_bundle.cmake``  build fragments: sources, include paths and the
                         flags that must match the TFLM library
* ``README.md``          how to build it, and what was measured where (the arena on this
                         64-bit host)

``plan_tflm_bundle`` measures (runs TFLM); ``render_tflm_bundle`` is a pure function from that
plan to ``{filename: text}``; nothing here writes files (the CLI does, atomically).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.codegen import cwriter
from edgeq.errors import CodegenError

log = logging.getLogger(__name__)

# BuiltinOperator name -> MicroMutableOpResolver method, as declared in TFLM's
# tensorflow/lite/micro/micro_mutable_op_resolver.h (checked against the 2024+ header).
TFLM_BUILTIN_METHODS: dict[str, str] = {
    "ABS": "AddAbs",
    "ADD": "AddAdd",
    "ADD_N": "AddAddN",
    "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo",
    "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast",
    "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "COS": "AddCos",
    "CUMSUM": "AddCumSum",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv",
    "ELU": "AddElu",
    "EQUAL": "AddEqual",
    "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill",
    "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater",
    "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu",
    "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog",
    "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic",
    "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean",
    "MINIMUM": "AddMinimum",
    "MIRROR_PAD": "AddMirrorPad",
    "MUL": "AddMul",
    "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual",
    "PACK": "AddPack",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable",
    "REDUCE_MAX": "AddReduceMax",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "ROUND": "AddRound",
    "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape",
    "SIN": "AddSin",
    "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SQRT": "AddSqrt",
    "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "SUM": "AddSum",
    "SVDF": "AddSvdf",
    "TANH": "AddTanh",
    "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile",
    "ZEROS_LIKE": "AddZerosLike",
}

# Custom-op names TFLM registers through dedicated methods (everything else custom is refused).
TFLM_CUSTOM_METHODS: dict[str, str] = {
    "TFLite_Detection_PostProcess": "AddDetectionPostprocess",
    "ethos-u": "AddEthosU",
    "CIRCULAR_BUFFER": "AddCircularBuffer",
}

# Ops whose TFLM kernels unpack int4 weights (filter = input 1); int4 anywhere else is refused.
INT4_WEIGHT_OPS = frozenset({"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"})

DEFAULT_ARENA_MARGIN = 0.10
DEFAULT_NUM_VECTORS = 3
TFLM_ALIGNMENT = 16

BUNDLE_FILES = (
    "model_data.h",
    "model_data.cc",
    "model_ops.h",
    "model_config.h",
    "test_vectors.h",
    "test_vectors.cc",
    "main_example.cc",
    "tflm_bundle.mk",
    "tflm_bundle.cmake",
    "README.md",
)

# What code compiled against a TFLM library must share with it. TF_LITE_STATIC_MEMORY changes the
# layout of TFLM's structs: without it the bundle compiles, links and then crashes.
MATCHING_DEFINES = ("TF_LITE_STATIC_MEMORY",)
MATCHING_CXXFLAGS = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")
# include paths under a TFLM tree (its Makefile downloads the third-party ones)
TFLM_INCLUDES = (".", "tensorflow/lite/micro/tools/make/downloads/flatbuffers/include",
                 "tensorflow/lite/micro/tools/make/downloads/gemmlowp")

# numpy dtype name -> C++ element type used in the generated arrays
_C_TYPES: dict[str, str] = {
    "int8": "int8_t",
    "uint8": "uint8_t",
    "int16": "int16_t",
    "uint16": "uint16_t",
    "int32": "int32_t",
    "uint32": "uint32_t",
    "int64": "int64_t",
    "float32": "float",
    "bool": "bool",
}


@dataclass(frozen=True)
class IoTensor:
    """One model input or output as the application sees it."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    scale: float  # 0.0 when the tensor is not quantized
    zero_point: int

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass(frozen=True)
class OpRegistration:
    op: str  # BuiltinOperator name or "CUSTOM:<name>"
    method: str  # MicroMutableOpResolver method
    int4_weights: bool = False


@dataclass(frozen=True)
class TflmBundlePlan:
    """Everything the generated files state, measured from one ``.tflite``."""

    model_name: str  # C identifier, used for the namespace and default array name
    source_name: str  # the .tflite file name, for comments only
    model_bytes: bytes
    sha256: str
    array_name: str
    ops: tuple[OpRegistration, ...]
    inputs: tuple[IoTensor, ...]
    outputs: tuple[IoTensor, ...]
    arena_measured: int
    arena_margin: float
    arena_bytes: int
    labels: tuple[str, ...] | None
    vector_inputs: tuple[np.ndarray, ...]  # per input: (n, *shape)
    vector_outputs: tuple[np.ndarray, ...]  # per output: (n, *shape)
    resource_variables: int = 0  # distinct VAR_HANDLE shared names (TFLM must be given room)

    @property
    def namespace(self) -> str:
        return f"{self.model_name}_model"

    @property
    def num_vectors(self) -> int:
        return int(self.vector_inputs[0].shape[0]) if self.vector_inputs else 0

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.source_name,
            "model_bytes": len(self.model_bytes),
            "sha256": self.sha256,
            "array_name": self.array_name,
            "ops": [r.op for r in self.ops],
            "resolver_size": len(self.ops),
            "arena_measured_bytes": self.arena_measured,
            "arena_margin": self.arena_margin,
            "arena_bytes": self.arena_bytes,
            "test_vectors": self.num_vectors,
            "labels": list(self.labels) if self.labels else None,
        }


# ------------------------------------------------------------------------------------- planning


# Names main_example.cc and the TFLM headers it includes put in the global namespace.
_TFLM_GLOBALS = frozenset({"g_tensor_arena", "Fail", "tflite", "MicroPrintf", "TfLiteStatus",
                           "TfLiteTensor", "kTfLiteOk", "kTfLiteError", "GetModel"})


def c_identifier(name: str) -> str:
    """A C/C++ identifier from a model name (see ``cwriter.identifier``)."""
    return cwriter.identifier(name)


def bundle_names(name: str, array_name: str | None = None) -> tuple[str, str]:
    """(model name, array name) for a bundle: the model name is mapped from ``name`` (any
    text), a given array name is checked and refused if unusable; no two generated globals
    (namespace, array, array size constant) may share a name."""
    model_name = c_identifier(name)
    if array_name is None:
        array = f"{model_name}_model_data"
    else:
        array = cwriter.check_identifier(array_name, "array name", _TFLM_GLOBALS)
    cwriter.check_distinct({
        f"namespace {model_name}_model (from the model name)": f"{model_name}_model",
        "the model array": array,
        "the array size constant": f"{array}_size",
    })
    return model_name, array


def resolver_registrations(data: bytes, source: str = "<bytes>") -> list[OpRegistration]:
    """The op registrations the model needs, in first-use order over all subgraphs.

    Raises ``CodegenError`` listing every op TFLM has no registration method for, and every
    int4 tensor outside the weights of an op whose TFLM kernel unpacks int4.
    """
    from edgeq.tflite import load_model_t
    from edgeq.tflite.reader import builtin_op_name

    model_t = load_model_t(data, source)
    codes = model_t.operatorCodes or []
    seen: dict[str, OpRegistration] = {}
    unknown: list[str] = []
    bad_int4: list[str] = []
    for sg_index, sg in enumerate(model_t.subgraphs):
        tensors = sg.tensors or []
        for op_index, op_t in enumerate(sg.operators or []):
            oc = codes[op_t.opcodeIndex]
            name = builtin_op_name(max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode)))
            where = f"{name} (subgraph {sg_index}, op {op_index})"
            if name == "CUSTOM":
                custom = (oc.customCode or b"").decode("utf-8", "replace")
                name = f"CUSTOM:{custom}"
                where = f"custom op '{custom}' (subgraph {sg_index}, op {op_index})"
                method = TFLM_CUSTOM_METHODS.get(custom)
            else:
                method = TFLM_BUILTIN_METHODS.get(name)
            if method is None:
                unknown.append(where)
                continue
            int4 = False
            for pos, t_index in enumerate(op_t.inputs if op_t.inputs is not None else []):
                if t_index < 0 or tensors[t_index].type != 17:  # TensorType.INT4
                    continue
                if name in INT4_WEIGHT_OPS and pos == 1:
                    int4 = True
                else:
                    bad_int4.append(f"{where} input {pos}")
            prev = seen.get(name)
            seen[name] = OpRegistration(
                name, method, int4 or (prev.int4_weights if prev else False)
            )
    if unknown:
        raise CodegenError(
            "TFLite Micro has no op registration for: "
            + "; ".join(unknown)
            + " - replace these ops in the model or use a TFLM build with custom kernels"
        )
    if bad_int4:
        raise CodegenError(
            "int4 tensors where TFLite Micro has no INT4 kernel: "
            + "; ".join(bad_int4)
            + " - quantize these tensors to int8 (TFLM unpacks int4 only in "
            + "/".join(sorted(INT4_WEIGHT_OPS))
            + " weights)"
        )
    return list(seen.values())


def resource_variable_count(data: bytes) -> int:
    """Distinct resource variables (VAR_HANDLE shared names): TFLM needs a
    ``MicroResourceVariables`` with room for them, or VAR_HANDLE fails to prepare."""
    from edgeq.tflite import load_model_t
    from edgeq.tflite.reader import builtin_op_name

    model_t = load_model_t(data)
    codes = model_t.operatorCodes or []
    names: set[bytes] = set()
    for sg in model_t.subgraphs:
        for op_t in sg.operators or []:
            oc = codes[op_t.opcodeIndex]
            if builtin_op_name(max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))) != \
                    "VAR_HANDLE":
                continue
            opts = op_t.builtinOptions
            names.add(bytes(getattr(opts, "sharedName", None) or b""))
    return len(names)


def _io_tensor(t: Any) -> IoTensor:
    if t.dtype not in _C_TYPES:
        raise CodegenError(
            f"model input/output {t.name!r} has type {t.dtype}, which the bundle cannot hold in a "
            "C array; export the model with int8/int16/float32 I/O"
        )
    scale = float(t.quant.scale[0]) if t.quant is not None and t.quant.scale.size else 0.0
    zp = int(t.quant.zero_point[0]) if t.quant is not None and t.quant.zero_point.size else 0
    return IoTensor(t.name, t.dtype, tuple(int(d) for d in t.shape), t.nbytes, scale, zp)


def _vector_inputs(inputs: tuple[IoTensor, ...], count: int, seed: int) -> list[np.ndarray]:
    """Vector 0 is the real-valued zero (the zero point); the rest are seeded uniform random."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    for io in inputs:
        if not io.shape or io.shape[0] != 1:
            raise CodegenError(
                f"input {io.name!r} has shape {list(io.shape)}; test vectors need a batch-1 input"
            )
        shape = (count, *io.shape[1:])
        dt = np.dtype(io.dtype)
        if dt.kind == "f":
            arr = rng.uniform(-1.0, 1.0, size=shape).astype(dt)
            arr[0] = 0.0
        elif dt.kind == "b":
            arr = rng.integers(0, 2, size=shape).astype(dt)
        else:
            info = np.iinfo(dt)
            lo, hi = max(int(info.min), -(1 << 15)), min(int(info.max), (1 << 15) - 1)
            arr = rng.integers(lo, hi + 1, size=shape).astype(dt)
            arr[0] = np.clip(io.zero_point, info.min, info.max)
        out.append(arr)
    return out


def _labels_from_sidecar(tflite_path: Path) -> list[str] | None:
    sidecar = tflite_path.with_name(f"{tflite_path.stem}.edgeq.json")
    if not sidecar.is_file():
        return None
    try:
        labels = json.loads(sidecar.read_text()).get("labels")
    except (OSError, ValueError, AttributeError):
        raise CodegenError(f"{sidecar}: unreadable sidecar JSON; fix or delete it") from None
    return [str(x) for x in labels] if labels else None


def measure_tflm_arena(data: bytes, check_size: int = 0) -> int:
    """TFLM's minimum arena (bisection), or ``check_size`` once TFLM has allocated in it.

    Both run in the oracle worker process: the TFLM interpreter crashes (SIGSEGV) on some models
    at some too-small arenas (seen: keyword_scrambled_8bit.tflite at 9.5-11 KB), which must not
    take the caller down with it.
    """
    from edgeq.errors import AnalyzeError
    from edgeq.oracles import tflm_allocates, tflm_min_arena

    if check_size:
        ok, reason = tflm_allocates(data, check_size)
        if not ok:
            raise CodegenError(f"TFLite Micro cannot allocate the model in {check_size} bytes "
                               f"({reason}); state a working arena with --arena-bytes")
        return check_size
    try:
        log.debug("measuring the TFLM arena in the oracle worker")
        return tflm_min_arena(data)
    except AnalyzeError as exc:
        raise CodegenError(f"sizing the TFLM arena failed: {exc}") from None


def plan_tflm_bundle(
    data: bytes,
    *,
    name: str,
    source_name: str = "model.tflite",
    array_name: str | None = None,
    labels: list[str] | None = None,
    arena_margin: float = DEFAULT_ARENA_MARGIN,
    arena_bytes: int | None = None,
    num_vectors: int = DEFAULT_NUM_VECTORS,
    seed: int = 0,
) -> TflmBundlePlan:
    """Measure what the bundle states: ops, I/O, minimum arena (TFLM bisection), test vectors.

    ``arena_bytes`` replaces the measurement by a size the caller states (checked to allocate).
    """
    from edgeq.oracles import run_tflm
    from edgeq.tflite import read_tflite_bytes

    if not 0.0 <= arena_margin <= 10.0:
        raise CodegenError(f"arena margin {arena_margin} is out of range; use 0.0 .. 10.0")
    if not 1 <= num_vectors <= 64:
        raise CodegenError(f"{num_vectors} test vectors requested; use 1 .. 64")
    model_name, array = bundle_names(name, array_name)
    ops = tuple(resolver_registrations(data, source_name))
    info = read_tflite_bytes(data, source_name)
    inputs = tuple(_io_tensor(t) for t in info.input_tensors)
    outputs = tuple(_io_tensor(t) for t in info.output_tensors)
    if labels is not None:
        n_classes = outputs[0].elements
        if len(labels) != n_classes:
            raise CodegenError(
                f"{len(labels)} labels given but output 0 has {n_classes} values; "
                "pass one label per output class"
            )
    if arena_bytes is not None:
        if arena_bytes <= 0:
            raise CodegenError(f"arena of {arena_bytes} bytes requested; give a positive size")
        arena = -(-arena_bytes // TFLM_ALIGNMENT) * TFLM_ALIGNMENT
        measure_tflm_arena(data, check_size=arena)
        measured, arena_margin = 0, 0.0
    else:
        measured = measure_tflm_arena(data)
        arena = int(math.ceil(measured * (1.0 + arena_margin) / TFLM_ALIGNMENT)) * TFLM_ALIGNMENT
    vec_in = _vector_inputs(inputs, num_vectors, seed)
    vec_out = run_tflm(data, vec_in)
    vec_out = [
        np.asarray(v).reshape((num_vectors, *io.shape[1:]))
        for v, io in zip(vec_out, outputs, strict=True)
    ]
    for v, io in zip(vec_out, outputs, strict=True):
        if v.dtype != np.dtype(io.dtype):
            raise CodegenError(f"TFLM returned {v.dtype} for output {io.name!r} ({io.dtype})")
    return TflmBundlePlan(
        model_name=model_name,
        source_name=source_name,
        model_bytes=bytes(data),
        sha256=hashlib.sha256(data).hexdigest(),
        array_name=array,
        ops=ops,
        inputs=inputs,
        outputs=outputs,
        arena_measured=measured,
        arena_margin=arena_margin,
        arena_bytes=arena,
        labels=tuple(labels) if labels else None,
        vector_inputs=tuple(vec_in),
        vector_outputs=tuple(vec_out),
        resource_variables=resource_variable_count(data),
    )


# ------------------------------------------------------------------------------------ rendering


def _banner(plan: TflmBundlePlan, what: str) -> str:
    return (
        cwriter.line_comment(what) + "\n"
        + cwriter.line_comment(f"Generated by edgeq from {plan.source_name} "
                               f"(sha256 {plan.sha256[:16]}, {len(plan.model_bytes)} bytes). "
                               "Do not edit.") + "\n"
    )


def _guard(plan: TflmBundlePlan, file: str) -> str:
    return f"EDGEQ_{plan.model_name.upper()}_{file.upper().replace('.', '_')}_"


def _c_values(values: np.ndarray, per_line: int, indent: str) -> str:
    return cwriter.array_items(values, per_line, indent, bool_as="bool", nonfinite="macro")


def _render_model_data_h(plan: TflmBundlePlan) -> str:
    g = _guard(plan, "model_data.h")
    return (
        _banner(plan, "The model flatbuffer as a const array for tflite::GetModel().")
        + f"#ifndef {g}\n#define {g}\n\n#include <cstddef>\n\n"
        f"// Size of {plan.array_name} in bytes (the .tflite file size).\n"
        f"constexpr size_t {plan.array_name}_size = {len(plan.model_bytes)};\n\n"
        "// 16-byte aligned: TFLM reads tensor data in place from the flatbuffer.\n"
        f"alignas(16) extern const unsigned char {plan.array_name}[{plan.array_name}_size];\n\n"
        f"#endif  // {g}\n"
    )


def _render_model_data_cc(plan: TflmBundlePlan) -> str:
    return (
        _banner(plan, "The model flatbuffer as a const array for tflite::GetModel().")
        + '#include "model_data.h"\n\n'
        f"alignas(16) const unsigned char {plan.array_name}[{plan.array_name}_size] = {{\n"
        + cwriter.byte_items(plan.model_bytes)
        + "\n};\n"
    )


_STATIC_MEMORY_GUARD = (
    "// TFLite Micro libraries are built with TF_LITE_STATIC_MEMORY, which changes the layout of\n"
    "// its structs: code compiled without it links and then crashes.\n"
    "#ifndef TF_LITE_STATIC_MEMORY\n"
    '#error "compile with -DTF_LITE_STATIC_MEMORY, as the TFLite Micro library was built '
    '(see tflm_bundle.mk / tflm_bundle.cmake)"\n'
    "#endif\n\n"
)


def _render_model_ops_h(plan: TflmBundlePlan) -> str:
    g = _guard(plan, "model_ops.h")
    ns = plan.namespace
    calls = []
    for r in plan.ops:
        method = cwriter.check_identifier(r.method, f"registration of {r.op}")
        calls.append(f"  if (resolver.{method}() != kTfLiteOk) return kTfLiteError;  "
                     + cwriter.line_comment(r.op))
    int4 = [r.op for r in plan.ops if r.int4_weights]
    int4_note = ""
    if int4:
        int4_note = (
            cwriter.line_comment(f"int4-packed weights in: {', '.join(int4)}.") + "\n"
            "// These need TFLM kernels with INT4\n"
            "// support (the reference kernels and CMSIS-NN's generic registrations unpack int4;\n"
            "// an *_INT8-only registration such as Register_FULLY_CONNECTED_INT8() does not).\n"
            "// Keep the default registrations below.\n"
        )
    return (
        _banner(plan, "Registers exactly the ops the model uses (resolver size = op count).")
        + f"#ifndef {g}\n#define {g}\n\n"
        + _STATIC_MEMORY_GUARD
        + '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        + int4_note
        + f"namespace {ns} {{\n\n"
        f"constexpr unsigned int kNumOps = {len(plan.ops)};\n"
        "using OpResolver = tflite::MicroMutableOpResolver<kNumOps>;\n\n"
        "// Returns kTfLiteError if a registration fails (e.g. the same op added twice).\n"
        "inline TfLiteStatus RegisterOps(OpResolver& resolver) {\n"
        + "\n".join(calls)
        + "\n  return kTfLiteOk;\n}\n\n"
        f"}}  // namespace {ns}\n\n#endif  // {g}\n"
    )


def _tensor_info_rows(tensors: tuple[IoTensor, ...]) -> str:
    rows = []
    for t in tensors:
        dims = list(t.shape) + [0] * (6 - len(t.shape))
        rows.append(
            f"    {{{cwriter.string_literal(t.name)}, {cwriter.string_literal(t.dtype)}, "
            f"{len(t.shape)}, {{{', '.join(str(d) for d in dims)}}}, {t.nbytes}, "
            f"{cwriter.float_literal(t.scale)}, {cwriter.int_literal(t.zero_point)}}},"
        )
    return "\n".join(rows)


def _render_model_config_h(plan: TflmBundlePlan) -> str:
    g = _guard(plan, "model_config.h")
    ns = plan.namespace
    if any(len(t.shape) > 6 for t in plan.inputs + plan.outputs):
        raise CodegenError("a model input/output has rank > 6; the bundle supports up to 6")
    labels = ""
    if plan.labels:
        labels = (
            f"\n// Class labels for output 0, index = class.\n"
            f"constexpr int kNumLabels = {len(plan.labels)};\n"
            "constexpr const char* kLabels[kNumLabels] = {\n"
            + "\n".join(f"    {cwriter.string_literal(s)}," for s in plan.labels)
            + "\n};\n"
        )
    if plan.arena_measured:
        margin_pct = round(plan.arena_margin * 100, 3)
        arena_text = (
            "// Tensor arena: the minimum TFLM allocates this model in, found by bisection with the\n"
            "// TFLM reference kernels (tflite_micro interpreter, 64-bit host), plus a "
            f"{margin_pct:g}% margin,\n"
            "// rounded up to 16 bytes. Optimized kernels (e.g. CMSIS-NN) may request more scratch:\n"
            "// check interpreter.arena_used_bytes() on the target.\n"
        )
    else:
        arena_text = (
            "// Tensor arena: stated when the bundle was generated (not measured; 0 below), checked\n"
            "// to allocate with the TFLM reference kernels (tflite_micro interpreter, 64-bit host).\n"
        )
    return (
        _banner(plan, "Arena size, input/output shapes, types and quantization.")
        + f"#ifndef {g}\n#define {g}\n\n#include <cstddef>\n#include <cstdint>\n\n"
        f"namespace {ns} {{\n\n"
        f"constexpr const char* kModelName = {cwriter.string_literal(plan.model_name)};\n"
        f"constexpr const char* kModelSha256 = {cwriter.string_literal(plan.sha256)};\n\n"
        + arena_text
        + f"constexpr size_t kArenaMeasuredBytes = {plan.arena_measured};\n"
        f"constexpr size_t kTensorArenaSize = {plan.arena_bytes};\n\n"
        "// Resource variables (VAR_HANDLE) the interpreter must hold (main_example.cc).\n"
        f"constexpr int kNumResourceVariables = {plan.resource_variables};\n\n"
        "// real_value = scale * (quantized_value - zero_point); scale 0 = not quantized.\n"
        "struct TensorInfo {\n"
        "  const char* name;\n  const char* dtype;\n  int rank;\n  int dims[6];\n"
        "  size_t bytes;\n  float scale;\n  int32_t zero_point;\n};\n\n"
        f"constexpr int kNumInputs = {len(plan.inputs)};\n"
        "constexpr TensorInfo kInputs[kNumInputs] = {\n"
        + _tensor_info_rows(plan.inputs)
        + "\n};\n\n"
        f"constexpr int kNumOutputs = {len(plan.outputs)};\n"
        "constexpr TensorInfo kOutputs[kNumOutputs] = {\n"
        + _tensor_info_rows(plan.outputs)
        + "\n};\n"
        + labels
        + f"\n}}  // namespace {ns}\n\n#endif  // {g}\n"
    )


def _vector_decl(kind: str, index: int, io: IoTensor) -> tuple[str, str]:
    name = f"kTest{kind}{index}"
    return name, f"{_C_TYPES[io.dtype]} {name}[kNumTestVectors][{io.elements}]"


def _render_test_vectors_h(plan: TflmBundlePlan) -> str:
    g = _guard(plan, "test_vectors.h")
    ns = plan.namespace
    n = plan.num_vectors
    decls = []
    for kind, tensors in (("Input", plan.inputs), ("Output", plan.outputs)):
        for i, io in enumerate(tensors):
            _, decl = _vector_decl(kind, i, io)
            decls.append(f"alignas(16) extern const {decl};  "
                         + cwriter.line_comment(f"{io.dtype} {list(io.shape)}"))
    has_float = any(io.dtype == "float32" for io in plan.outputs)
    tol = (
        "// Float outputs: compare with |got - want| <= kFloatTolerance * (1 + |want|).\n"
        "constexpr float kFloatTolerance = 1e-5f;\n\n"
        if has_float
        else ""
    )
    return (
        _banner(
            plan,
            "Test inputs and the outputs TFLM's reference kernels give for them "
            "(vector 0 = all zero points).",
        )
        + f"#ifndef {g}\n#define {g}\n\n#include <cstdint>\n\n"
        f"namespace {ns} {{\n\n"
        f"constexpr int kNumTestVectors = {n};\n"
        + tol
        + "\n".join(decls)
        + f"\n\n}}  // namespace {ns}\n\n#endif  // {g}\n"
    )


def _render_test_vectors_cc(plan: TflmBundlePlan) -> str:
    ns = plan.namespace
    n = plan.num_vectors
    has_float = any(io.dtype == "float32" for io in plan.inputs + plan.outputs)
    parts = []
    for kind, tensors, arrays in (
        ("Input", plan.inputs, plan.vector_inputs),
        ("Output", plan.outputs, plan.vector_outputs),
    ):
        for i, (io, arr) in enumerate(zip(tensors, arrays, strict=True)):
            _, decl = _vector_decl(kind, i, io)
            rows = ["    {\n" + _c_values(arr[v], 16, "        ") + "\n    }," for v in range(n)]
            parts.append(f"alignas(16) const {decl} = {{\n" + "\n".join(rows) + "\n};\n")
    return (
        _banner(plan, "Test inputs and the outputs TFLM's reference kernels give for them.")
        + ("#include <cmath>\n" if has_float else "")
        + '#include "test_vectors.h"\n\n'
        f"namespace {ns} {{\n\n" + "\n".join(parts) + f"\n}}  // namespace {ns}\n"
    )


def _render_main_example(plan: TflmBundlePlan) -> str:
    ns = plan.namespace
    copy_in = []
    for i in range(len(plan.inputs)):
        copy_in.append(
            f"    TfLiteTensor* in{i} = interpreter.input({i});\n"
            f'    if (in{i}->bytes != sizeof({ns}::kTestInput{i}[v])) return Fail("input {i} size");\n'
            f"    std::memcpy(in{i}->data.raw, {ns}::kTestInput{i}[v], in{i}->bytes);"
        )
    check_out = []
    for j, io in enumerate(plan.outputs):
        head = (
            f"    const TfLiteTensor* out{j} = interpreter.output({j});\n"
            f"    if (out{j}->bytes != sizeof({ns}::kTestOutput{j}[v])) "
            f'return Fail("output {j} size");\n'
        )
        if io.dtype == "float32":
            body = (
                f"    for (int k = 0; k < {io.elements}; ++k) {{\n"
                f"      const float want = {ns}::kTestOutput{j}[v][k];\n"
                f"      const float got = out{j}->data.f[k];\n"
                f"      if (std::fabs(got - want) > {ns}::kFloatTolerance * (1.0f + "
                "std::fabs(want))) differs = true;\n"
                "    }"
            )
        else:
            body = (
                f"    if (std::memcmp(out{j}->data.raw, {ns}::kTestOutput{j}[v], out{j}->bytes) "
                "!= 0) differs = true;"
            )
        check_out.append(head + body)
    label_print = ""
    if plan.labels and plan.outputs[0].dtype in ("int8", "uint8", "int16", "float32"):
        field = {"int8": "int8", "uint8": "uint8", "int16": "i16", "float32": "f"}[
            plan.outputs[0].dtype
        ]
        label_print = (
            "    // Top-1 class of output 0, with its label.\n"
            "    int best = 0;\n"
            f"    for (int k = 1; k < {ns}::kNumLabels; ++k) {{\n"
            f"      if (interpreter.output(0)->data.{field}[k] > "
            f"interpreter.output(0)->data.{field}[best]) best = k;\n"
            "    }\n"
            f'    MicroPrintf("vector %d: top-1 = %s", v, {ns}::kLabels[best]);\n'
        )
    includes_math = "#include <cmath>\n" if any(o.dtype == "float32" for o in plan.outputs) else ""
    if plan.resource_variables:
        interpreter_setup = (
            "  // The model holds resource variables (VAR_HANDLE): TFLM needs room for them,\n"
            "  // allocated in the arena next to the tensors.\n"
            "  tflite::MicroAllocator* allocator =\n"
            f"      tflite::MicroAllocator::Create(g_tensor_arena, {ns}::kTensorArenaSize);\n"
            '  if (allocator == nullptr) return Fail("MicroAllocator");\n'
            "  tflite::MicroResourceVariables* variables =\n"
            "      tflite::MicroResourceVariables::Create(allocator, "
            f"{ns}::kNumResourceVariables);\n"
            '  if (variables == nullptr) return Fail("MicroResourceVariables");\n'
            "  tflite::MicroInterpreter interpreter(model, resolver, allocator, variables);\n"
        )
        tflm_includes = ('#include "tensorflow/lite/micro/micro_allocator.h"\n'
                         '#include "tensorflow/lite/micro/micro_resource_variable.h"\n')
    else:
        interpreter_setup = (
            "  tflite::MicroInterpreter interpreter(model, resolver, g_tensor_arena,\n"
            f"                                       {ns}::kTensorArenaSize);\n"
        )
        tflm_includes = ""
    return (
        _banner(plan, "Canonical TFLM setup that runs the model on the bundled test vectors.")
        + "// Build with a TFLite Micro tree: GetModel -> resolver -> MicroInterpreter ->\n"
        "// AllocateTensors -> copy input -> Invoke -> read output. Returns 0 when every output\n"
        "// equals the reference. Vectors are independent inferences: the interpreter is reset\n"
        "// after each one (a stateful model, e.g. an LSTM, would otherwise carry its state).\n"
        + _STATIC_MEMORY_GUARD + includes_math + "#include <cstring>\n\n"
        + tflm_includes
        + '#include "tensorflow/lite/micro/micro_interpreter.h"\n'
        '#include "tensorflow/lite/micro/micro_log.h"\n'
        '#include "tensorflow/lite/micro/system_setup.h"\n'
        '#include "tensorflow/lite/schema/schema_generated.h"\n\n'
        '#include "model_config.h"\n#include "model_data.h"\n#include "model_ops.h"\n'
        '#include "test_vectors.h"\n\n'
        "namespace {\n"
        f"alignas(16) uint8_t g_tensor_arena[{ns}::kTensorArenaSize];\n\n"
        "int Fail(const char* what) {\n"
        '  MicroPrintf("edgeq example: %s failed", what);\n'
        "  return 1;\n"
        "}\n"
        "}  // namespace\n\n"
        "int main() {\n"
        "  tflite::InitializeTarget();\n"
        f"  const tflite::Model* model = tflite::GetModel({plan.array_name});\n"
        '  if (model->version() != TFLITE_SCHEMA_VERSION) return Fail("schema version");\n\n'
        f"  static {ns}::OpResolver resolver;\n"
        f'  if ({ns}::RegisterOps(resolver) != kTfLiteOk) return Fail("op registration");\n\n'
        + interpreter_setup
        + '  if (interpreter.AllocateTensors() != kTfLiteOk) return Fail("AllocateTensors");\n'
        '  MicroPrintf("arena used: %u of %u bytes", static_cast<unsigned>(interpreter.'
        f"arena_used_bytes()),\n              static_cast<unsigned>({ns}::kTensorArenaSize));\n\n"
        "  int mismatches = 0;\n"
        f"  for (int v = 0; v < {ns}::kNumTestVectors; ++v) {{\n"
        + "\n".join(copy_in)
        + '\n    if (interpreter.Invoke() != kTfLiteOk) return Fail("Invoke");\n'
        + "    bool differs = false;\n"
        + "\n".join(check_out)
        + "\n    if (differs) ++mismatches;\n"
        + label_print
        + '    if (interpreter.Reset() != kTfLiteOk) return Fail("Reset");\n'
        + "  }\n"
        f'  MicroPrintf("%d of %d test vectors differ", mismatches, {ns}::kNumTestVectors);\n'
        "  return mismatches == 0 ? 0 : 1;\n"
        "}\n"
    )


def _var_prefix(plan: TflmBundlePlan) -> str:
    """Make/CMake variable prefix: the namespace upper-cased (several bundles can coexist)."""
    return plan.namespace.upper()


def _render_makefile(plan: TflmBundlePlan) -> str:
    v = _var_prefix(plan)
    incs = " ".join(f"-I$(TFLM_DIR)/{p}".replace("/.", "") for p in TFLM_INCLUDES)
    flags = " ".join([*MATCHING_CXXFLAGS, *(f"-D{d}" for d in MATCHING_DEFINES)])
    return (
        f"# Generated by edgeq from {cwriter.comment_text(plan.source_name)} "
        f"(sha256 {plan.sha256[:16]}). Do not edit.\n"
        "# GNU make fragment for this TFLite Micro bundle. In your Makefile:\n"
        "#   TFLM_DIR := /path/to/tflite-micro   (the tree your libtensorflow-microlite.a came from)\n"
        "#   include path/to/this/bundle/tflm_bundle.mk\n"
        f"#   app: main.cc $({v}_SOURCES)   (compiled with $({v}_CXXFLAGS))\n"
        "# and link the library. For a Cortex-M target add the library's ABI flags too\n"
        "# (e.g. -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard -mthumb for TFLM's\n"
        "# TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp); `make -f\n"
        "# tensorflow/lite/micro/tools/make/Makefile <your options> print-CXXFLAGS` prints them.\n\n"
        "ifndef TFLM_DIR\n"
        "$(error set TFLM_DIR to your tflite-micro tree before including tflm_bundle.mk)\n"
        "endif\n\n"
        f"{v}_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))\n"
        f"{v}_SOURCES := $({v}_DIR)/model_data.cc $({v}_DIR)/test_vectors.cc\n"
        f"{v}_EXAMPLE := $({v}_DIR)/main_example.cc\n"
        f"{v}_INCLUDES := -I$({v}_DIR) {incs}\n"
        "# Must match the library (TF_LITE_STATIC_MEMORY changes TFLM's struct layouts).\n"
        f"{v}_CXXFLAGS := {flags} $({v}_INCLUDES)\n"
    )


def _render_cmake(plan: TflmBundlePlan) -> str:
    v = _var_prefix(plan)
    target = f"{plan.namespace}_bundle"
    incs = " ".join(f'"${{TFLM_DIR}}/{p}"'.replace("/.\"", '"') for p in TFLM_INCLUDES)
    return (
        f"# Generated by edgeq from {cwriter.comment_text(plan.source_name)} "
        f"(sha256 {plan.sha256[:16]}). Do not edit.\n"
        "# CMake fragment for this TFLite Micro bundle. In your CMakeLists.txt:\n"
        "#   set(TFLM_DIR /path/to/tflite-micro)   # the tree your library came from\n"
        "#   set(TFLM_LIBRARY /path/to/libtensorflow-microlite.a)   # optional: linked for you\n"
        "#   include(path/to/this/bundle/tflm_bundle.cmake)\n"
        f"#   target_link_libraries(app PRIVATE {target})\n"
        f"# {target} carries the include paths, defines and options that must match the\n"
        "# library; for a Cortex-M target also set the library's ABI flags (-mcpu, -mfpu,\n"
        "# -mfloat-abi) in your toolchain file.\n\n"
        "if(NOT DEFINED TFLM_DIR)\n"
        '  message(FATAL_ERROR "set TFLM_DIR to your tflite-micro tree before including '
        'tflm_bundle.cmake")\n'
        "endif()\n\n"
        f'set({v}_DIR "${{CMAKE_CURRENT_LIST_DIR}}")\n'
        f'set({v}_SOURCES "${{{v}_DIR}}/model_data.cc" "${{{v}_DIR}}/test_vectors.cc")\n'
        f'set({v}_EXAMPLE "${{{v}_DIR}}/main_example.cc")\n'
        f'set({v}_INCLUDE_DIRS "${{{v}_DIR}}" {incs})\n'
        "# Must match the library (TF_LITE_STATIC_MEMORY changes TFLM's struct layouts).\n"
        f"set({v}_DEFINITIONS {' '.join(MATCHING_DEFINES)})\n"
        f"set({v}_CXX_OPTIONS {' '.join(f for f in MATCHING_CXXFLAGS if f != '-std=c++17')})\n\n"
        f"add_library({target} STATIC ${{{v}_SOURCES}})\n"
        f"target_include_directories({target} PUBLIC ${{{v}_INCLUDE_DIRS}})\n"
        f"target_compile_definitions({target} PUBLIC ${{{v}_DEFINITIONS}})\n"
        f"target_compile_options({target} PUBLIC ${{{v}_CXX_OPTIONS}})\n"
        f"target_compile_features({target} PUBLIC cxx_std_17)\n"
        "if(DEFINED TFLM_LIBRARY)\n"
        f'  target_link_libraries({target} PUBLIC "${{TFLM_LIBRARY}}")\n'
        "endif()\n"
    )


def _render_readme(plan: TflmBundlePlan) -> str:
    ns, v = plan.namespace, _var_prefix(plan)
    if plan.arena_measured:
        arena = (
            f"`kTensorArenaSize` = {plan.arena_bytes} bytes: the smallest arena TFLite Micro "
            f"allocates this model in ({plan.arena_measured} bytes, found by bisection with the "
            "TFLM reference kernels in the `tflite_micro` Python interpreter) plus a "
            f"{round(plan.arena_margin * 100, 3):g}% margin. **It was measured on a 64-bit "
            "host**: on a 32-bit microcontroller TFLM's own structures are smaller (pointers "
            "are 4 bytes), while optimized kernels such as CMSIS-NN may ask for scratch "
            "buffers the reference kernels do not. Check `interpreter.arena_used_bytes()` on "
            "the target (main_example.cc prints it) and adjust."
        )
    else:
        arena = (
            f"`kTensorArenaSize` = {plan.arena_bytes} bytes, stated when the bundle was "
            "generated and checked to allocate with the TFLM reference kernels on a 64-bit "
            "host (not measured). Check `interpreter.arena_used_bytes()` on the target."
        )
    return "\n".join([
        f"# TFLite Micro bundle: {cwriter.comment_text(plan.source_name)}",
        "",
        f"Generated by `edgeq codegen --runtime tflm` (model sha256 `{plan.sha256}`). "
        "Do not edit; regenerate.",
        "",
        "| file | what |",
        "|---|---|",
        f"| `model_data.cc/.h` | the `.tflite` as `{plan.array_name}` (16-byte aligned) |",
        f"| `model_ops.h` | `{ns}::RegisterOps`: the {len(plan.ops)} ops the model uses |",
        "| `model_config.h` | arena size, input/output shapes, types, quantization"
        + (", labels |" if plan.labels else " |"),
        f"| `test_vectors.cc/.h` | {plan.num_vectors} inputs and the outputs TFLM gives for them |",
        "| `main_example.cc` | runs the test vectors; exits 0 when every output matches |",
        "| `tflm_bundle.mk`, `tflm_bundle.cmake` | sources, include paths and matching flags |",
        "",
        "## Arena",
        "",
        arena,
        "",
        "## Building",
        "",
        "Link with `libtensorflow-microlite.a` built from a TFLite Micro tree, e.g. for a "
        "Cortex-M4 with CMSIS-NN: `make -f tensorflow/lite/micro/tools/make/Makefile "
        "TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp OPTIMIZED_KERNEL_DIR=cmsis_nn "
        "microlite`. Compile the bundle with the flags the library was built with, at least "
        "`-DTF_LITE_STATIC_MEMORY` (without it the code compiles, then crashes: the headers "
        "stop the build with an `#error`) and the same ABI flags.",
        "",
        "GNU make:",
        "",
        "```make",
        "TFLM_DIR := /path/to/tflite-micro",
        "include path/to/bundle/tflm_bundle.mk",
        f"example: $({v}_EXAMPLE) $({v}_SOURCES)",
        f"\t$(CXX) $({v}_CXXFLAGS) $^ $(TFLM_DIR)/gen/<target>/lib/libtensorflow-microlite.a "
        "-o $@",
        "```",
        "",
        "CMake:",
        "",
        "```cmake",
        "set(TFLM_DIR /path/to/tflite-micro)",
        "set(TFLM_LIBRARY ${TFLM_DIR}/gen/<target>/lib/libtensorflow-microlite.a)",
        "include(path/to/bundle/tflm_bundle.cmake)",
        f"add_executable(example ${{{v}_EXAMPLE}})",
        f"target_link_libraries(example PRIVATE {plan.namespace}_bundle)",
        "```",
        "",
        "On a Cortex-M target, route TFLM's log to your console "
        "(`RegisterDebugLogCallback`, tensorflow/lite/micro/cortex_m_generic) to see "
        "main_example's messages.",
        "",
    ])


def render_tflm_bundle(plan: TflmBundlePlan) -> dict[str, str]:
    """The bundle's files as ``{filename: text}``; same plan, same bytes."""
    return {
        "model_data.h": _render_model_data_h(plan),
        "model_data.cc": _render_model_data_cc(plan),
        "model_ops.h": _render_model_ops_h(plan),
        "model_config.h": _render_model_config_h(plan),
        "test_vectors.h": _render_test_vectors_h(plan),
        "test_vectors.cc": _render_test_vectors_cc(plan),
        "main_example.cc": _render_main_example(plan),
        "tflm_bundle.mk": _render_makefile(plan),
        "tflm_bundle.cmake": _render_cmake(plan),
        "README.md": _render_readme(plan),
    }


def generate_tflm_bundle(
    tflite_path: str | Path,
    *,
    name: str | None = None,
    array_name: str | None = None,
    labels: list[str] | None = None,
    arena_margin: float = DEFAULT_ARENA_MARGIN,
    arena_bytes: int | None = None,
    num_vectors: int = DEFAULT_NUM_VECTORS,
) -> tuple[TflmBundlePlan, dict[str, str]]:
    """Plan and render the bundle for a ``.tflite`` file; labels default to its sidecar."""
    from edgeq.errors import ModelError

    path = Path(tflite_path)
    if not path.is_file():
        raise ModelError(f"{path}: no such .tflite file; check the path")
    if labels is None:
        labels = _labels_from_sidecar(path)
    plan = plan_tflm_bundle(
        path.read_bytes(),
        name=name or path.stem,
        source_name=path.name,
        array_name=array_name,
        labels=labels,
        arena_margin=arena_margin,
        arena_bytes=arena_bytes,
        num_vectors=num_vectors,
    )
    return plan, render_tflm_bundle(plan)
