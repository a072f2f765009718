"""edgeq.codegen.cwriter: the rules each kind of C token obeys, for any input text.

Compiling what the writer produces is tested in test_codegen_injection.py; here the rules are
checked directly (fast, many examples) and the user-facing refusals end to end.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers_elementwise import T, build_model
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeq.codegen import cwriter
from edgeq.codegen.tflm_bundle import bundle_names
from edgeq.errors import CodegenError

REPO = Path(__file__).resolve().parents[2]
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
TRICKY = st.lists(st.sampled_from(list("\\\r\n?*/\"' aZ0_") + ["??/", "*/", "/*"]),
                  max_size=20).map("".join)
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@settings(max_examples=300, database=None)
@given(st.one_of(ANY_TEXT, TRICKY))
def test_comment_text_keeps_only_harmless_characters(text: str) -> None:
    safe = cwriter.comment_text(text)
    assert all(" " <= ch <= "~" for ch in safe)
    for bad in ("\\", "?", "*/", "/*"):
        assert bad not in safe
    assert len(safe) <= 160
    block = cwriter.block_comment(text, text)
    assert block.startswith("/* ") and block.endswith(" */")
    assert block.count("*/") == 1 and block.count("/*") == 1
    assert "\r" not in cwriter.line_comment(text) and "\n" not in cwriter.line_comment(text)


def test_comment_text_keeps_ordinary_names_readable() -> None:
    assert cwriter.comment_text("sequential/dense_1/MatMul;bias") == "sequential/dense_1/MatMul;bias"
    assert cwriter.comment_text("a*/b/*c") == "a_/b/_c"
    assert cwriter.comment_text("x\\\r/y??/") == "x__/y__/"


@settings(max_examples=300, database=None)
@given(st.one_of(ANY_TEXT, TRICKY))
def test_string_literal_is_plain_ascii_without_trigraphs(text: str) -> None:
    lit = cwriter.string_literal(text)
    assert lit[0] == lit[-1] == '"'
    assert all(" " <= ch <= "~" for ch in lit)
    assert "??" not in lit
    body = lit[1:-1]
    # every backslash starts an escape; every quote inside is escaped
    escapes = re.findall(r'\\(?:[0-7]{3}|[\\"?nrt])|(\\)|(")', body)
    assert not any(lone_backslash or quote for lone_backslash, quote in escapes)


def test_string_literal_escapes() -> None:
    assert cwriter.string_literal('a"b\\c') == r'"a\"b\\c"'
    assert cwriter.string_literal("??/") == r'"\?\?/"'
    assert cwriter.string_literal("\r\n\t") == r'"\r\n\t"'
    assert cwriter.string_literal("é") == r'"\303\251"'
    # octal escapes are always 3 digits: a following digit stays a character of its own
    assert cwriter.string_literal("\x001") == r'"\0001"'
    assert cwriter.string_literal("\x7f7") == r'"\1777"'


@settings(max_examples=300, database=None)
@given(st.one_of(ANY_TEXT, TRICKY, st.sampled_from(sorted(cwriter.KEYWORDS | cwriter.RESERVED))))
def test_identifier_mapping_is_strict(text: str) -> None:
    ident = cwriter.identifier(text)
    assert IDENT.fullmatch(ident)
    assert not cwriter.is_reserved(ident)
    assert ident not in cwriter.KEYWORDS
    assert "__" not in ident and not ident.startswith("_")
    assert len(ident) <= 48
    assert cwriter.identifier(text) == ident
    cwriter.check_identifier(ident, "name")  # what the mapping gives passes the strict check


def test_identifier_examples() -> None:
    assert cwriter.identifier("my-model v2") == "my_model_v2"
    assert cwriter.identifier("int") == "int_m"
    assert cwriter.identifier("9lives") == "m_9lives"
    assert cwriter.identifier("__x__y") == "x_y"
    assert cwriter.identifier("") == "model"
    assert cwriter.identifier("ünïcode") == "n_code"
    long_a, long_b = "a" * 60 + "1", "a" * 60 + "2"
    assert cwriter.identifier(long_a) != cwriter.identifier(long_b)


@pytest.mark.parametrize("name", ["int", "class", "and", "main", "tflite", "NULL", "_X", "__y",
                                  "a__b", "_lower", "9a", "a-b", "a b", "", "g\nx"])
def test_check_identifier_refuses(name: str) -> None:
    with pytest.raises(CodegenError) as err:
        cwriter.check_identifier(name, "array name")
    assert "\n" not in str(err.value)


def test_check_identifier_accepts_and_checks_taken() -> None:
    assert cwriter.check_identifier("g_model", "array name") == "g_model"
    with pytest.raises(CodegenError, match="already uses"):
        cwriter.check_identifier("g_tensor_arena", "array name", {"g_tensor_arena"})


def test_bundle_names_refuse_collisions() -> None:
    assert bundle_names("foo") == ("foo", "foo_model_data")
    assert bundle_names("int") == ("int_m", "int_m_model_data")
    with pytest.raises(CodegenError, match="'foo_model'"):
        bundle_names("foo", "foo_model")
    with pytest.raises(CodegenError, match="'foo_model'"):  # the mapped name collides too
        bundle_names("foo!", "foo_model")
    for bad in ("int", "g_tensor_arena", "Fail", "x-y"):
        with pytest.raises(CodegenError):
            bundle_names("foo", bad)


def test_literals() -> None:
    assert cwriter.float_literal(0.1) == "0.100000001f"
    assert cwriter.float_literal(3.0) == "3.0f"
    assert float(cwriter.float_literal(1e-30)[:-1]) == pytest.approx(1e-30)
    with pytest.raises(CodegenError, match="non-finite"):
        cwriter.float_literal(float("nan"))
    assert cwriter.float_literal(float("-inf"), nonfinite="macro") == "-INFINITY"
    assert cwriter.int_literal(-(1 << 31)) == "(-2147483647 - 1)"
    assert cwriter.int_literal(-(1 << 63), "int64_t") == "(INT64_C(-9223372036854775807) - 1)"
    assert cwriter.int_literal(4000000000, "uint32_t") == "4000000000u"
    items = cwriter.array_items(np.array([True, False]), bool_as="bool")
    assert items == "    true, false,"


# --- the CLI refuses unusable names with one line and writes nothing --------------------------


@pytest.mark.parametrize("args, text", [
    (["--name", "foo", "--array-name", "foo_model"], "'foo_model'"),
    (["--array-name", "int"], "'int'"),
    (["--array-name", "a\nb"], "not a C identifier"),
])
def test_cli_refuses_array_name(args: list[str], text: str, tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(build_model("ADD", [T((1, 4)), T((1, 4))], [T((1, 4))]))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "edgeq.cli", "codegen", str(model), "-o",
                           str(out), *args], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeq: error: "), proc.stderr
    assert text in lines[0]
    assert not out.exists()
