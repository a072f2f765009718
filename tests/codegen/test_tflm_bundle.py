"""TFLite Micro bundle (``edgeq codegen --runtime tflm``) on real third-party models.

The data/config/vector files are compiled with g++ (-Wall -Wextra -Werror) into a small checker
that dumps what the compiled arrays hold; the test compares those bytes with the .tflite file and
re-runs the compiled test inputs through the TFLM interpreter. The whole bundle, example
included, is also built through its own make/CMake fragments against the TFLite Micro tree in
../shared/third_party and run on an emulated Cortex-M4.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tflite_micro.python.tflite_micro import runtime

from edgeq.codegen.tflm_bundle import (
    BUNDLE_FILES,
    TFLM_BUILTIN_METHODS,
    TflmBundlePlan,
    generate_tflm_bundle,
    render_tflm_bundle,
    resolver_registrations,
)
from edgeq.errors import CodegenError
from edgeq.oracles import run_tflm
from edgeq.tfenv import quiet_native_output
from edgeq.tflite import load_model_t, read_tflite, read_tflite_bytes, serialize_model_t

SHARED = (
    Path(os.environ["EDGEQ_SHARED_MODELS"])
    if os.environ.get("EDGEQ_SHARED_MODELS")
    else Path(__file__).resolve().parents[3] / "shared" / "models"
) / "tflm"
REPO = Path(__file__).resolve().parents[2]
EDGEQ = [sys.executable, "-m", "edgeq.cli"]
CXXFLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wpedantic"]

def shared_model(name: str) -> Path:
    path = SHARED / f"{name}.tflite"
    if not path.is_file():
        pytest.fail(f"{path} not present (../shared/models beside the checkout)")
    return path


def sine_float_model() -> Path:
    import tflite_micro

    path = Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "sine_float.tflite"
    if not path.is_file():
        pytest.fail("the tflite_micro wheel ships sine_float.tflite; reinstall it")
    return path


def write_bundle(files: dict[str, str], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    return out


def checker_source(plan: TflmBundlePlan) -> str:
    """A C++ main that dumps the compiled arrays and prints the config as JSON."""
    ns = plan.namespace
    dumps = [f'  Dump(dir + "/model.bin", {plan.array_name}, {plan.array_name}_size);']
    asserts = []
    addrs = [f"Mod16({plan.array_name})"]
    for kind, tensors, cfg in (
        ("Input", plan.inputs, "kInputs"),
        ("Output", plan.outputs, "kOutputs"),
    ):
        for i in range(len(tensors)):
            arr = f"cfg::kTest{kind}{i}"
            dumps.append(f'  Dump(dir + "/{kind.lower()}{i}.bin", {arr}, sizeof({arr}));')
            asserts.append(
                f'static_assert(sizeof({arr}[0]) == cfg::{cfg}[{i}].bytes, "{kind} {i} bytes");'
            )
            addrs.append(f"Mod16({arr})")
    labels = "0"
    if plan.labels:
        labels = "cfg::kNumLabels"
    return f"""
#include <cstdint>
#include <cstdio>
#include <string>

#include "model_config.h"
#include "model_data.h"
#include "test_vectors.h"

namespace cfg = {ns};

{chr(10).join(asserts)}
static_assert(cfg::kTensorArenaSize % 16 == 0, "arena multiple of 16");

static void Dump(const std::string& path, const void* p, size_t n) {{
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(p, 1, n, f) != n) std::exit(2);
  std::fclose(f);
}}

static unsigned Mod16(const void* p) {{
  return static_cast<unsigned>(reinterpret_cast<uintptr_t>(p) % 16u);
}}

static void PrintInfo(const cfg::TensorInfo& t) {{
  std::printf("{{\\"name\\": \\"%s\\", \\"dtype\\": \\"%s\\", \\"shape\\": [", t.name, t.dtype);
  for (int d = 0; d < t.rank; ++d) std::printf("%s%d", d ? ", " : "", t.dims[d]);
  std::printf("], \\"bytes\\": %zu, \\"scale\\": %.9g, \\"zero_point\\": %d}}", t.bytes,
              static_cast<double>(t.scale), static_cast<int>(t.zero_point));
}}

int main(int argc, char** argv) {{
  if (argc != 2) return 2;
  const std::string dir = argv[1];
{chr(10).join(dumps)}
  const unsigned mods[] = {{{", ".join(addrs)}}};
  std::printf("{{\\"align\\": [");
  for (unsigned i = 0; i < sizeof(mods) / sizeof(mods[0]); ++i) std::printf("%s%u", i ? ", " : "", mods[i]);
  std::printf("], \\"arena\\": %zu, \\"measured\\": %zu, \\"vectors\\": %d, \\"labels\\": %d,",
              cfg::kTensorArenaSize, cfg::kArenaMeasuredBytes, cfg::kNumTestVectors, {labels});
  std::printf(" \\"name\\": \\"%s\\", \\"sha256\\": \\"%s\\", \\"inputs\\": [", cfg::kModelName,
              cfg::kModelSha256);
  for (int i = 0; i < cfg::kNumInputs; ++i) {{ if (i) std::printf(", "); PrintInfo(cfg::kInputs[i]); }}
  std::printf("], \\"outputs\\": [");
  for (int i = 0; i < cfg::kNumOutputs; ++i) {{ if (i) std::printf(", "); PrintInfo(cfg::kOutputs[i]); }}
  std::printf("]}}\\n");
  return 0;
}}
"""


def compile_and_check(plan: TflmBundlePlan, files: dict[str, str], tmp: Path) -> dict:
    """Compile data/config/vectors with the checker; return its JSON plus the dumped arrays."""
    src = write_bundle(files, tmp / "bundle")
    (src / "checker.cc").write_text(checker_source(plan))
    exe = tmp / "checker"
    cmd = [
        "g++",
        *CXXFLAGS,
        "-I",
        str(src),
        str(src / "checker.cc"),
        str(src / "model_data.cc"),
        str(src / "test_vectors.cc"),
        "-o",
        str(exe),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dump = tmp / "dump"
    dump.mkdir()
    run = subprocess.run([str(exe), str(dump)], capture_output=True, text=True, check=True)
    report = json.loads(run.stdout)
    report["model_bin"] = (dump / "model.bin").read_bytes()
    report["in"] = [
        np.fromfile(dump / f"input{i}.bin", dtype=t.dtype).reshape((-1, *t.shape[1:]))
        for i, t in enumerate(plan.inputs)
    ]
    report["out"] = [
        np.fromfile(dump / f"output{i}.bin", dtype=t.dtype).reshape((-1, *t.shape[1:]))
        for i, t in enumerate(plan.outputs)
    ]
    return report


def assert_bundle_matches_model(path: Path, plan: TflmBundlePlan, report: dict) -> None:
    data = path.read_bytes()
    info = read_tflite(path)
    # the compiled array is the .tflite, byte for byte, and every array is 16-byte aligned
    assert report["model_bin"] == data
    assert report["align"] == [0] * len(report["align"])
    # op registrations: exactly the model's distinct ops, resolver size = their count
    assert [r.op for r in plan.ops] == info.op_names
    assert len(plan.ops) == len(set(info.op_names))
    # config agrees with the flatbuffer
    for got, t in zip(
        report["inputs"] + report["outputs"], info.input_tensors + info.output_tensors, strict=True
    ):
        assert got["shape"] == list(t.shape)
        assert got["dtype"] == t.dtype
        assert got["bytes"] == t.nbytes
        if t.quant is not None:
            assert got["scale"] == pytest.approx(float(t.quant.scale[0]), rel=1e-7)
            assert got["zero_point"] == int(t.quant.zero_point[0])
    # arena: the measured minimum is where TFLM's own interpreter starts to fit (it allocates at
    # that size and refuses 16 bytes less); the stated size adds the margin
    assert report["measured"] == plan.arena_measured
    runtime.Interpreter.from_bytes(bytes(data), arena_size=report["measured"])
    with quiet_native_output(), pytest.raises(RuntimeError):
        runtime.Interpreter.from_bytes(bytes(data), arena_size=report["measured"] - 16)
    assert report["arena"] >= report["measured"] * 1.10
    assert report["arena"] < report["measured"] * 1.10 + 16
    # vectors: what TFLM computes for the compiled inputs is the compiled expected output
    expected = run_tflm(data, report["in"])
    assert report["vectors"] == 3
    for want, got in zip(expected, report["out"], strict=True):
        np.testing.assert_array_equal(got, want.reshape(got.shape))


# --------------------------------------------------------------------------------- op table


def test_every_registration_names_a_real_builtin_op() -> None:
    from ai_edge_litert import schema_py_generated as schema

    builtins = {k for k in vars(schema.BuiltinOperator) if not k.startswith("_")}
    assert set(TFLM_BUILTIN_METHODS) <= builtins
    methods = list(TFLM_BUILTIN_METHODS.values())
    assert len(set(methods)) == len(methods)
    assert all(m.startswith("Add") for m in methods)
    # the names TFLM users type most; checked against micro_mutable_op_resolver.h
    for op, method in {
        "FULLY_CONNECTED": "AddFullyConnected",
        "CONV_2D": "AddConv2D",
        "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
        "SOFTMAX": "AddSoftmax",
        "RESHAPE": "AddReshape",
        "AVERAGE_POOL_2D": "AddAveragePool2D",
        "MAX_POOL_2D": "AddMaxPool2D",
        "ADD": "AddAdd",
        "MUL": "AddMul",
        "QUANTIZE": "AddQuantize",
        "DEQUANTIZE": "AddDequantize",
        "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
        "SVDF": "AddSvdf",
    }.items():
        assert TFLM_BUILTIN_METHODS[op] == method


# ------------------------------------------------------------------------- real shared models


@pytest.mark.parametrize(
    "name",
    [
        "hello_world_int8",
        "micro_speech_quantized",
        pytest.param("person_detect", marks=pytest.mark.slow),
        "trained_lstm_int8",  # UNIDIRECTIONAL_SEQUENCE_LSTM
    ],
)
def test_bundle_compiles_and_holds_the_model(name: str, tmp_path: Path) -> None:
    path = shared_model(name)
    plan, files = generate_tflm_bundle(path)
    assert sorted(files) == sorted(BUNDLE_FILES)
    report = compile_and_check(plan, files, tmp_path)
    assert_bundle_matches_model(path, plan, report)
    assert report["name"] == name
    ops_h = files["model_ops.h"]
    assert "MicroMutableOpResolver<kNumOps>" in ops_h
    assert f"constexpr unsigned int kNumOps = {len(plan.ops)};" in ops_h
    for reg in plan.ops:
        assert f"resolver.{reg.method}()" in ops_h


def test_bundle_cross_compiles_for_cortex_m4(tmp_path: Path) -> None:
    """The data and vector files build for a Cortex-M4 and keep their 16-byte alignment."""
    path = shared_model("micro_speech_quantized")
    plan, files = generate_tflm_bundle(path)
    src = write_bundle(files, tmp_path)
    flags = ["-mcpu=cortex-m4", "-mthumb", "-Os", *CXXFLAGS, "-fdata-sections", "-c"]
    for unit in ("model_data.cc", "test_vectors.cc"):
        proc = subprocess.run(
            ["arm-none-eabi-g++", *flags, unit], cwd=src, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    sections = subprocess.run(
        ["arm-none-eabi-objdump", "-h", "model_data.o", "test_vectors.o"],
        cwd=src,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in sections.splitlines():
        cols = line.split()
        if len(cols) == 7 and cols[1].startswith(".rodata."):
            found[cols[1]] = (int(cols[2], 16), cols[6])
    assert found[f".rodata.{plan.array_name}"] == (len(path.read_bytes()), "2**4")
    vectors = [v for k, v in found.items() if "kTestInput0" in k or "kTestOutput0" in k]
    assert sorted(v[0] for v in vectors) == sorted([3 * 4, 3 * 1960])
    assert all(v[1] == "2**4" for v in vectors)


def test_stated_arena_int16_io_model(tmp_path: Path) -> None:
    """keyword_scrambled_8bit: int16 in, int32 out, SVDF. TFLM's interpreter segfaults on it at
    some too-small arenas, so sizing runs in a child process; --arena-bytes states a size."""
    path = shared_model("keyword_scrambled_8bit")
    try:
        plan, _ = generate_tflm_bundle(path)
        assert plan.arena_measured > 0  # sizing survived this time
    except CodegenError as exc:
        assert "crashed" in str(exc) and "--arena-bytes" in str(exc)
    plan, files = generate_tflm_bundle(path, arena_bytes=20000)
    assert plan.arena_bytes == 20000 and plan.arena_measured == 0
    assert "stated when the bundle was generated" in files["model_config.h"]
    report = compile_and_check(plan, files, tmp_path)
    assert report["model_bin"] == path.read_bytes()
    assert report["in"][0].dtype == np.int16 and report["out"][0].dtype == np.int32
    expected = run_tflm(path.read_bytes(), report["in"])[0]
    np.testing.assert_array_equal(report["out"][0], expected.reshape(report["out"][0].shape))
    with pytest.raises(CodegenError, match="cannot allocate the model in 4096 bytes"):
        generate_tflm_bundle(path, arena_bytes=4096)


def test_float_io_model_vectors(tmp_path: Path) -> None:
    path = sine_float_model()
    plan, files = generate_tflm_bundle(path, name="sine")
    report = compile_and_check(plan, files, tmp_path)
    assert report["model_bin"] == path.read_bytes()
    assert report["in"][0].dtype == np.float32
    np.testing.assert_array_equal(report["in"][0][0], 0.0)  # vector 0 = real zero
    expected = run_tflm(path.read_bytes(), report["in"])[0]
    np.testing.assert_array_equal(report["out"][0], expected.reshape(report["out"][0].shape))
    assert "kFloatTolerance" in files["test_vectors.h"]
    assert "std::fabs" in files["main_example.cc"]


def test_generation_is_deterministic() -> None:
    path = shared_model("micro_speech_quantized")
    _, first = generate_tflm_bundle(path)
    plan, second = generate_tflm_bundle(path)
    assert first == second
    assert render_tflm_bundle(plan) == second


def test_names_and_labels(tmp_path: Path) -> None:
    path = shared_model("micro_speech_quantized")
    labels = ["silence", "unknown", "yes", 'say "no"']
    plan, files = generate_tflm_bundle(path, name="kws", array_name="g_model", labels=labels)
    assert plan.namespace == "kws_model"
    assert "alignas(16) const unsigned char g_model[g_model_size]" in files["model_data.cc"]
    assert "constexpr size_t g_model_size = 18800;" in files["model_data.h"]
    assert "tflite::GetModel(g_model)" in files["main_example.cc"]
    assert '"say \\"no\\"",' in files["model_config.h"]
    assert "kws_model::kLabels[best]" in files["main_example.cc"]
    report = compile_and_check(plan, files, tmp_path)  # g++ is installed by `make setup`
    assert report["labels"] == 4
    assert report["model_bin"] == path.read_bytes()


def test_labels_from_sidecar(tmp_path: Path) -> None:
    model = tmp_path / "kws.tflite"
    shutil.copy(shared_model("micro_speech_quantized"), model)
    (tmp_path / "kws.edgeq.json").write_text(json.dumps({"labels": ["a", "b", "c", "d"]}))
    plan, files = generate_tflm_bundle(model)
    assert plan.labels == ("a", "b", "c", "d")
    assert "constexpr int kNumLabels = 4;" in files["model_config.h"]


def test_margin_is_stated_and_applied() -> None:
    path = shared_model("hello_world_int8")
    plan, files = generate_tflm_bundle(path, arena_margin=0.25)
    assert plan.arena_bytes >= plan.arena_measured * 1.25
    assert plan.arena_bytes % 16 == 0
    assert "plus a 25% margin" in files["model_config.h"]
    assert f"kArenaMeasuredBytes = {plan.arena_measured};" in files["model_config.h"]


# --------------------------------------------------------------------------- int4 and refusals


def _patched(path: Path, edit) -> bytes:  # noqa: ANN001
    model_t = load_model_t(path.read_bytes())
    edit(model_t)
    return serialize_model_t(model_t)


def _int4_weights(model_t) -> None:  # noqa: ANN001
    """Repack the second FULLY_CONNECTED's int8 weights as int4 (TFLM unpacks them)."""
    sg = model_t.subgraphs[0]
    w = sg.tensors[sg.operators[1].inputs[1]]
    buf = model_t.buffers[w.buffer]
    vals = np.clip(np.asarray(buf.data, dtype=np.uint8).view(np.int8) // 16, -8, 7)
    nib = vals.astype(np.uint8) & 0x0F
    buf.data = (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)
    w.type = 17  # INT4


def test_int4_weights_are_noted(tmp_path: Path) -> None:
    data = _patched(shared_model("hello_world_int8"), _int4_weights)
    model = tmp_path / "hello_int4.tflite"
    model.write_bytes(data)
    plan, files = generate_tflm_bundle(model)
    assert [r.int4_weights for r in plan.ops] == [True]
    assert "int4-packed weights in: FULLY_CONNECTED" in files["model_ops.h"]
    # the vectors are what TFLM computes for the int4 model, not the int8 original
    int8_out = run_tflm(shared_model("hello_world_int8").read_bytes(), list(plan.vector_inputs))
    assert not np.array_equal(int8_out[0], plan.vector_outputs[0])


def test_int4_outside_weights_is_refused() -> None:
    def int4_activation(model_t) -> None:  # noqa: ANN001
        sg = model_t.subgraphs[0]
        t = sg.tensors[sg.operators[1].inputs[0]]
        t.type = 17
        t.quantization.zeroPoint = [0] * len(t.quantization.zeroPoint)  # a valid int4 zero point

    data = _patched(shared_model("hello_world_int8"), int4_activation)
    with pytest.raises(
        CodegenError,
        match=r"int4 tensors .*FULLY_CONNECTED \(subgraph 0, op 1\) "
        r"input 0",
    ):
        resolver_registrations(data)


def _with_opcode(code_name: str, custom: bytes | None = None):  # noqa: ANN202
    def edit(model_t) -> None:  # noqa: ANN001
        from ai_edge_litert import schema_py_generated as schema

        code = getattr(schema.BuiltinOperator, code_name)
        oc = model_t.operatorCodes[0]
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.customCode = custom

    return edit


def test_op_without_registration_is_refused() -> None:
    data = _patched(shared_model("hello_world_int8"), _with_opcode("TOPK_V2"))
    with pytest.raises(CodegenError) as err:
        resolver_registrations(data)
    msg = str(err.value)
    assert "\n" not in msg
    assert "TFLite Micro has no op registration for: TOPK_V2 (subgraph 0, op 0)" in msg
    data = _patched(shared_model("hello_world_int8"), _with_opcode("CUSTOM", b"MyOp"))
    with pytest.raises(CodegenError, match="custom op 'MyOp'"):
        resolver_registrations(data)


# -------------------------------------------------------------------------------------- CLI


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGEQ, *args], capture_output=True, text=True, cwd=REPO)


def test_cli_writes_bundle(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    proc = run_cli(
        "codegen",
        str(shared_model("hello_world_int8")),
        "-o",
        str(out),
        "--runtime",
        "tflm",
        "--array-name",
        "g_model",
        "--vectors",
        "2",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["ops"] == ["FULLY_CONNECTED"]
    assert summary["resolver_size"] == 1
    assert summary["test_vectors"] == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(BUNDLE_FILES)
    assert "g_model[g_model_size]" in (out / "model_data.cc").read_text()
    assert "kNumTestVectors = 2;" in (out / "test_vectors.h").read_text()


def test_cli_labels_file(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("silence\nunknown\nyes\nno\n")
    out = tmp_path / "b"
    proc = run_cli(
        "codegen",
        str(shared_model("micro_speech_quantized")),
        "-o",
        str(out),
        "--labels",
        str(labels),
    )
    assert proc.returncode == 0, proc.stderr
    assert "arena:" in proc.stdout
    assert '"yes",' in (out / "model_config.h").read_text()


def _assert_one_line_failure(proc: subprocess.CompletedProcess[str], out: Path, text: str) -> None:
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("edgeq: error: ")
    assert text in lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


def test_cli_bad_inputs_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    bad_labels = tmp_path / "labels.txt"
    bad_labels.write_text("a\nb\n")
    proc = run_cli(
        "codegen",
        str(shared_model("micro_speech_quantized")),
        "-o",
        str(out),
        "--labels",
        str(bad_labels),
    )
    _assert_one_line_failure(proc, out, "2 labels given but output 0 has 4 values")

    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(shared_model("hello_world_int8").read_bytes()[:300])
    proc = run_cli("codegen", str(corrupt), "-o", str(out))
    _assert_one_line_failure(proc, out, "corrupt.tflite")

    unsupported = tmp_path / "topk.tflite"
    unsupported.write_bytes(_patched(shared_model("hello_world_int8"), _with_opcode("TOPK_V2")))
    proc = run_cli("codegen", str(unsupported), "-o", str(out))
    _assert_one_line_failure(proc, out, "no op registration for: TOPK_V2")

    proc = run_cli(
        "codegen",
        str(shared_model("hello_world_int8")),
        "-o",
        str(out),
        "--array-name",
        "1bad-name",
    )
    _assert_one_line_failure(proc, out, "is not a C identifier")

    proc = run_cli("codegen", str(tmp_path / "missing.tflite"), "-o", str(out))
    _assert_one_line_failure(proc, out, "no such")

    proc = run_cli(
        "codegen",
        str(shared_model("hello_world_int8")),
        "-o",
        str(out),
        "--runtime",
        "edgeq",
        "--array-name",
        "g_model",
    )
    _assert_one_line_failure(proc, out, "only for --runtime tflm")


def test_cli_unwritable_output(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = run_cli("codegen", str(shared_model("hello_world_int8")), "-o", str(blocker / "out"))
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("edgeq: error: ")


def test_cli_edgeq_runtime_is_dispatched(tmp_path: Path) -> None:
    out = tmp_path / "rt"
    proc = run_cli(
        "codegen",
        str(shared_model("hello_world_int8")),
        "-o",
        str(out),
        "--runtime",
        "edgeq",
        "--name",
        "sine",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model_name"] == "sine"
    assert (out / "model.c").is_file() and (out / "model.h").is_file()
    assert '#define EDGEQ_MODEL_NAME "sine"' in (out / "model.h").read_text()


# ------------------------------------------------------------- with a TFLite Micro source tree
# main_example.cc compiled against ../shared/third_party/tflite-micro (the cached Cortex-M4
# CMSIS-NN library of tests/bench/test_tflm_baseline.py: one library build per machine) through
# the bundle's own build fragments, linked with the tree's Cortex_DFP startup and newlib's
# semihosting (rdimon), and run on QEMU's mps2-an386 (a Cortex-M4).

M4 = "-mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard -mthumb"
# main_example prints through TFLM's debug log; on cortex_m_generic the application routes it
LOG_TO_SEMIHOSTING = """
#include <cstdio>

#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"

namespace {
void Print(const char* s) {
  std::fputs(s, stdout);
  std::fflush(stdout);
}
struct Register {
  Register() { RegisterDebugLogCallback(Print); }
};
Register g_register;
}  // namespace
"""


def _m4_support(lib_root: Path, out: Path) -> dict[str, str]:
    """Startup, system file and a linker script for mps2-an386 from the tree's Cortex_DFP."""
    dfp = lib_root / "tensorflow/lite/micro/tools/make/downloads/cmsis/Cortex_DFP/Device/ARMCM4"
    cmsis = lib_root / "tensorflow/lite/micro/tools/make/downloads/cmsis/CMSIS/Core/Include"
    script = (dfp / "Config" / "ARMCM4_gcc.ld").read_text()
    for key, value in (("__ROM_SIZE", "0x00400000"), ("__RAM_SIZE", "0x00400000"),
                       ("__STACK_SIZE", "0x00008000"), ("__HEAP_SIZE ", "0x00010000")):
        script = re.sub(rf"^{key}\s*= 0x[0-9A-Fa-f]+;", f"{key.strip()} = {value};", script,
                        flags=re.M)
    (out / "mps2_an386.ld").write_text(script)
    (out / "log_semihost.cc").write_text(LOG_TO_SEMIHOSTING)
    return {"startup": str(dfp / "Source" / "startup_ARMCM4.c"),
            "system": str(dfp / "Source" / "system_ARMCM4.c"),
            "c_includes": f"-I{cmsis} -I{dfp / 'Include'} -DARMCM4",
            "ld": str(out / "mps2_an386.ld"), "log": str(out / "log_semihost.cc")}


def _build_with_make(bundle: Path, lib, work: Path, prefix: str) -> Path:  # noqa: ANN001
    sup = _m4_support(lib.root, work)
    (work / "Makefile").write_text(
        f"TFLM_DIR := {lib.root}\n"
        f"include {bundle}/tflm_bundle.mk\n"
        f"ARCH := {M4}\n"
        f"example.elf: $({prefix}_EXAMPLE) $({prefix}_SOURCES) {sup['log']} startup.o system.o\n"
        f"\tarm-none-eabi-g++ $(ARCH) -O2 -Wall -Wextra -Werror -Wno-unused-parameter "
        f"$({prefix}_CXXFLAGS) $^ {lib.library} --specs=rdimon.specs -T {sup['ld']} "
        "-Wl,--gc-sections -lm -o $@\n"
        f"startup.o: {sup['startup']}\n"
        f"\tarm-none-eabi-gcc $(ARCH) -O2 {sup['c_includes']} -c $< -o $@\n"
        f"system.o: {sup['system']}\n"
        f"\tarm-none-eabi-gcc $(ARCH) -O2 {sup['c_includes']} -c $< -o $@\n")
    proc = subprocess.run(["make", "-s"], cwd=work, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return work / "example.elf"


def _build_with_cmake(bundle: Path, lib, work: Path, prefix: str, target: str) -> Path:  # noqa: ANN001
    sup = _m4_support(lib.root, work)
    (work / "CMakeLists.txt").write_text(f"""cmake_minimum_required(VERSION 3.20)
project(example C CXX)
set(ARCH {M4})
separate_arguments(ARCH)
add_compile_options(${{ARCH}} -O2)
add_link_options(${{ARCH}} --specs=rdimon.specs -T {sup['ld']} -Wl,--gc-sections)
set(TFLM_DIR {lib.root})
set(TFLM_LIBRARY {lib.library})
include({bundle}/tflm_bundle.cmake)
add_library(m4_startup OBJECT {sup['startup']} {sup['system']})
separate_arguments(C_INCLUDES UNIX_COMMAND "{sup['c_includes']}")
target_compile_options(m4_startup PRIVATE ${{C_INCLUDES}})
add_executable(example ${{{prefix}_EXAMPLE}} {sup['log']} $<TARGET_OBJECTS:m4_startup>)
target_compile_options(example PRIVATE -Wall -Wextra -Werror -Wno-unused-parameter)
target_link_libraries(example PRIVATE {target} m)
""")
    build = work / "build"
    cfg = subprocess.run(
        ["cmake", "-S", str(work), "-B", str(build), "-DCMAKE_SYSTEM_NAME=Generic",
         "-DCMAKE_C_COMPILER=arm-none-eabi-gcc", "-DCMAKE_CXX_COMPILER=arm-none-eabi-g++",
         "-DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY"], capture_output=True, text=True)
    assert cfg.returncode == 0, (cfg.stdout + cfg.stderr)[-3000:]
    proc = subprocess.run(["cmake", "--build", str(build), "-j2"], capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return build / "example"


def _run_in_qemu(elf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial",
         "none", "-semihosting", "-kernel", str(elf)], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("name,tool,variant", [
    ("hello_world_int8", "make", "cm4_cmsis_nn"),
    ("micro_speech_quantized", "cmake", "cm4_cmsis_nn"),
    ("trained_lstm_int8", "make", "cm4_cmsis_nn"),
    # stateful (a resource variable summing its inputs): passes only with Reset() between
    # vectors (CMSIS-NN's LSTM restarts from zero state on every invoke, so it cannot tell)
    ("accumulator", "make", "cm4_cmsis_nn"),
])
def test_main_example_runs_against_tflm(name: str, tool: str, variant: str,
                                        tmp_path: Path) -> None:
    """Issue 17: the bundle's own example, built through its own fragments, checks its test
    vectors on a Cortex-M4 (exit status 0 and the count it prints)."""
    from edgeq.toolchain.tflm_library import tflm_library

    lib = tflm_library(variant)  # built once per machine (minutes), then cached
    if name == "accumulator":
        from helpers_stateful import accumulator_tflite

        model = tmp_path / "accumulator.tflite"
        model.write_bytes(accumulator_tflite())
    else:
        model = shared_model(name)
    plan, files = generate_tflm_bundle(model)
    bundle = write_bundle(files, tmp_path / "bundle")
    work = tmp_path / "work"
    work.mkdir()
    prefix = plan.namespace.upper()
    if tool == "make":
        elf = _build_with_make(bundle, lib, work, prefix)
    else:
        elf = _build_with_cmake(bundle, lib, work, prefix, f"{plan.namespace}_bundle")
    run = _run_in_qemu(elf)
    text = run.stdout + run.stderr
    assert f"0 of {plan.num_vectors} test vectors differ" in text, text
    assert run.returncode == 0, text
    used = re.search(r"arena used: (\d+) of (\d+) bytes", text)
    assert used and 0 < int(used.group(1)) <= int(used.group(2)) == plan.arena_bytes


def test_bundle_refuses_to_compile_without_static_memory(tmp_path: Path) -> None:
    """The #error guard: without -DTF_LITE_STATIC_MEMORY the bundle stops compiling (the
    guard comes before any TFLM include, so no TFLM tree is needed to see it)."""
    _, files = generate_tflm_bundle(shared_model("hello_world_int8"))
    src = write_bundle(files, tmp_path)
    for unit in ("main_example.cc", "model_ops.h"):
        proc = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-x", "c++", unit],
                              cwd=src, capture_output=True, text=True)
        assert proc.returncode != 0
        assert "compile with -DTF_LITE_STATIC_MEMORY" in proc.stderr, proc.stderr


def test_readme_and_fragments_state_what_must_match() -> None:
    plan, files = generate_tflm_bundle(shared_model("hello_world_int8"), name="hw")
    readme = files["README.md"]
    assert "measured on a 64-bit host" in readme
    assert f"{plan.arena_bytes} bytes" in readme and f"({plan.arena_measured} bytes" in readme
    mk, cm = files["tflm_bundle.mk"], files["tflm_bundle.cmake"]
    assert "HW_MODEL_CXXFLAGS := -std=c++17 -fno-rtti -fno-exceptions -fno-threadsafe-statics " \
           "-DTF_LITE_STATIC_MEMORY $(HW_MODEL_INCLUDES)" in mk
    assert "set(HW_MODEL_DEFINITIONS TF_LITE_STATIC_MEMORY)" in cm
    assert "add_library(hw_model_bundle STATIC ${HW_MODEL_SOURCES})" in cm
    assert "interpreter.Reset()" in files["main_example.cc"]


def test_plan_reads_model_once_more() -> None:
    """The plan's I/O description equals a fresh read of its own bytes."""
    path = shared_model("micro_speech_quantized")
    plan, _ = generate_tflm_bundle(path)
    info = read_tflite_bytes(plan.model_bytes)
    assert [io.shape for io in plan.inputs] == [t.shape for t in info.input_tensors]
    assert plan.vector_inputs[0].shape == (3, 1960)
    assert (plan.vector_inputs[0][0] == -128).all()  # vector 0: input zero point
