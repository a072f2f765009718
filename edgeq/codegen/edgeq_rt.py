"""edgeq-rt: compile an int8/int16x8 ``.tflite`` into C99 (``model.c``/``model.h``) ahead of time.

Everything a TFLM interpreter does at boot happens here instead: every operator is lowered to a
kernel call with precomputed parameters (``edgeq.codegen.lowering``), activations get fixed arena
offsets from the memory planner, and weights become ``const`` arrays that stay in flash. The
rendering is a pure function of the model (no timestamps, stable order), so the same ``.tflite``
always gives the same bytes. A model with anything the runtime cannot reproduce bit-exactly is
refused with one line naming every offending operator, before any file is written.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import edgeq.codegen.ops_conv  # noqa: F401  (registers the conv-family lowerings)
from edgeq.codegen.lowering import KernelCall, lower_operator, registered_ops
from edgeq.codegen.ops_conv import C_DTYPE_ENUM
from edgeq.codegen.planner import ArenaPlan, Buffer, plan_arena, plot_timeline
from edgeq.errors import CodegenError
from edgeq.fileio import atomic_output_dir
from edgeq.tflite import Tensor, TfliteModel, read_tflite_bytes

ABI_VERSION = 1
_OPTIONAL_OP_MODULES = ("edgeq.codegen.ops_elementwise", "edgeq.codegen.ops_lut")
# lowering variants (edgeq.codegen.lowering): int4 filters always; LUT-coded int8 on request
WEIGHT_CODINGS = {"int8": ("int4",), "lut": ("int4", "lut")}

C_TYPES = {
    "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
    "uint8": "uint8_t", "float32": "float", "bool": "uint8_t",
}
_NP_C_TYPES = {
    np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t",
    np.dtype(np.int64): "int64_t", np.dtype(np.uint8): "uint8_t", np.dtype(np.uint16): "uint16_t",
    np.dtype(np.uint32): "uint32_t", np.dtype(np.float32): "float",
}
_INT_LIMITS = {"int8_t": 8, "int16_t": 16, "int32_t": 32, "int64_t": 64}


def _load_op_modules() -> None:
    for name in _OPTIONAL_OP_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def runtime_dir() -> Path:
    """``firmware/runtime`` of this checkout: kernels and headers the generated C links with."""
    return Path(__file__).resolve().parents[2] / "firmware" / "runtime"


_KERNEL_DEF = re.compile(r"^\s*eq_status\s+(eq_\w+)\s*\(", re.MULTILINE)


def kernel_index(root: Path | None = None) -> dict[str, Path]:
    """Map each kernel function to the ``firmware/runtime/kernels/*.c`` file that defines it.

    Functions are those declared in the runtime headers; a file defines one if it has the
    definition, or else instantiates it through a macro (the name appears in the file).
    """
    base = root or runtime_dir()
    sources = {src: src.read_text(encoding="utf-8", errors="replace")
               for src in sorted((base / "kernels").glob("*.c"))}
    index: dict[str, Path] = {}
    for src, text in sources.items():
        for name in _KERNEL_DEF.findall(text):
            index.setdefault(name, src)
    declared: set[str] = set()
    for hdr in sorted((base / "include").glob("*.h")):
        declared.update(_KERNEL_DEF.findall(hdr.read_text(encoding="utf-8", errors="replace")))
    for name in sorted(declared - set(index)):
        pattern = re.compile(rf"\b{re.escape(name)}\b")
        for src, text in sources.items():
            if pattern.search(text):
                index[name] = src
                break
    return index


@dataclass
class LayerInfo:
    """One kernel call of ``edgeq_model_invoke()`` (views are not layers)."""

    position: int
    op_index: int
    op: str
    function: str
    macs: int
    scratch_bytes: int


@dataclass
class EdgeqRtResult:
    out_dir: Path
    model_name: str
    model_hash: str
    arena_bytes: int
    weight_bytes: int
    layers: list[LayerInfo]
    views: list[int]
    plan: ArenaPlan
    functions: list[str]
    kernel_sources: list[Path]
    include_dir: Path
    files: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "model_name": self.model_name,
            "model_hash": self.model_hash,
            "arena_bytes": self.arena_bytes,
            "weight_bytes": self.weight_bytes,
            "total_macs": sum(layer.macs for layer in self.layers),
            "layers": [vars(layer) for layer in self.layers],
            "views": self.views,
            "functions": self.functions,
            "kernel_sources": [str(p) for p in self.kernel_sources],
            "include_dir": str(self.include_dir),
            "files": [str(p) for p in self.files],
            "memory_plan": self.plan.as_dict(),
        }


@dataclass
class _Lowered:
    model: TfliteModel
    calls: list[KernelCall]  # non-view calls in execution order
    views: list[KernelCall]
    root: dict[int, int]  # tensor -> tensor whose storage it uses
    plan: ArenaPlan
    buffer_of: dict[int, str]  # root tensor -> buffer name
    scratch_of: dict[int, str]  # call position -> scratch buffer name
    preserve_inputs: bool = False


# --- refusing what cannot be reproduced ------------------------------------------------------


def _activation_tensors(model: TfliteModel, indices: list[int]) -> list[Tensor]:
    return [model.tensors[i] for i in indices if i >= 0 and not model.tensors[i].is_constant]


def check_quantized(model: TfliteModel, source: str) -> None:
    """Float and hybrid (dynamic-range) models get their own one-line explanation."""
    compute = [op for op in model.operators if op.opcode not in ("QUANTIZE", "DEQUANTIZE")]
    float_ops = [
        op for op in compute
        if any(t.dtype == "float32" for t in _activation_tensors(model, op.inputs + op.outputs))
    ]
    if not float_ops:
        return
    hybrid = [
        op for op in float_ops
        if any(
            i >= 0 and model.tensors[i].is_constant and model.tensors[i].dtype in ("int8", "int4")
            for i in op.inputs
        )
    ]
    if hybrid:
        where = ", ".join(f"op {op.index} {op.opcode}" for op in hybrid[:6])
        raise CodegenError(
            f"{source}: hybrid (dynamic-range) model: float activations with int8 weights at "
            f"{where}; edgeq-rt needs full-integer quantization: run `edgeq quantize` with a "
            "representative dataset"
        )
    if len(float_ops) == len(compute):
        raise CodegenError(
            f"{source}: float model (activations are float32, not quantized); quantize it to "
            "int8 or int16x8 with `edgeq quantize` first"
        )


def lower_model(
    model: TfliteModel, source: str, variants: tuple[str, ...] = ("int4",)
) -> list[KernelCall]:
    """Lower every operator; collect every refusal into one line."""
    _load_op_modules()
    if model.num_subgraphs != 1:
        raise CodegenError(
            f"{source}: model has {model.num_subgraphs} subgraphs; edgeq-rt runs single-graph "
            "models only (no control flow): generate a TFLite Micro bundle instead with "
            "`edgeq codegen MODEL -o DIR --runtime tflm`"
        )
    check_quantized(model, source)
    supported = registered_ops()
    calls: list[KernelCall] = []
    problems: list[str] = []
    for op in model.operators:
        if op.opcode not in supported:
            problems.append(f"op {op.index} {op.opcode} (op not supported)")
            continue
        try:
            calls.append(lower_operator(model, op, variants))
        except CodegenError as exc:
            problems.append(f"op {op.index} {op.opcode} ({exc})")
    for i in model.inputs + model.outputs:
        t = model.tensors[i]
        if t.dtype not in C_DTYPE_ENUM:
            problems.append(f"model input/output '{t.name}' ({t.dtype} not supported)")
    if problems:
        raise CodegenError(
            f"{source}: edgeq-rt cannot compile {len(problems)} operator(s): "
            + "; ".join(problems)
            + ". Fix: replace or remove them, or generate a TFLite Micro bundle instead with "
            "`edgeq codegen MODEL -o DIR --runtime tflm`"
        )
    if not any(not c.view for c in calls):
        raise CodegenError(f"{source}: model has no operator that computes anything")
    return calls


# --- memory planning ---------------------------------------------------------------------------


def _plan(model: TfliteModel, calls: list[KernelCall], preserve_inputs: bool = False) -> _Lowered:
    """Arena plan. Like TFLM, a model input's bytes are reused once its last reader ran (write
    the input before every invoke); ``preserve_inputs`` keeps them intact across invokes."""
    root: dict[int, int] = {}

    def find(t: int) -> int:
        while t in root and root[t] != t:
            t = root[t]
        return t

    kernels = [c for c in calls if not c.view]
    views = [c for c in calls if c.view]
    for c in views:
        root[c.outputs[0]] = find(c.inputs[0])

    consts = {t.index for t in model.tensors if t.is_constant}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    size: dict[int, int] = {}
    n = len(kernels)

    def touch(t: int, step: int) -> None:
        r = find(t)
        if r in consts:
            return
        size[r] = max(size.get(r, 0), model.tensors[r].nbytes, model.tensors[t].nbytes)
        first[r] = min(first.get(r, step), step)
        last[r] = max(last.get(r, step), step)

    for t in model.inputs:
        touch(t, -1)
        if preserve_inputs:
            touch(t, n)
    for step, c in enumerate(kernels):
        for t in c.inputs:
            if t >= 0:
                touch(t, step)
        for t in c.outputs:
            if c.in_place and c.inputs and c.inputs[0] >= 0:
                src = find(c.inputs[0])
                outputs_roots = {find(o) for o in model.outputs}
                if (src not in consts and last.get(src) == step and src not in outputs_roots
                        and not _used_later(kernels, step, src, find)
                        and model.tensors[t].nbytes <= size[src]):
                    root[t] = src
            touch(t, step)
    for t in model.outputs:
        touch(t, n)

    buffers = [Buffer(f"t{r}", size[r], first[r], last[r]) for r in sorted(size)]
    scratch_of: dict[int, str] = {}
    for step, c in enumerate(kernels):
        if c.scratch_bytes > 0:
            scratch_of[step] = f"scratch{step}"
            buffers.append(Buffer(scratch_of[step], int(c.scratch_bytes), step, step))
    # raster-order kernels may write their output over input bytes they are done with, when
    # no later step reads that input (see ops_conv.raster_overlap)
    overlaps = []
    for step, c in enumerate(kernels):
        if "overlap_bytes" not in c.extra or step in scratch_of:
            continue
        src, dst = find(c.inputs[0]), find(c.outputs[0])
        if src in size and dst in size and src != dst and last[src] == step:
            overlaps.append((f"t{dst}", f"t{src}", int(c.extra["overlap_bytes"])))
    plan = plan_arena(buffers, n, overlaps=overlaps)
    all_tensors = {i for c in calls for i in c.inputs + c.outputs if i >= 0}
    all_tensors.update(model.inputs + model.outputs)
    root_map = {t: find(t) for t in sorted(all_tensors)}
    return _Lowered(model, kernels, views, root_map, plan, {r: f"t{r}" for r in size}, scratch_of,
                    preserve_inputs)


def _used_later(kernels: list[KernelCall], step: int, src: int, find: Any) -> bool:
    return any(find(t) == src for c in kernels[step + 1 :] for t in c.inputs if t >= 0)


# --- C rendering ---------------------------------------------------------------------------------


def _c_int(v: int, ctype: str = "int32_t") -> str:
    bits = _INT_LIMITS.get(ctype, 32)
    if v == -(1 << (bits - 1)):
        return f"({v + 1} - 1)"
    return str(v)


def _c_float(v: float) -> str:
    f = float(np.float32(v))
    if not np.isfinite(f):
        raise CodegenError(f"non-finite constant {f} in model parameters")
    text = repr(f)
    return text + "f"


def _c_array_body(arr: np.ndarray, per_line: int = 16) -> str:
    flat = np.asarray(arr).reshape(-1)
    ctype = _NP_C_TYPES.get(flat.dtype)
    if ctype == "float":
        items = [_c_float(x) for x in flat.tolist()]
        per_line = 6
    elif flat.dtype == np.bool_:
        items = [str(int(x)) for x in flat.tolist()]
    else:
        items = [_c_int(int(x), ctype or "int32_t") for x in flat.tolist()]
    lines = [
        "    " + ", ".join(items[k : k + per_line]) + ","
        for k in range(0, len(items), per_line)
    ]
    return "\n".join(lines)


def _render_params(name: str, params: dict[str, Any], arrays: list[str]) -> str:
    """Designated initializer for ``params``; numpy arrays become separate const arrays."""

    def value(path: str, v: Any, indent: str) -> str:
        if isinstance(v, dict):
            inner = ",\n".join(
                f"{indent}    .{k} = {value(f'{path}_{k}', x, indent + '    ')}" for k, x in v.items()
            )
            return "{\n" + inner + f"\n{indent}}}"
        if isinstance(v, np.ndarray):
            arr = v.reshape(-1)
            if arr.size == 0:
                return "NULL"
            ctype = _NP_C_TYPES.get(arr.dtype)
            if ctype is None:
                raise CodegenError(f"parameter {path} has unsupported dtype {arr.dtype}")
            arrays.append(
                f"static const {ctype} {path}[{arr.size}] = {{\n{_c_array_body(arr)}\n}};"
            )
            return path
        if isinstance(v, bool | np.bool_):
            return "1" if v else "0"
        if isinstance(v, int | np.integer):
            return _c_int(int(v))
        if isinstance(v, float | np.floating):
            return _c_float(float(v))
        if isinstance(v, str):  # a C expression, e.g. an enum constant
            return v
        raise CodegenError(f"parameter {path} has unsupported value type {type(v).__name__}")

    return value(name, params, "")


def _comment(text: str) -> str:
    return text.replace("*/", "* /").replace("\n", " ")


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sanitize_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "model"


def _io_info(t: Tensor) -> str:
    dims = [int(d) for d in t.shape][:6]
    dims_c = ", ".join(str(d) for d in dims + [0] * (6 - len(dims)))
    if t.quant is not None and t.quant.scale.size and t.dtype != "float32":
        scale, zp = _c_float(float(t.quant.scale[0])), int(t.quant.zero_point[0])
    else:
        scale, zp = "0.0f", 0
    return (
        f"    {{ .dtype = {C_DTYPE_ENUM[t.dtype]}, .rank = {len(dims)}, .dims = {{ {dims_c} }}, "
        f".bytes = {t.nbytes}, .scale = {scale}, .zero_point = {zp} }},"
    )


def render_model(low: _Lowered, name: str, model_hash: str) -> tuple[str, str]:
    """The generated ``model.c`` and ``model.h`` text (pure, deterministic)."""
    m = low.model
    n_layers = len(low.calls)
    guard = "EDGEQ_MODEL_H"
    h = [
        f"/* Generated by edgeq codegen (edgeq-rt) from {_comment(name)}.tflite. Do not edit:",
        " * regenerate instead. Model API: docs/interfaces.md. */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        '#include "edgeq_rt.h"',
        "",
        f"#if EQ_RT_ABI_VERSION != {ABI_VERSION}",
        f'#error "model.h was generated for edgeq-rt ABI {ABI_VERSION}: regenerate it with '
        'edgeq codegen --runtime edgeq"',
        "#endif",
        "",
        f"#define EDGEQ_MODEL_NAME {_c_string(name)}",
        f'#define EDGEQ_MODEL_HASH "{model_hash}"',
        f"#define EDGEQ_MODEL_ARENA_BYTES {low.plan.arena_bytes}",
        f"#define EDGEQ_MODEL_NUM_INPUTS {len(m.inputs)}",
        f"#define EDGEQ_MODEL_NUM_OUTPUTS {len(m.outputs)}",
        f"#define EDGEQ_MODEL_NUM_LAYERS {n_layers}",
        f"#define EDGEQ_MODEL_WEIGHT_BYTES {_weight_bytes(low)}",
        f"#define EDGEQ_MODEL_INPUTS_PRESERVED {int(low.preserve_inputs)}",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        "extern const eq_io_info edgeq_model_input_info[EDGEQ_MODEL_NUM_INPUTS];",
        "extern const eq_io_info edgeq_model_output_info[EDGEQ_MODEL_NUM_OUTPUTS];",
        "extern const char *const edgeq_model_layer_names[EDGEQ_MODEL_NUM_LAYERS];",
        "extern const uint32_t edgeq_model_layer_macs[EDGEQ_MODEL_NUM_LAYERS];",
        "",
        "/* Pointers into the static arena; NULL for an index out of range. Unless",
        "   EDGEQ_MODEL_INPUTS_PRESERVED, invoke reuses the input bytes once no layer reads them",
        "   (as TFLM does): write the input before every invoke. */",
        "void *edgeq_model_input(int32_t i);",
        "void *edgeq_model_output(int32_t i);",
        "",
        "/* Runs every layer once; EQ_OK or the first kernel's error. */",
        "eq_status edgeq_model_invoke(void);",
        "",
        "/* With -DEDGEQ_PROFILE_LAYERS, invoke calls edgeq_layer_hook(layer, 0) before and",
        "   edgeq_layer_hook(layer, 1) after each kernel; the application defines it. */",
        "void edgeq_layer_hook(int32_t layer, int32_t end);",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        f"#endif /* {guard} */",
        "",
    ]

    c: list[str] = [
        f"/* Generated by edgeq codegen (edgeq-rt) from {_comment(name)}.tflite. Do not edit. */",
        '#include "model.h"',
        "",
        '#include "eq_kernels.h"',
        "",
        "#if defined(EDGEQ_PROFILE_LAYERS)",
        "#define EQ_LAYER_BEGIN(i) edgeq_layer_hook((i), 0)",
        "#define EQ_LAYER_END(i) edgeq_layer_hook((i), 1)",
        "#else",
        "#define EQ_LAYER_BEGIN(i) ((void)0)",
        "#define EQ_LAYER_END(i) ((void)0)",
        "#endif",
        "",
        "#define EQ_ARENA(type, offset) ((type *)(void *)&edgeq_arena[(offset)])",
        "",
        f"/* Activations: {len(low.plan.buffers)} buffers planned into one arena "
        f"({low.plan.strategy}). */",
        "static uint8_t edgeq_arena[EDGEQ_MODEL_ARENA_BYTES] EQ_ALIGN16;",
        "",
    ]

    # constants (weights, biases, constant operands), each once, in tensor order
    const_ids = sorted({
        low.root.get(i, i) for call in low.calls for i in call.inputs
        if i >= 0 and m.tensors[low.root.get(i, i)].is_constant
    })
    for ti in const_ids:
        t = m.tensors[ti]
        ctype = C_TYPES.get(t.dtype)
        if ctype is None:
            raise CodegenError(f"constant tensor '{t.name}' is {t.dtype}; not supported")
        data = np.asarray(t.data).astype(np.dtype(t.dtype) if t.dtype != "bool" else np.uint8)
        c.append(f"/* {_comment(t.name)} {t.dtype}{list(t.shape)} */")
        c.append(f"static const {ctype} tensor{ti}[{max(data.size, 1)}] EQ_ALIGN16 = {{")
        c.append(_c_array_body(data) if data.size else "    0,")
        c.append("};")
        c.append("")

    # per-layer parameter structs
    for call in low.calls:
        arrays: list[str] = []
        init = _render_params(f"op{call.layer}", call.params, arrays)
        c.append(f"/* op {call.layer}: {call.op} -> {call.function} */")
        c.extend(arrays)
        c.append(f"static const {call.params_type} op{call.layer}_params = {init};")
        c.append("")

    c.append("const eq_io_info edgeq_model_input_info[EDGEQ_MODEL_NUM_INPUTS] = {")
    c.extend(_io_info(m.tensors[i]) for i in m.inputs)
    c.append("};")
    c.append("const eq_io_info edgeq_model_output_info[EDGEQ_MODEL_NUM_OUTPUTS] = {")
    c.extend(_io_info(m.tensors[i]) for i in m.outputs)
    c.append("};")
    c.append("const char *const edgeq_model_layer_names[EDGEQ_MODEL_NUM_LAYERS] = {")
    c.extend(f"    {_c_string(call.op)}," for call in low.calls)
    c.append("};")
    c.append("const uint32_t edgeq_model_layer_macs[EDGEQ_MODEL_NUM_LAYERS] = {")
    c.extend(f"    {int(call.macs)}u," for call in low.calls)
    c.append("};")
    c.append("")

    def offset(t: int) -> int:
        return low.plan.offset_of(low.buffer_of[low.root[t]])

    for kind, ids in (("input", m.inputs), ("output", m.outputs)):
        c.append(f"void *edgeq_model_{kind}(int32_t i)")
        c.append("{")
        c.append("    switch (i) {")
        for k, t in enumerate(ids):
            c.append(f"    case {k}:")
            c.append(f"        return &edgeq_arena[{offset(t)}];")
        c.append("    default:")
        c.append("        return NULL;")
        c.append("    }")
        c.append("}")
        c.append("")

    def pointer(t: int) -> str:
        if t < 0:
            return "NULL"
        r = low.root[t]
        if m.tensors[r].is_constant:
            return f"tensor{r}"
        ctype = C_TYPES[m.tensors[t].dtype]
        return f"EQ_ARENA({ctype}, {offset(t)})"

    c.append("eq_status edgeq_model_invoke(void)")
    c.append("{")
    c.append("    eq_status status;")
    for step, call in enumerate(low.calls):
        args = [f"&op{call.layer}_params"]
        args += [pointer(t) for t in call.inputs]
        args += [pointer(t) for t in call.outputs]
        if step in low.scratch_of:
            off = low.plan.offset_of(low.scratch_of[step])
            args.append(f"(void *)&edgeq_arena[{off}]")
        c.append("")
        c.append(f"    /* layer {step}: op {call.layer} {call.op} */")
        c.append(f"    EQ_LAYER_BEGIN({step});")
        c.append(f"    status = {call.function}({', '.join(args)});")
        c.append(f"    EQ_LAYER_END({step});")
        c.append("    if (status != EQ_OK) {")
        c.append("        return status;")
        c.append("    }")
    c.append("    return EQ_OK;")
    c.append("}")
    c.append("")
    return "\n".join(c), "\n".join(h)


def _weight_bytes(low: _Lowered) -> int:
    ids = {
        low.root.get(i, i) for call in low.calls for i in call.inputs
        if i >= 0 and low.model.tensors[low.root.get(i, i)].is_constant
    }
    lut = sum(  # LUT-coded filters (ops_lut) live in the params: indices + tables
        int(v.nbytes) for call in low.calls for v in call.params.get("lut", {}).values()
        if isinstance(v, np.ndarray)
    )
    return sum(low.model.tensors[i].nbytes for i in ids) + lut


# --- entry point ---------------------------------------------------------------------------------


def compile_model(
    data: bytes, name: str, source: str = "<bytes>", weight_coding: str = "int8",
    preserve_inputs: bool = False,
) -> tuple[_Lowered, str, str, str]:
    """Lower and render without touching the file system: (lowered, model.c, model.h, hash)."""
    if weight_coding not in WEIGHT_CODINGS:
        raise CodegenError(f"unknown weight coding '{weight_coding}'; use "
                           f"{' or '.join(WEIGHT_CODINGS)}")
    model = read_tflite_bytes(data, source=source)
    calls = lower_model(model, source, WEIGHT_CODINGS[weight_coding])
    low = _plan(model, calls, preserve_inputs)
    model_hash = hashlib.sha256(data).hexdigest()[:16]
    model_c, model_h = render_model(low, name, model_hash)
    return low, model_c, model_h, model_hash


def generate_edgeq_rt(
    tflite_path: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    timeline_png: bool = False,
    plan_json: bool = True,
    weight_coding: str = "int8",
    preserve_inputs: bool = False,
) -> EdgeqRtResult:
    """Write ``model.c``/``model.h`` (and ``memory_plan.json``) for ``tflite_path`` into
    ``out_dir``. Raises ``CodegenError``/``ModelError`` before writing anything."""
    from edgeq.fileio import atomic_write_json

    path = Path(tflite_path)
    if not path.is_file():
        raise CodegenError(f"{path}: no such .tflite file; check the path")
    data = path.read_bytes()
    model_name = _sanitize_name(name or path.stem)
    low, model_c, model_h, model_hash = compile_model(data, model_name, source=path.name,
                                                      weight_coding=weight_coding,
                                                      preserve_inputs=preserve_inputs)
    functions = sorted({call.function for call in low.calls})
    index = kernel_index()
    missing = [f for f in functions if f not in index]
    if missing:
        raise CodegenError(
            f"runtime kernels missing from {runtime_dir() / 'kernels'}: {', '.join(missing)}; "
            "update the edgeq checkout"
        )
    layers = [
        LayerInfo(step, call.layer, call.op, call.function, int(call.macs),
                  int(call.scratch_bytes))
        for step, call in enumerate(low.calls)
    ]
    out = Path(out_dir)
    files = [out / "model.c", out / "model.h"]
    with atomic_output_dir(out) as tmp:
        (tmp / "model.c").write_text(model_c, encoding="utf-8")
        (tmp / "model.h").write_text(model_h, encoding="utf-8")
        result = EdgeqRtResult(
            out_dir=out, model_name=model_name, model_hash=model_hash,
            arena_bytes=low.plan.arena_bytes, weight_bytes=_weight_bytes(low), layers=layers,
            views=[v.layer for v in low.views], plan=low.plan, functions=functions,
            kernel_sources=sorted({index[f] for f in functions}),
            include_dir=runtime_dir() / "include", files=files,
        )
        if plan_json:
            atomic_write_json(tmp / "memory_plan.json", {
                "model": model_name, "hash": model_hash, "arena_bytes": low.plan.arena_bytes,
                "layers": [f"{layer.op_index}:{layer.op}" for layer in layers],
                "plan": low.plan.as_dict(),
            })
            files.append(out / "memory_plan.json")
        if timeline_png:
            plot_timeline(low.plan, [f"{layer.op_index}:{layer.op}" for layer in layers],
                          tmp / "memory_timeline.png")
            files.append(out / "memory_timeline.png")
    return result
