"""The RAM/flash fit check and the size report, against the linker's own answer.

Oracles: the linked ELF read by ``arm-none-eabi-size`` (Berkeley totals, which sum the sections
their own way) and ``arm-none-eabi-nm`` (the sizes of the arena and staging-buffer symbols), not
the report's own formula.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from helpers_device import ECHO_MODEL, ECHO_RUNTIME, build_echo

from edgeq.errors import BuildError
from edgeq.toolchain.boards import resolve_target
from edgeq.toolchain.compiler import build_firmware, find_tool
from edgeq.toolchain.fit import check_fit


def _berkeley(elf) -> dict[str, int]:
    out = subprocess.run([find_tool("size"), "-B", str(elf)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def _nm_sizes(elf) -> dict[str, tuple[str, int]]:
    out = subprocess.run([find_tool("nm"), "-S", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            syms[parts[3]] = (parts[2], int(parts[1], 16))
    return syms


def test_size_report_matches_arm_none_eabi_size_and_nm(tmp_path):
    fw = build_echo("mps2-an386", tmp_path / "fw", input_bytes=64)
    berkeley = _berkeley(fw.elf)
    r = fw.size
    # Berkeley "text" is every read-only allocated section (.text + .rodata + ...), "bss" every
    # zero-initialized one (.bss + .stack)
    assert r.text + r.rodata == berkeley["text"]
    assert r.flash == berkeley["text"] + berkeley["data"]
    assert r.ram == berkeley["data"] + berkeley["bss"]
    assert r.stack == resolve_target(board="mps2-an386").stack_bytes
    syms = _nm_sizes(fw.elf)
    # read-only data symbols live in .rodata (string tables, lookup tables)
    ro = sum(size for kind, size in syms.values() if kind in "rR")
    assert 0 < ro <= r.rodata
    # the arena and the app state holding the input staging buffer are both in .bss
    assert syms["g_arena"] == ("b", 128)
    assert syms["g_app"][1] >= 64
    assert r.bss >= syms["g_arena"][1] + syms["g_app"][1]


def test_size_report_counts_model_weights_in_rodata(tmp_path):
    """A model with 24 KB of const weights: .rodata grows by exactly what nm says they take."""
    model = tmp_path / "model"
    shutil.copytree(ECHO_MODEL, model, ignore=shutil.ignore_patterns("runtime"))
    c = model / "model.c"
    src = c.read_text()
    src = src.replace("static int32_t g_arena", "const int8_t eq_test_weights[24576] = {1, 2, 3};"
                      "\nstatic int32_t g_arena", 1)
    # referenced from invoke, so --gc-sections keeps it
    src = src.replace("int32_t acc[10];", "int32_t acc[10];\n    volatile int8_t w = "
                      "eq_test_weights[x[0] & 0x3fff];\n    (void)w;", 1)
    c.write_text(src)
    base = build_echo("mps2-an386", tmp_path / "base", input_bytes=64)
    fw = build_firmware(resolve_target(board="mps2-an386"), model, tmp_path / "fw",
                        runtime_dir=ECHO_RUNTIME, input_bytes=64)
    syms = _nm_sizes(fw.elf)
    assert syms["eq_test_weights"] == ("R", 24576)
    assert fw.size.rodata >= base.size.rodata + 24576
    assert fw.size.text + fw.size.rodata == _berkeley(fw.elf)["text"]


def test_fit_check_counts_arena_input_staging_and_stack():
    b = resolve_target(board="netduinoplus2")
    room = b.ram.length - b.stack_bytes
    check_fit(b, arena_bytes=room - 1000, input_bytes=1000)  # exactly full: fits
    with pytest.raises(BuildError, match=rf"arena {room - 1000} \+ input 1001 \+ stack "
                                         rf"{b.stack_bytes} = {b.ram.length + 1} bytes > "
                                         rf"{b.ram.length} bytes \(over by 1\)"):
        check_fit(b, arena_bytes=room - 1000, input_bytes=1001)
    with pytest.raises(BuildError, match="over by 1") as ram:
        check_fit(b, arena_bytes=room + 1, input_bytes=0)
    check_fit(b, arena_bytes=10, input_bytes=10, weight_bytes=b.flash.length)
    with pytest.raises(BuildError, match=rf"weights need {b.flash.length + 1} bytes.*over by 1") \
            as flash:
        check_fit(b, arena_bytes=10, input_bytes=10, weight_bytes=b.flash.length + 1)
    # one line naming the problem and the fix
    for err in (ram, flash):
        assert str(err.value).endswith("; pick a larger board or a smaller model")
        assert "\n" not in str(err.value)


def _echo_with_arena(tmp_path, arena: int):
    model = tmp_path / "model"
    shutil.copytree(ECHO_MODEL, model, ignore=shutil.ignore_patterns("runtime"))
    h = model / "model.h"
    h.write_text(h.read_text().replace("ARENA_BYTES 128", f"ARENA_BYTES {arena}"))
    return model


def test_staging_buffer_that_overflows_ram_is_refused_before_linking(tmp_path):
    """Arena and stack alone fit the board; the input staging buffer pushes it over. The linked
    image would hold both (see g_arena / g_app above), so the up-front check must count it."""
    b = resolve_target(board="netduinoplus2")
    arena = 60_000
    staging = b.ram.length - b.stack_bytes - arena + 4096
    assert arena + b.stack_bytes < b.ram.length
    model = _echo_with_arena(tmp_path, arena)
    with pytest.raises(BuildError, match=rf"does not fit netduinoplus2 RAM: arena {arena} \+ "
                                         rf"input {staging} \+ stack"):
        build_firmware(b, model, tmp_path / "fw", runtime_dir=ECHO_RUNTIME, input_bytes=staging)
    assert not (tmp_path / "fw" / "fw.elf").exists()
    # the same model with a small staging buffer links, and the image holds the whole arena
    fw = build_firmware(b, model, tmp_path / "ok", runtime_dir=ECHO_RUNTIME, input_bytes=64)
    assert _nm_sizes(fw.elf)["g_arena"][1] == arena
    assert fw.size.ram <= b.ram.length
