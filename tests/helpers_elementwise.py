"""Test helpers for the edgeq-rt elementwise kernels: single-op .tflite builders, a renderer
of lowering params into C initializers, and a host-gcc driver that runs a kernel on many samples.

Models are built directly with the flatbuffers object API (no TensorFlow import): fast, and it
lets tests plant any quantization parameters, including the extreme ones a converter never
emits. The TFLite Micro interpreter then decides what the right output is.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.codegen import ops_elementwise  # noqa: F401  (registers the lowerings)
from edgeq.codegen.lowering import KernelCall, lower_operator
from edgeq.oracles import run_litert_ref, run_tflm
from edgeq.tflite import read_tflite_bytes, serialize_model_t
from edgeq.tflite.reader import schema

REPO = Path(__file__).resolve().parents[1]
RUNTIME = REPO / "firmware" / "runtime"
ELEMENTWISE_KERNELS = [
    "eq_add_s8.c", "eq_add_s16.c", "eq_sub_s8.c", "eq_sub_s16.c", "eq_mul_s8.c", "eq_mul_s16.c",
    "eq_softmax_s8.c", "eq_softmax_s8_s16.c", "eq_softmax_s16.c", "eq_mean_s8.c",
    "eq_mean_s16.c", "eq_relu_s8.c", "eq_relu_s16.c", "eq_clamp_s8.c", "eq_clamp_s16.c",
    "eq_leaky_relu_s8.c", "eq_leaky_relu_s16.c", "eq_logistic_s8.c", "eq_tanh_s8.c", "eq_hard_swish_s8.c", "eq_pad_x.c",
    "eq_strided_copy_x.c", "eq_concat_x.c",
]
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"]

_TYPES = {"float32": 0, "int32": 2, "int16": 7, "int8": 9}
_NP = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "float32": np.float32}
_C = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "float32": "float"}


@dataclass
class T:
    """A tensor of a test model: shape, dtype, quantization; data makes it a constant."""

    shape: tuple[int, ...]
    dtype: str = "int8"
    scale: float | None = 0.05
    zp: int = 0
    data: np.ndarray | None = None


def build_model(op_name: str, inputs: list[T], outputs: list[T], options: Any = None,
                options_type: str | None = None, version: int = 1) -> bytes:
    """A one-operator .tflite: non-constant inputs become model inputs, in order."""
    s = schema()
    model = s.ModelT()
    model.version = 3
    model.description = "edgeq test"
    model.buffers = [s.BufferT()]
    sg = s.SubGraphT()
    sg.tensors = []
    sg.inputs, sg.outputs = [], []

    def add_tensor(t: T, name: str) -> int:
        tt = s.TensorT()
        tt.shape = np.asarray(t.shape, dtype=np.int32)
        tt.type = _TYPES[t.dtype]
        tt.name = name
        if t.scale is not None:
            q = s.QuantizationParametersT()
            q.scale = np.asarray([t.scale], dtype=np.float32)
            q.zeroPoint = np.asarray([t.zp], dtype=np.int64)
            tt.quantization = q
        if t.data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(t.data.astype(_NP[t.dtype])).tobytes(),
                                   dtype=np.uint8)
            model.buffers.append(b)
            tt.buffer = len(model.buffers) - 1
        else:
            model.buffers.append(s.BufferT())
            tt.buffer = len(model.buffers) - 1
        sg.tensors.append(tt)
        return len(sg.tensors) - 1

    op = s.OperatorT()
    op.inputs, op.outputs = [], []
    for i, t in enumerate(inputs):
        idx = add_tensor(t, f"in{i}")
        op.inputs.append(idx)
        if t.data is None:
            sg.inputs.append(idx)
    for i, t in enumerate(outputs):
        idx = add_tensor(t, f"out{i}")
        op.outputs.append(idx)
        sg.outputs.append(idx)
    code = s.OperatorCodeT()
    builtin = getattr(s.BuiltinOperator, op_name)
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = version
    model.operatorCodes = [code]
    op.opcodeIndex = 0
    if options is not None:
        op.builtinOptionsType = getattr(s.BuiltinOptions, options_type)
        op.builtinOptions = options
    sg.operators = [op]
    model.subgraphs = [sg]
    return serialize_model_t(model)


def opts(kind: str, **fields: Any) -> tuple[Any, str]:
    """(options object, options type name), e.g. opts("AddOptions", fusedActivationFunction=1)."""
    obj = getattr(schema(), kind + "T")()
    for k, v in fields.items():
        setattr(obj, k, v)
    return obj, kind


def lower_single(model_bytes: bytes) -> KernelCall:
    m = read_tflite_bytes(model_bytes)
    return lower_operator(m, m.operators[0])


# ---------------------------------------------------------------------------------------------
# params -> C


def _c_scalar(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return "1" if v else "0"
    if isinstance(v, int | np.integer):
        iv = int(v)
        return f"({iv + 1} - 1)" if iv == -(1 << 31) else str(iv)
    if isinstance(v, float | np.floating):
        return repr(float(v)) + "f"
    raise TypeError(f"cannot render {type(v)}")


_ARRAY_C = {np.dtype(np.int32): "int32_t", np.dtype(np.int16): "int16_t",
            np.dtype(np.int8): "int8_t", np.dtype(np.float32): "float"}


def render_params(prefix: str, params: dict[str, Any]) -> tuple[str, str]:
    """(declarations of the const arrays, designated initializer of the struct)."""
    decls: list[str] = []

    def value(path: str, v: Any) -> str:
        if isinstance(v, dict):
            inner = ", ".join(f".{k} = {value(path + '_' + k, x)}" for k, x in v.items())
            return "{" + inner + "}"
        if isinstance(v, np.ndarray):
            ctype = _ARRAY_C[v.dtype]
            items = ", ".join(_c_scalar(x) for x in v.reshape(-1)) or "0"
            decls.append(f"static const {ctype} {path}[] = {{{items}}};")
            return path
        return _c_scalar(v)

    init = value(prefix, params)
    return "\n".join(decls), init


def build_kernel_lib(out_dir: Path, extra_cflags: tuple[str, ...] = (),
                     compiler: str = "gcc") -> Path:
    """Compile every elementwise kernel once into a static library for the drivers."""
    out_dir.mkdir(parents=True, exist_ok=True)
    objs = []
    for k in ELEMENTWISE_KERNELS:
        obj = out_dir / (Path(k).stem + ".o")
        subprocess.run([compiler, *CFLAGS, *extra_cflags, f"-I{RUNTIME / 'include'}", "-c",
                        str(RUNTIME / "kernels" / k), "-o", str(obj)],
                       check=True, capture_output=True, text=True)
        objs.append(str(obj))
    lib = out_dir / "libeq_elementwise.a"
    ar = "ar" if compiler == "gcc" else compiler.replace("gcc", "ar")
    subprocess.run([ar, "rcs", str(lib), *objs], check=True)
    return lib


_LIBS: dict[tuple[str, ...], Path] = {}


def kernel_lib(tmp: Path, extra_cflags: tuple[str, ...] = ()) -> Path:
    """The per-process cached kernel library for these flags."""
    if extra_cflags not in _LIBS:
        _LIBS[extra_cflags] = build_kernel_lib(tmp / "eqlib", extra_cflags)
    return _LIBS[extra_cflags]


def run_kernel(call: KernelCall, model_bytes: bytes, inputs: list[np.ndarray], tmp: Path,
               extra_cflags: tuple[str, ...] = ()) -> np.ndarray:
    """Compile a driver for this call with host gcc and run it on every sample.

    ``inputs[j]`` holds one array per model input with the samples on axis 0; returns the
    output stacked the same way.
    """
    m = read_tflite_bytes(model_bytes)
    out_t = m.tensors[call.outputs[0]]
    in_ts = [m.tensors[i] for i in call.inputs]
    decls, init = render_params("prm", call.params)
    n = inputs[0].shape[0]
    lines = [
        "#include <stdio.h>", "#include <stdlib.h>", '#include "eq_kernels_elementwise.h"',
        decls, f"static const {call.params_type} prm_struct = {init};",
        "int main(int argc, char **argv) {",
        "  FILE *fi; FILE *fo; int s; int n;",
    ]
    for j, t in enumerate(in_ts):
        if t.data is not None:  # constant operand: baked into the driver
            items = ", ".join(str(int(v)) for v in np.asarray(t.data).reshape(-1))
            lines.append(f"  static const {_C[t.dtype]} in{j}[] = {{{items}}};")
        else:
            size = max(t.nbytes // np.dtype(_NP[t.dtype]).itemsize, 1)
            lines.append(f"  static {_C[t.dtype]} in{j}[{size}];")
    out_count = max(out_t.nbytes // np.dtype(_NP[out_t.dtype]).itemsize, 1)
    lines += [
        f"  static {_C[out_t.dtype]} out[{out_count}];",
        "  if (argc != 4) return 3;",
        '  fi = fopen(argv[1], "rb"); fo = fopen(argv[2], "wb"); n = atoi(argv[3]);',
        "  if (!fi || !fo) return 4;",
        "  for (s = 0; s < n; ++s) {",
    ]
    for j, t in enumerate(in_ts):
        if t.data is None:
            lines.append(f"    if (fread(in{j}, sizeof(in{j}), 1, fi) != 1) return 5;")
    args = ", ".join(["&prm_struct", *[f"in{j}" for j in range(len(in_ts))], "out"])
    lines += [
        f"    if ({call.function}({args}) != EQ_OK) return 6;",
        "    if (fwrite(out, sizeof(out), 1, fo) != 1) return 7;",
        "  }",
        "  fclose(fi); fclose(fo); return 0;",
        "}",
    ]
    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / "driver.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp / "driver"
    lib = kernel_lib(tmp, extra_cflags)
    subprocess.run(["gcc", *CFLAGS, *extra_cflags, f"-I{RUNTIME / 'include'}", str(src),
                    str(lib), "-o", str(exe)], check=True, capture_output=True, text=True)
    # model input order = order of non-constant call inputs
    variable = [t for t in in_ts if t.data is None]
    with open(tmp / "in.bin", "wb") as f:
        for k in range(n):
            for arr, t in zip(inputs, variable, strict=True):
                f.write(np.ascontiguousarray(arr[k].astype(_NP[t.dtype])).tobytes())
    subprocess.run([str(exe), str(tmp / "in.bin"), str(tmp / "out.bin"), str(n)], check=True)
    raw = np.fromfile(tmp / "out.bin", dtype=_NP[out_t.dtype])
    return raw.reshape((n, -1))


def random_inputs(model_bytes: bytes, n: int, seed: int = 0) -> list[np.ndarray]:
    """Uniform random samples over each model input's full integer range.

    Inputs have batch 1 (the oracles run one sample at a time): samples go on axis 0.
    """
    m = read_tflite_bytes(model_bytes)
    rng = np.random.default_rng(seed)
    out = []
    for t in m.input_tensors:
        info = np.iinfo(_NP[t.dtype])
        assert t.shape[0] == 1, "test models need a leading batch dimension of 1"
        out.append(rng.integers(info.min, info.max, size=(n, *t.shape[1:]), endpoint=True)
                   .astype(_NP[t.dtype]))
    return out


def compare_with_tflm(
    model_bytes: bytes, tmp: Path, n: int = 64, seed: int = 0,
    inputs: list[np.ndarray] | None = None, litert: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Outputs for the same random inputs, each as [samples, elements]: (default build,
    TFLM) and, with ``litert``, (LiteRT-compatible -DEDGEQ_RT_SINGLE_ROUNDING build, LiteRT
    BUILTIN_REF); otherwise the last two are None."""
    call = lower_single(model_bytes)
    xs = inputs if inputs is not None else random_inputs(model_bytes, n, seed)
    got = run_kernel(call, model_bytes, xs, tmp / "tflm")
    feed = xs if len(xs) > 1 else xs[0]
    want = run_tflm(model_bytes, feed)[0].reshape(got.shape[0], -1)
    if not litert:
        return got, want, None, None
    got_lr = run_kernel(call, model_bytes, xs, tmp / "litert", ("-DEDGEQ_RT_SINGLE_ROUNDING",))
    ref = run_litert_ref(model_bytes, feed)[0].reshape(got.shape[0], -1)
    return got, want, got_lr, ref


def extract_op(model_bytes: bytes, op_index: int) -> bytes:
    """A copy of the model holding only operator ``op_index``: its non-constant inputs become
    the model inputs, its outputs the model outputs (tensor specs and quantization kept)."""
    from edgeq.tflite import load_model_t

    m = load_model_t(model_bytes)
    sg = m.subgraphs[0]
    op = sg.operators[op_index]
    sg.operators = [op]

    def is_const(i: int) -> bool:
        b = m.buffers[sg.tensors[i].buffer]
        return sg.tensors[i].buffer > 0 and (b.data is not None and len(b.data) > 0 or b.size > 0)

    sg.inputs = [int(i) for i in op.inputs if i >= 0 and not is_const(int(i))]
    sg.outputs = [int(i) for i in op.outputs]
    return serialize_model_t(m)
