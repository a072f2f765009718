"""Firmware builds with arm-none-eabi-gcc for every board; size report; refusals."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from helpers_device import ECHO_MODEL, ECHO_RUNTIME, build_echo

from edgeq.errors import BuildError
from edgeq.toolchain.boards import list_boards, resolve_target
from edgeq.toolchain.compiler import build_firmware, find_tool, resolve_optimize


@pytest.mark.parametrize("board", [b.name for b in list_boards()])
def test_echo_firmware_builds_for_every_board(tmp_path, board):
    fw = build_echo(board, tmp_path / "fw")
    for f in (fw.elf, fw.bin, fw.hex):
        assert f.is_file() and f.stat().st_size > 0
    size = fw.size
    assert size.flash == size.text + size.rodata + size.data
    assert size.ram == size.data + size.bss + size.stack
    b = resolve_target(board=board)
    assert size.stack == b.stack_bytes and size.flash_capacity == b.flash.length
    assert size.bss >= 128  # the echo model's arena lives in .bss
    assert 0 < size.flash < 16 * 1024
    # the vector table sits at the start of flash: initial SP inside RAM, reset vector in flash
    words = fw.bin.read_bytes()[:8]
    sp, reset = int.from_bytes(words[:4], "little"), int.from_bytes(words[4:], "little")
    assert b.ram.origin < sp <= b.ram.origin + b.ram.length
    assert b.flash.origin <= reset < b.flash.origin + b.flash.length and reset & 1


def test_cpu_flags_follow_the_board(tmp_path):
    fw = build_echo("mps2-an500", tmp_path / "m7")
    log = (fw.out_dir / "build.log").read_text()
    assert "-mcpu=cortex-m7" in log and "-mfpu=fpv5-d16" in log and "-mfloat-abi=hard" in log
    assert "-O2" in log and "-Werror" in log
    fw = build_echo("mps2-an385", tmp_path / "m3")
    log = (fw.out_dir / "build.log").read_text()
    assert "-mcpu=cortex-m3" in log and "-mfloat-abi=soft" in log and "-mfpu" not in log
    attrs = subprocess.run([find_tool("readelf"), "-A", str(fw.elf)], capture_output=True,
                           text=True).stdout
    assert "Cortex-M3" in attrs or "v7" in attrs


def test_optimize_mode_sets_flag_and_runtime_define(tmp_path):
    fw = build_echo("mps2-an386", tmp_path / "size", optimize="size")
    log = (fw.out_dir / "build.log").read_text()
    assert " -Os -fno-code-hoisting " in log and "-DEDGEQ_RT_SIZE" in log and " -O2 " not in log
    assert (fw.optimize, fw.opt) == ("size", "-Os -fno-code-hoisting")
    fw = build_echo("mps2-an386", tmp_path / "size_o3", optimize="size", opt="-O3")
    log = (fw.out_dir / "build.log").read_text()
    assert " -O3 " in log and "-DEDGEQ_RT_SIZE" in log and " -Os " not in log
    assert "-fno-code-hoisting" not in log  # --opt replaces all of the mode's flags
    fw = build_echo("mps2-an386", tmp_path / "speed")
    log = (fw.out_dir / "build.log").read_text()
    assert " -O2 " in log and "EDGEQ_RT_SIZE" not in log and fw.optimize == "speed"


def test_optimize_mode_and_flag_refusals():
    assert resolve_optimize("speed", None) == (("-O2",), ())
    assert resolve_optimize("size", "-Oz") == (("-Oz",), ("EDGEQ_RT_SIZE",))
    with pytest.raises(BuildError, match="unknown optimization mode 'tiny'; use one of speed, "
                                         "size"):
        resolve_optimize("tiny", None)
    for bad in ("-O9", "O2", "-O2 -flto", "-march=native"):
        with pytest.raises(BuildError, match="not a gcc optimization flag"):
            resolve_optimize("speed", bad)


def test_missing_cross_compiler_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BuildError, match="arm-none-eabi-gcc not found.*apt-get install "
                                         "gcc-arm-none-eabi"):
        build_echo("mps2-an386", tmp_path / "fw")
    assert not (tmp_path / "fw").exists()


def _echo_with_arena(tmp_path, arena: int):
    model = tmp_path / "model"
    shutil.copytree(ECHO_MODEL, model, ignore=shutil.ignore_patterns("runtime"))
    h = model / "model.h"
    h.write_text(h.read_text().replace("ARENA_BYTES 128", f"ARENA_BYTES {arena}"))
    return model


def test_model_too_large_for_ram_is_refused_up_front_with_numbers(tmp_path):
    model = _echo_with_arena(tmp_path, 200 * 1024)
    with pytest.raises(BuildError, match=r"does not fit netduinoplus2 RAM: arena 204800 .*"
                                         r"> 131072 bytes \(over by \d+\)"):
        build_firmware(resolve_target(board="netduinoplus2"), model, tmp_path / "fw",
                       runtime_dir=ECHO_RUNTIME, input_bytes=64)
    assert not (tmp_path / "fw" / "fw.elf").exists()


def test_link_overflow_reports_measured_bytes(tmp_path):
    # passes the up-front arena check but the linked image (plus .bss) overflows RAM
    model = _echo_with_arena(tmp_path, 122000)
    with pytest.raises(BuildError, match=r"RAM needs \d+ bytes, netduinoplus2 has 131072 "
                                         r"\(over by \d+\)"):
        build_firmware(resolve_target(board="netduinoplus2"), model, tmp_path / "fw",
                       runtime_dir=ECHO_RUNTIME, input_bytes=64)
    assert not (tmp_path / "fw" / "fw.elf").exists()


def test_compile_error_is_one_line_and_leaves_no_firmware(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(ECHO_MODEL, model, ignore=shutil.ignore_patterns("runtime"))
    (model / "model.c").write_text((model / "model.c").read_text() + "\nstatic int unused;\n")
    with pytest.raises(BuildError, match=r"gcc failed on model.c: .*unused") as err:
        build_firmware(resolve_target(board="mps2-an386"), model, tmp_path / "fw",
                       runtime_dir=ECHO_RUNTIME)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "fw" / "fw.elf").exists() and (tmp_path / "fw" / "build.log").exists()


def test_missing_model_header(tmp_path):
    with pytest.raises(BuildError, match="model.h not found; generate the model first"):
        build_firmware(resolve_target(board="mps2-an386"), tmp_path, tmp_path / "fw",
                       runtime_dir=ECHO_RUNTIME)
