"""Kernels are found by name: ``kernels/eq_<op>_<dtype>[_<variant>].c`` defines that function.

Checked from three sides: every kernel file (its compiled object's global symbols, read with
``nm``), every kernel the runtime headers declare, and every kernel name the lowerings in
``edgeq/codegen/ops_*.py`` can produce.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeq.codegen.kernels import kernel_source, kernel_sources, parse_kernel_name, runtime_dir
from edgeq.errors import CodegenError

RUNTIME = runtime_dir()
CODEGEN = Path(__file__).resolve().parents[2] / "edgeq" / "codegen"
_DECL = re.compile(r"^\s*eq_status\s+(eq_\w+)\s*\(", re.MULTILINE)


def test_parse_kernel_name() -> None:
    k = parse_kernel_name("eq_depthwise_conv2d_s8_sparse_lut")
    assert (k.op, k.dtype, k.variant) == ("depthwise_conv2d", "s8", "sparse_lut")
    k = parse_kernel_name("eq_softmax_s8_s16")
    assert (k.op, k.dtype, k.variant) == ("softmax", "s8", "s16")
    assert parse_kernel_name("eq_pad_x").function == "eq_pad_x"
    for bad in ("eq_relu", "eq_quantize_int", "relu_s8", "eq_Relu_s8", "eq__s8", "eq_s8_s8"):
        with pytest.raises(CodegenError):
            parse_kernel_name(bad)
    with pytest.raises(CodegenError, match="missing"):
        kernel_source("eq_nonexistent_s8")


def test_every_kernel_file_is_named_by_the_rule() -> None:
    files = sorted((RUNTIME / "kernels").glob("*.c"))
    assert files == kernel_sources()
    assert len(files) >= 40
    for src in files:
        assert parse_kernel_name(src.stem).function == src.stem


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("nm") is None,
                    reason="needs host gcc and nm")
def test_every_kernel_file_defines_exactly_its_function(tmp_path: Path) -> None:
    """The object's global functions: the kernel itself, plus helpers it prefixes
    (``eq_transpose_conv_s8_get_buffer_size``); nothing that belongs to another kernel."""
    for src in kernel_sources():
        obj = tmp_path / f"{src.stem}.o"
        subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-I",
                        str(RUNTIME / "include"), "-c", str(src), "-o", str(obj)], check=True)
        out = subprocess.run(["nm", "--defined-only", "-g", str(obj)], capture_output=True,
                             text=True, check=True).stdout
        symbols = {line.split()[-1] for line in out.splitlines() if line.strip()}
        assert src.stem in symbols, f"{src.name} does not define {src.stem}"
        strays = {s for s in symbols - {src.stem} if not s.startswith(src.stem + "_")}
        assert not strays, f"{src.name} also defines {sorted(strays)}"
        text = src.read_text()
        assert set(_DECL.findall(text)) <= {src.stem}


def test_every_declared_kernel_has_its_file() -> None:
    declared = set()
    for hdr in (RUNTIME / "include").glob("*.h"):
        declared |= set(_DECL.findall(hdr.read_text()))
    assert len(declared) >= 40
    for fn in sorted(declared):
        assert kernel_source(fn).stem == fn
    assert {p.stem for p in kernel_sources()} <= declared  # no kernel without a prototype


def _lowering_kernel_names() -> list[tuple[str, str]]:
    """(module, name or regex) for every ``eq_*`` kernel name written in a lowering module:
    string constants, and f-strings with each placeholder as ``[a-z0-9]+``. Names ending in
    ``_params`` are struct types; a trailing ``_`` marks a prefix used for matching."""
    found = []
    for path in sorted(CODEGEN.glob("ops_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                pattern = re.escape(node.value)
                text = node.value
            elif isinstance(node, ast.JoinedStr):
                parts = [(re.escape(v.value), v.value) if isinstance(v, ast.Constant)
                         else ("[a-z0-9]+", "{}") for v in node.values]
                pattern = "".join(p for p, _ in parts)
                text = "".join(t for _, t in parts)
            else:
                continue
            if (re.fullmatch(r"eq_[a-z0-9_{}]+", text) and not text.endswith("_params")
                    and not text.endswith("_")):
                found.append((path.name, pattern))
    return found


def test_every_kernel_a_lowering_names_exists() -> None:
    names = _lowering_kernel_names()
    assert len(names) >= 20
    stems = [p.stem for p in kernel_sources()]
    for module, pattern in names:
        matches = [s for s in stems if re.fullmatch(pattern, s)]
        assert matches, f"{module}: no kernel file matches {pattern}"
        for s in matches:
            parse_kernel_name(s)
