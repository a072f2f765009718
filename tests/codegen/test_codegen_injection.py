"""Untrusted text (tensor names, model and file names, labels) cannot put code into generated C.

The attacks reported in issue 14 are reproduced first: a tensor name whose carriage return
follows a backslash splices ``*`` and ``/`` into ``*/`` and ends the comment early; a file name
with a CR or LF ends the ``//`` banner line; ``??/`` is a backslash under ``-trigraphs``. Then
names drawn by hypothesis go through both generators and a real compiler. Two independent
oracles judge the result: the set of global symbols ``nm`` finds in the objects must be exactly
the generated API, and a program compiled against the headers must print back every name byte
for byte.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers_elementwise import T, build_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeq.codegen.edgeq_rt import compile_model, runtime_dir
from edgeq.codegen.tflm_bundle import bundle_names, plan_tflm_bundle, render_tflm_bundle
from edgeq.tflite import load_model_t, serialize_model_t

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("g++") is None or shutil.which("nm") is None,
    reason="needs host gcc, g++ and nm",
)

C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]  # ISO C99: trigraphs on
CXX_FLAGS = ["-std=c++11", "-trigraphs", "-Wall", "-Wextra", "-Werror"]

EDGEQ_RT_GLOBALS = {
    "edgeq_model_input_info", "edgeq_model_output_info", "edgeq_model_layer_names",
    "edgeq_model_layer_macs", "edgeq_model_input", "edgeq_model_output", "edgeq_model_invoke",
}

# A constant tensor's name goes into a /* */ comment in model.c; the splice makes "*/".
SPLICE_CR = "w *\\\r/ int edgeq_injected = 1; /* "
SPLICE_LF = "w *\\\n/ int edgeq_injected = 1; /* "
SPLICE_CRLF = "w *\\\r\n/ int edgeq_injected = 1; /* "
# A file name reaches the // banner of every TFLM bundle file.
FILE_CR = "m\rint edgeq_injected = 1;\r//.tflite"
FILE_LF = "m\nint edgeq_injected = 1;\n//.tflite"
FILE_TRIGRAPH = "m??/\nint edgeq_injected = 1;//.tflite"

# Characters that have a meaning inside C comments, strings or the preprocessor, mixed with
# ordinary ones; plus any printable/non-ASCII text (no NUL: a C string stops there).
_DANGEROUS = [*"\\\r\n\t\"'?/*#%:<>=!-_ aZ09", "??/", "??=", "??'", "*/", "/*", "\\\r",
              "\\\n", "\r\n", "\rint x;", "\nint y;"]
NAMES = st.one_of(
    st.lists(st.sampled_from(_DANGEROUS), min_size=2, max_size=12).map("".join),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=16),
)


def _add_model() -> bytes:
    """One int8 ADD with a constant second operand (so a tensor name lands in a comment)."""
    const = T((1, 4), "int8", 0.05, 0, data=np.array([[1, -2, 3, -4]], dtype=np.int8))
    return build_model("ADD", [T((1, 4), "int8", 0.05, 0), const], [T((1, 4), "int8", 0.1, 0)])


def _renamed(data: bytes, names: dict[int, str]) -> bytes:
    model_t = load_model_t(data)
    for index, name in names.items():
        model_t.subgraphs[0].tensors[index].name = name
    return serialize_model_t(model_t)


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    return proc.stdout


def _global_symbols(obj: Path, demangle: bool = False) -> set[str]:
    out = _run(["nm", "--defined-only", "-g", *(["-C"] if demangle else []), str(obj)], obj.parent)
    return {line.split(" ", 2)[2] for line in out.splitlines() if line.strip()}


def _hex_bytes(text: str) -> str:
    return text.encode("utf-8").hex()


# --- edgeq-rt ----------------------------------------------------------------------------------

_RT_MAIN = r"""#include <stdio.h>
#include "model.h"
int main(void)
{
    size_t i;
    for (i = 0; i + 1 < sizeof(EDGEQ_MODEL_NAME); ++i) {
        printf("%02x", (unsigned)(unsigned char)EDGEQ_MODEL_NAME[i]);
    }
    printf("\n");
    return 0;
}
"""


def _edgeq_rt_build(work: Path, data: bytes, name: str) -> tuple[set[str], str]:
    """Generate, compile model.c to an object and a name-printing program; (globals, name hex)."""
    work.mkdir(parents=True, exist_ok=True)
    _, model_c, model_h, _ = compile_model(data, name)
    (work / "model.c").write_text(model_c, encoding="utf-8")
    (work / "model.h").write_text(model_h, encoding="utf-8")
    (work / "main.c").write_text(_RT_MAIN, encoding="utf-8")
    inc = ["-I", str(work), "-I", str(runtime_dir() / "include")]
    _run(["gcc", *C_FLAGS, *inc, "-c", "model.c", "-o", "model.o"], work)
    _run(["gcc", *C_FLAGS, *inc, "main.c", "-o", "main"], work)
    return _global_symbols(work / "model.o"), _run([str(work / "main")], work).strip()


@pytest.mark.parametrize("tensor_name", [SPLICE_CR, SPLICE_LF, SPLICE_CRLF, "w\rint edgeq_injected;"],
                         ids=["cr-splice", "lf-splice", "crlf-splice", "cr"])
def test_tensor_name_cannot_inject_into_edgeq_rt(tensor_name: str, tmp_path: Path) -> None:
    data = _renamed(_add_model(), {1: tensor_name})
    symbols, name_hex = _edgeq_rt_build(tmp_path, data, "m")
    assert symbols == EDGEQ_RT_GLOBALS
    assert name_hex == _hex_bytes("m")


@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tensor_names=st.lists(NAMES, min_size=3, max_size=3), model_name=NAMES)
def test_any_names_through_edgeq_rt_compile_to_exactly_the_api(
    tensor_names: list[str], model_name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = _renamed(_add_model(), dict(enumerate(tensor_names)))
    work = tmp_path_factory.mktemp("rt")
    symbols, name_hex = _edgeq_rt_build(work, data, model_name)
    assert symbols == EDGEQ_RT_GLOBALS
    assert name_hex == _hex_bytes(model_name)


# --- TFLM bundle -------------------------------------------------------------------------------

_BUNDLE_MAIN = r"""#include <cstdio>
#include <cstring>
#include "model_config.h"
#include "model_data.h"
#include "test_vectors.h"

static void hex(const char* s) {
  for (std::size_t i = 0; i < std::strlen(s); ++i) std::printf("%02x", (unsigned)(unsigned char)s[i]);
  std::printf("\n");
}

int main() {
  hex(NS::kModelName);
  for (int i = 0; i < NS::kNumInputs; ++i) hex(NS::kInputs[i].name);
  for (int i = 0; i < NS::kNumOutputs; ++i) hex(NS::kOutputs[i].name);
  for (int i = 0; i < NS::kNumLabels; ++i) hex(NS::kLabels[i]);
  std::printf("%u\n", (unsigned)ARRAY_size);
  return 0;
}
"""


@pytest.fixture(scope="module")
def bundle_plan():
    """Measured once (TFLM arena bisection and reference outputs); names are swapped per case."""
    return plan_tflm_bundle(_add_model(), name="m", labels=["a", "b", "c", "d"], num_vectors=1)


def _bundle_build(work: Path, plan) -> tuple[set[str], list[str]]:
    """Compile the bundle files that need no TFLM headers; (global symbols, printed names)."""
    work.mkdir(parents=True, exist_ok=True)
    files = render_tflm_bundle(plan)
    for fname in ("model_data.h", "model_data.cc", "model_config.h", "test_vectors.h",
                  "test_vectors.cc"):
        (work / fname).write_text(files[fname], encoding="utf-8")
    main = _BUNDLE_MAIN.replace("NS::", f"{plan.namespace}::").replace("ARRAY_size",
                                                                        f"{plan.array_name}_size")
    (work / "main.cc").write_text(main, encoding="utf-8")
    symbols: set[str] = set()
    for unit in ("model_data", "test_vectors", "main"):
        _run(["g++", *CXX_FLAGS, "-I", str(work), "-c", f"{unit}.cc", "-o", f"{unit}.o"], work)
        if unit != "main":
            symbols |= _global_symbols(work / f"{unit}.o", demangle=True)
    _run(["g++", "main.o", "model_data.o", "test_vectors.o", "-o", "main"], work)
    return symbols, _run([str(work / "main")], work).split()


def _bundle_globals(plan) -> set[str]:
    return {plan.array_name, f"{plan.namespace}::kTestInput0", f"{plan.namespace}::kTestOutput0"}


@pytest.mark.parametrize("file_name", [FILE_CR, FILE_LF, FILE_TRIGRAPH], ids=["cr", "lf", "trigraph"])
def test_file_name_cannot_inject_into_tflm_bundle(file_name: str, bundle_plan,
                                                  tmp_path: Path) -> None:
    plan = replace(bundle_plan, source_name=file_name)
    symbols, printed = _bundle_build(tmp_path, plan)
    assert symbols == _bundle_globals(plan)
    assert printed[0] == _hex_bytes("m")


def test_trigraph_in_tensor_name_stays_in_the_string(bundle_plan, tmp_path: Path) -> None:
    name = 'x??/", 0}}; int edgeq_injected = 1; //'
    plan = replace(bundle_plan, inputs=(replace(bundle_plan.inputs[0], name=name),))
    symbols, printed = _bundle_build(tmp_path, plan)
    assert symbols == _bundle_globals(plan)
    assert printed[1] == _hex_bytes(name)


@settings(max_examples=10, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(model_name=NAMES, file_name=NAMES, io_names=st.lists(NAMES, min_size=2, max_size=2),
       labels=st.lists(NAMES, min_size=4, max_size=4))
def test_any_names_through_tflm_bundle_compile_and_read_back(
    model_name: str, file_name: str, io_names: list[str], labels: list[str], bundle_plan,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    ident, array = bundle_names(model_name)
    plan = replace(bundle_plan, model_name=ident, array_name=array, source_name=file_name,
                   inputs=(replace(bundle_plan.inputs[0], name=io_names[0]),),
                   outputs=(replace(bundle_plan.outputs[0], name=io_names[1]),),
                   labels=tuple(labels))
    symbols, printed = _bundle_build(tmp_path_factory.mktemp("tflm"), plan)
    assert symbols == _bundle_globals(plan)
    # an empty name prints an empty line, which split() drops: compare the non-empty ones
    want = [_hex_bytes(s) for s in (ident, *io_names, *labels) if s]
    assert printed[:-1] == want
    assert printed[-1] == str(len(plan.model_bytes))


def test_refusal_naming_a_hostile_tensor_stays_one_line() -> None:
    from edgeq.codegen.edgeq_rt import compile_model as compile_rt
    from edgeq.errors import CodegenError

    data = build_model("ADD", [T((1, 4), "int8", None), T((1, 4))], [T((1, 4))])
    with pytest.raises(CodegenError) as err:
        compile_rt(_renamed(data, {0: "x\r\ny"}), "m")
    assert "\n" not in str(err.value) and "\r" not in str(err.value)
    assert "'x\\r\\ny'" in str(err.value)
