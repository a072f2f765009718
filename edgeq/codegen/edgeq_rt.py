"""edgeq-rt: compile an int8/int16x8 ``.tflite`` into C99 (``model.c``/``model.h``) ahead of time.

Everything a TFLM interpreter does at boot happens here instead: every operator is lowered to a
kernel call with precomputed parameters (``edgeq.codegen.lowering``), activations get fixed arena
offsets from the memory planner, and weights become ``const`` arrays that stay in flash. The
rendering is a pure function of the model (no timestamps, stable order), so the same ``.tflite``
always gives the same bytes. A model with anything the runtime cannot reproduce bit-exactly is
refused with one line naming every offending operator, before any file is written.
``generate_edgeq_rt`` returns the files as text; ``write_edgeq_rt`` is the one that writes.
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
from edgeq.codegen import cwriter
from edgeq.codegen.kernels import kernel_source, runtime_dir
from edgeq.codegen.lowering import KernelCall, lower_operator, registered_ops
from edgeq.codegen.ops_conv import C_DTYPE_ENUM
from edgeq.codegen.planner import ArenaPlan, Buffer, plan_arena, plot_timeline
from edgeq.errors import CodegenError
from edgeq.fileio import atomic_output_dir, json_text
from edgeq.tflite import Operator, Tensor, TfliteModel, keras_layer, read_tflite_bytes

__all__ = ["EdgeqRtModel", "EdgeqRtResult", "generate_edgeq_rt", "runtime_dir", "write_edgeq_rt"]

ABI_VERSION = 1
_OPTIONAL_OP_MODULES = ("edgeq.codegen.ops_elementwise", "edgeq.codegen.ops_lut",
                        "edgeq.codegen.ops_movement", "edgeq.codegen.ops_math",
                        "edgeq.codegen.ops_recurrent")
# lowering variants (edgeq.codegen.lowering): int4 filters always; LUT-coded int8 on request
WEIGHT_CODINGS = {"int8": ("int4",), "lut": ("int4", "lut")}

C_TYPES = {
    "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
    "uint8": "uint8_t", "float32": "float", "bool": "uint8_t",
}



def _load_op_modules() -> None:
    for name in _OPTIONAL_OP_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


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
class EdgeqRtModel:
    """What generation decided for one model (no files yet)."""

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

    def as_dict(self) -> dict[str, Any]:
        return {
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
            "memory_plan": self.plan.as_dict(),
        }


@dataclass
class EdgeqRtResult(EdgeqRtModel):
    """An ``EdgeqRtModel`` whose files were written into ``out_dir``."""

    out_dir: Path = Path()
    files: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir)} | super().as_dict() | {
            "files": [str(p) for p in self.files]}


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
        where = ", ".join(_op_label(model, op) for op in hybrid[:6])
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


def _op_label(model: TfliteModel, op: Operator) -> str:
    """``op 7 RSQRT`` plus the Keras layer it came from, when the tensor names tell."""
    layer = keras_layer(model, op)
    return f"op {op.index} {op.opcode}" + (f" in Keras layer {layer!r}" if layer else "")


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
            problems.append(f"{_op_label(model, op)} (op not supported)")
            continue
        try:
            calls.append(lower_operator(model, op, variants))
        except CodegenError as exc:
            problems.append(f"{_op_label(model, op)} ({exc})")
    for i in model.inputs + model.outputs:
        t = model.tensors[i]
        if t.dtype not in C_DTYPE_ENUM:
            problems.append(f"model input/output {t.name!r} ({t.dtype} not supported)")
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
# Every literal, identifier and comment below comes from edgeq.codegen.cwriter: model text
# (tensor names, the model name) is untrusted and must not be able to end a comment or string.


def _render_params(name: str, params: dict[str, Any], arrays: list[str]) -> str:
    """Designated initializer for ``params``; numpy arrays become separate const arrays."""

    def value(path: str, v: Any, indent: str) -> str:
        if isinstance(v, dict):
            inner = ",\n".join(
                f"{indent}    .{cwriter.check_identifier(k, 'parameter field')} = "
                f"{value(f'{path}_{k}', x, indent + '    ')}" for k, x in v.items()
            )
            return "{\n" + inner + f"\n{indent}}}"
        if isinstance(v, np.ndarray):
            arr = v.reshape(-1)
            if arr.size == 0:
                return "NULL"
            ctype = cwriter.c_type(arr.dtype)
            if ctype is None or ctype == "bool":
                raise CodegenError(f"parameter {path} has unsupported dtype {arr.dtype}")
            arrays.append(
                f"static const {ctype} {path}[{arr.size}] = {{\n{_array_body(arr)}\n}};"
            )
            return path
        if isinstance(v, bool | np.bool_):
            return "1" if v else "0"
        if isinstance(v, int | np.integer):
            return cwriter.int_literal(int(v))
        if isinstance(v, float | np.floating):
            return cwriter.float_literal(float(v))
        if isinstance(v, str):  # a C expression from a lowering, e.g. an enum constant
            return cwriter.check_identifier(v, f"parameter {path}")
        raise CodegenError(f"parameter {path} has unsupported value type {type(v).__name__}")

    return value(name, params, "")


def _array_body(arr: np.ndarray) -> str:
    per_line = 6 if arr.dtype.kind == "f" else 16
    return cwriter.array_items(arr, per_line=per_line)


def _sanitize_name(name: str) -> str:
    """The model's display name (``EDGEQ_MODEL_NAME``, memory_plan.json): a file-name-safe
    spelling, so it reads the same everywhere it is shown."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "model"


def _io_info(t: Tensor) -> str:
    dims = [int(d) for d in t.shape][:6]
    dims_c = ", ".join(str(d) for d in dims + [0] * (6 - len(dims)))
    if t.quant is not None and t.quant.scale.size and t.dtype != "float32":
        scale = cwriter.float_literal(float(t.quant.scale[0]))
        zp = cwriter.int_literal(int(t.quant.zero_point[0]))
    else:
        scale, zp = "0.0f", "0"
    return (
        f"    {{ .dtype = {C_DTYPE_ENUM[t.dtype]}, .rank = {len(dims)}, .dims = {{ {dims_c} }}, "
        f".bytes = {t.nbytes}, .scale = {scale}, .zero_point = {zp} }},"
    )


def _render_header(low: _Lowered, name: str, model_hash: str) -> str:
    """``model.h``: the model API (docs/interfaces.md) and its size constants."""
    m = low.model
    guard = "EDGEQ_MODEL_H"
    return "\n".join([
        cwriter.block_comment(
            f"Generated by edgeq codegen (edgeq-rt) from {name}.tflite. Do not edit:",
            "regenerate instead. Model API: docs/interfaces.md."),
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
        f"#define EDGEQ_MODEL_NAME {cwriter.string_literal(name)}",
        f"#define EDGEQ_MODEL_HASH {cwriter.string_literal(model_hash)}",
        f"#define EDGEQ_MODEL_ARENA_BYTES {low.plan.arena_bytes}",
        f"#define EDGEQ_MODEL_NUM_INPUTS {len(m.inputs)}",
        f"#define EDGEQ_MODEL_NUM_OUTPUTS {len(m.outputs)}",
        f"#define EDGEQ_MODEL_NUM_LAYERS {len(low.calls)}",
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
    ])


def _source_preamble(low: _Lowered, name: str) -> list[str]:
    return [
        cwriter.block_comment(
            f"Generated by edgeq codegen (edgeq-rt) from {name}.tflite. Do not edit."),
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
        cwriter.block_comment(f"Activations: {len(low.plan.buffers)} buffers planned into one "
                              f"arena ({low.plan.strategy})."),
        "static uint8_t edgeq_arena[EDGEQ_MODEL_ARENA_BYTES] EQ_ALIGN16;",
        "",
    ]


def _constant_ids(low: _Lowered) -> list[int]:
    """Constant tensors the kernels read (weights, biases, operands), each once, in order."""
    return sorted({
        low.root.get(i, i) for call in low.calls for i in call.inputs
        if i >= 0 and low.model.tensors[low.root.get(i, i)].is_constant
    })


def _constant_arrays(low: _Lowered) -> list[str]:
    out: list[str] = []
    for ti in _constant_ids(low):
        t = low.model.tensors[ti]
        ctype = C_TYPES.get(t.dtype)
        if ctype is None:
            raise CodegenError(f"constant tensor {ti} is {t.dtype}; not supported")
        data = np.asarray(t.data).astype(np.dtype(t.dtype) if t.dtype != "bool" else np.uint8)
        out += [
            cwriter.block_comment(f"{t.name} {t.dtype}{list(t.shape)}"),
            f"static const {ctype} tensor{ti}[{max(data.size, 1)}] EQ_ALIGN16 = {{",
            _array_body(data) if data.size else "    0,",
            "};",
            "",
        ]
    return out


def _param_structs(low: _Lowered) -> list[str]:
    out: list[str] = []
    for call in low.calls:
        arrays: list[str] = []
        init = _render_params(f"op{call.layer}", call.params, arrays)
        params_type = cwriter.check_identifier(call.params_type, f"op {call.layer} params type")
        out.append(cwriter.block_comment(f"op {call.layer}: {call.op} -> {call.function}"))
        out += arrays
        out += [f"static const {params_type} op{call.layer}_params = {init};", ""]
    return out


def _io_tables(low: _Lowered) -> list[str]:
    m = low.model
    return [
        "const eq_io_info edgeq_model_input_info[EDGEQ_MODEL_NUM_INPUTS] = {",
        *(_io_info(m.tensors[i]) for i in m.inputs),
        "};",
        "const eq_io_info edgeq_model_output_info[EDGEQ_MODEL_NUM_OUTPUTS] = {",
        *(_io_info(m.tensors[i]) for i in m.outputs),
        "};",
        "const char *const edgeq_model_layer_names[EDGEQ_MODEL_NUM_LAYERS] = {",
        *(f"    {cwriter.string_literal(call.op)}," for call in low.calls),
        "};",
        "const uint32_t edgeq_model_layer_macs[EDGEQ_MODEL_NUM_LAYERS] = {",
        *(f"    {int(call.macs)}u," for call in low.calls),
        "};",
        "",
    ]


def _arena_offset(low: _Lowered, t: int) -> int:
    return low.plan.offset_of(low.buffer_of[low.root[t]])


def _io_accessors(low: _Lowered) -> list[str]:
    out: list[str] = []
    for kind, ids in (("input", low.model.inputs), ("output", low.model.outputs)):
        out += [f"void *edgeq_model_{kind}(int32_t i)", "{", "    switch (i) {"]
        for k, t in enumerate(ids):
            out += [f"    case {k}:", f"        return &edgeq_arena[{_arena_offset(low, t)}];"]
        out += ["    default:", "        return NULL;", "    }", "}", ""]
    return out


def _invoke_function(low: _Lowered) -> list[str]:
    m = low.model

    def pointer(t: int) -> str:
        if t < 0:
            return "NULL"
        r = low.root[t]
        if m.tensors[r].is_constant:
            return f"tensor{r}"
        return f"EQ_ARENA({C_TYPES[m.tensors[t].dtype]}, {_arena_offset(low, t)})"

    out = ["eq_status edgeq_model_invoke(void)", "{", "    eq_status status;"]
    for step, call in enumerate(low.calls):
        args = [f"&op{call.layer}_params"]
        args += [pointer(t) for t in call.inputs]
        args += [pointer(t) for t in call.outputs]
        if step in low.scratch_of:
            args.append(f"(void *)&edgeq_arena[{low.plan.offset_of(low.scratch_of[step])}]")
        function = cwriter.check_identifier(call.function, f"op {call.layer} kernel")
        out += [
            "",
            "    " + cwriter.block_comment(f"layer {step}: op {call.layer} {call.op}"),
            f"    EQ_LAYER_BEGIN({step});",
            f"    status = {function}({', '.join(args)});",
            f"    EQ_LAYER_END({step});",
            "    if (status != EQ_OK) {",
            "        return status;",
            "    }",
        ]
    return out + ["    return EQ_OK;", "}", ""]


def render_model(low: _Lowered, name: str, model_hash: str) -> tuple[str, str]:
    """The generated ``model.c`` and ``model.h`` text (pure, deterministic)."""
    source = (_source_preamble(low, name) + _constant_arrays(low) + _param_structs(low)
              + _io_tables(low) + _io_accessors(low) + _invoke_function(low))
    return "\n".join(source), _render_header(low, name, model_hash)


def _weight_bytes(low: _Lowered) -> int:
    lut = sum(  # LUT-coded filters (ops_lut) live in the params: indices + tables
        int(v.nbytes) for call in low.calls for v in call.params.get("lut", {}).values()
        if isinstance(v, np.ndarray)
    )
    packed = sum(  # filters packed by ops_conv into the kernels' read order replace the tensor
        int(call.params[key].nbytes) for call in low.calls
        for key in ("filter_packed", "filter_blocks")
        if isinstance(call.params.get(key), np.ndarray)
    )
    return sum(low.model.tensors[i].nbytes for i in _constant_ids(low)) + lut + packed


# --- entry points --------------------------------------------------------------------------------


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
    *,
    name: str | None = None,
    plan_json: bool = True,
    weight_coding: str = "int8",
    preserve_inputs: bool = False,
) -> tuple[EdgeqRtModel, dict[str, str]]:
    """``model.c``/``model.h`` (and ``memory_plan.json``) for ``tflite_path`` as
    ``{file name: text}``, with what was decided; writes nothing (see ``write_edgeq_rt``).
    Raises ``CodegenError``/``ModelError`` for a model edgeq-rt cannot reproduce."""
    path = Path(tflite_path)
    if not path.is_file():
        raise CodegenError(f"{path}: no such .tflite file; check the path")
    data = path.read_bytes()
    model_name = _sanitize_name(name or path.stem)
    low, model_c, model_h, model_hash = compile_model(data, model_name, source=path.name,
                                                      weight_coding=weight_coding,
                                                      preserve_inputs=preserve_inputs)
    functions = sorted({call.function for call in low.calls})
    layers = [
        LayerInfo(step, call.layer, call.op, call.function, int(call.macs),
                  int(call.scratch_bytes))
        for step, call in enumerate(low.calls)
    ]
    model = EdgeqRtModel(
        model_name=model_name, model_hash=model_hash, arena_bytes=low.plan.arena_bytes,
        weight_bytes=_weight_bytes(low), layers=layers, views=[v.layer for v in low.views],
        plan=low.plan, functions=functions,
        kernel_sources=sorted({kernel_source(f) for f in functions}),
        include_dir=runtime_dir() / "include",
    )
    files = {"model.c": model_c, "model.h": model_h}
    if plan_json:
        files["memory_plan.json"] = json_text({
            "model": model_name, "hash": model_hash, "arena_bytes": low.plan.arena_bytes,
            "layers": [f"{layer.op_index}:{layer.op}" for layer in layers],
            "plan": low.plan.as_dict(),
        })
    return model, files


def write_edgeq_rt(
    tflite_path: str | Path,
    out_dir: str | Path,
    *,
    timeline_png: bool = False,
    **options: Any,
) -> EdgeqRtResult:
    """``generate_edgeq_rt`` (``options`` are its keywords), then write the files into
    ``out_dir`` all at once (nothing appears if anything fails), plus the memory timeline PNG
    on request."""
    model, files = generate_edgeq_rt(tflite_path, **options)
    out = Path(out_dir)
    names = list(files) + (["memory_timeline.png"] if timeline_png else [])
    with atomic_output_dir(out) as tmp:
        for fname, text in files.items():
            (tmp / fname).write_text(text, encoding="utf-8")
        if timeline_png:
            plot_timeline(model.plan, [f"{layer.op_index}:{layer.op}" for layer in model.layers],
                          tmp / "memory_timeline.png")
    return EdgeqRtResult(**vars(model), out_dir=out, files=[out / n for n in names])
