"""`edgeq build / bench / run / flash` end to end through the CLI, and their one-line errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq.artifacts import BuildDir
from edgeq.cli import cli
from edgeq.oracles import run_tflm
from edgeq.quantize.numerics import quantized_test_inputs
from edgeq.toolchain.boards import board_dir


def _run(args, env=None):
    return CliRunner().invoke(cli, args, env=env)


def _one_line_error(res, text):
    assert res.exit_code == 1, res.output
    err = res.output.strip().splitlines()[-1]
    assert err.startswith("edgeq: error:") and text in err, res.output
    assert "Traceback" not in res.output


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """`edgeq build --target cortex-m4` on the default model (what `make run` does)."""
    out = tmp_path_factory.mktemp("cli_build") / "digits_cnn-mps2-an386"
    res = _run(["build", "--target", "cortex-m4", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    return out, report


@pytest.mark.slow
def test_build_reports_bit_exact_device_run(built):
    out, r = built
    assert r["board"] == "mps2-an386" and r["core"] == "cortex-m4"
    dev = r["device"]
    assert dev["validation"]["samples"] == 100 and dev["validation"]["bit_exact"]
    acc = r["accuracy"]
    assert acc["float"] > 0.9 and acc["int8_host"] > 0.9
    assert acc["int8_device"] == acc["int8_host_same_samples"]
    mem = r["memory"]
    assert mem["flash"] == mem["text"] + mem["rodata"] + mem["data"]
    assert mem["ram"] == mem["data"] + mem["bss"] + mem["stack"] and mem["bss"] >= mem["arena"]
    lat = dev["latency"]
    assert lat["unit"] == "instructions" and lat["median_ms"] is None
    assert lat["source"] == "QEMU plugin (exact)" and lat["runs"] == 100
    est = lat["estimate"]  # cycles >= instructions (no Cortex-M4 instruction takes < 1 cycle)
    assert est["estimate"] is True and est["cycles"] > lat["median"] and est["clock_hz"] == 25e6
    assert est["ms"] == pytest.approx(est["cycles"] / 25e3)
    assert dev["energy"]["estimate"] is True and dev["energy"]["microjoules"] > 0
    assert dev["energy"]["power_model_board"] == "nucleo-l4r5zi"
    assert "not mps2-an386" in dev["energy"]["note"]
    for name in ("model_int8.tflite", "edgeq_rt/model.c", "firmware/fw.elf", "firmware/fw.bin",
                 "firmware/fw.hex"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"quantize", "evaluate", "codegen", "build", "device"} <= set(manifest)


@pytest.mark.slow
def test_bench_per_layer_and_run_on_the_emulator(built, tmp_path):
    out, r = built
    res = _run(["bench", "--board", "mps2-an386", "--emulator", "--build-dir", str(out),
                "--runs", "4", "--per-layer", "--json"])
    assert res.exit_code == 0, res.output
    b = json.loads(res.output[res.output.index("{"):])
    assert b["latency"]["runs"] == 4 and b["latency"]["min"] == b["latency"]["max"]
    assert len(b["model_hash"]) == 16 and b["counter"] == "instructions"
    assert [x["op"] for x in b["layers"]][0] == "CONV_2D"
    assert sum(x["count"] for x in b["layers"]) <= b["latency"]["median"]
    assert b["transfer"]["bytes"] == 64 and b["transfer"]["bytes_per_s"] > 0  # 8x8x1 int8
    # exact plugin counts, not SysTick steps of 40; each within one tick of the firmware's own
    assert b["counts"][0] % 40 != 0 or b["counts"][0] != b["systick_counts"][0]
    for x in b["layers"]:
        assert abs(x["instructions"] - x["device_count"]) <= 80, x
    text = _run(["bench", "--board", "mps2-an386", "--emulator", "--build-dir", str(out),
                 "--runs", "2", "--per-layer", "--power-model", "nucleo-f446re"]).output
    assert "instr/MAC" in text and "est. cycles" in text and "estimate" in text
    assert "estimate for nucleo-f446re, not mps2-an386" in text
    assert "input transfer: 64 bytes in" in text

    x, _ = quantized_test_inputs(out / "model_int8.tflite", None, 1)
    np.save(tmp_path / "x.npy", x[0])
    res = _run(["run", str(tmp_path / "x.npy"), "--emulator", "--build-dir", str(out), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output[res.output.index("{"):])
    want = run_tflm(out / "model_int8.tflite", x)[0][0].reshape(-1)
    assert got["output"] == want.tolist() and got["argmax"] == int(np.argmax(want))
    # a float input is quantized with the device's input scale/zero point first
    from edgeq.tflite import read_tflite

    q = read_tflite(out / "model_int8.tflite").input_tensors[0].quant
    x_float = (x[0].astype(np.float32) - q.zero_point[0]) * q.scale[0]
    np.save(tmp_path / "xf.npy", x_float)
    res = _run(["run", str(tmp_path / "xf.npy"), "--emulator", "--build-dir", str(out), "--json"])
    assert json.loads(res.output[res.output.index("{"):])["output"] == want.tolist()


@pytest.mark.slow
def test_optimize_size_build_is_smaller_bit_exact_and_recorded(built, tmp_path):
    out, speed = built
    assert speed["firmware"]["optimize"] == "speed" and speed["firmware"]["opt"] == "-O2"
    model = out / "model_int8.tflite"
    res = _run(["build", str(model), "--target", "cortex-m4", "--data", "digits", "--samples",
                "10", "--optimize", "size", "-o", str(tmp_path / "size"), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output[res.output.index("{"):])
    assert r["device"]["validation"]["bit_exact"] and r["device"]["validation"]["samples"] == 10
    assert r["firmware"]["optimize"] == "size"
    assert r["firmware"]["opt"] == "-Os -fno-code-hoisting"
    manifest = json.loads((tmp_path / "size" / "manifest.json").read_text())
    assert manifest["build"]["firmware"]["optimize"] == "size"
    log = (tmp_path / "size" / "firmware" / "build.log").read_text()
    assert " -Os " in log and "-DEDGEQ_RT_SIZE" in log and " -O2 " not in log
    # the same model and board: the size build must need much less flash
    assert r["memory"]["flash"] < 0.7 * speed["memory"]["flash"]
    # per-layer profiling rebuilds the firmware in the build's mode
    res = _run(["bench", "--board", "mps2-an386", "--emulator", "--build-dir",
                str(tmp_path / "size"), "--runs", "1", "--per-layer", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{"):])["layers"]
    log = (BuildDir(tmp_path / "size").profile_firmware / "build.log").read_text()
    assert " -Os -fno-code-hoisting " in log and "-DEDGEQ_RT_SIZE" in log

    # --opt replaces the mode's flag, keeps its kernel paths; the report names both
    res = _run(["build", str(model), "--target", "cortex-m4", "--data", "digits", "--no-run",
                "--optimize", "size", "--opt", "-O2", "-o", str(tmp_path / "size_o2")])
    assert res.exit_code == 0, res.output
    assert "optimized for size (-O2)" in res.output
    log = (tmp_path / "size_o2" / "firmware" / "build.log").read_text()
    assert " -O2 " in log and "-DEDGEQ_RT_SIZE" in log and " -Os " not in log

    _one_line_error(_run(["build", str(model), "--target", "cortex-m4", "--no-run", "--opt",
                          "-O9", "-o", str(tmp_path / "bad")]), "not a gcc optimization flag")
    assert not (tmp_path / "bad").exists()
    _one_line_error(_run(["build", str(model), "--target", "cortex-m4", "--runtime", "tflm",
                          "--optimize", "size", "-o", str(tmp_path / "bad")]),
                    "--optimize size selects edgeq-rt")


@pytest.mark.slow
def test_build_refuses_model_too_large_for_board(built, tmp_path):
    out, _ = built
    text = (board_dir() / "mps2-an386.toml").read_text()
    tiny = tmp_path / "tiny-m4.toml"
    tiny.write_text(text.replace('name = "mps2-an386"', 'name = "tiny-m4"')
                    .replace("0x00400000      # 4 MB ZBT SSRAM2/3", "0x2000"))
    res = _run(["build", str(out / "model_int8.tflite"), "--board", str(tiny), "-o",
                str(tmp_path / "b")])
    _one_line_error(res, "model does not fit tiny-m4 RAM")
    assert "over by" in res.output and "8192" in res.output
    assert not (tmp_path / "b" / "firmware").exists()


def test_unknown_target_and_board(tmp_path):
    _one_line_error(_run(["build", "--target", "cortex-m99"]), "unknown target 'cortex-m99'")
    _one_line_error(_run(["build", "--board", "nope"]), "unknown board 'nope'")
    _one_line_error(_run(["bench", "--board", "nope", "--emulator"]), "unknown board 'nope'")


def test_missing_cross_compiler_and_qemu(tmp_path):
    _one_line_error(_run(["build"], env={"PATH": str(tmp_path)}),
                    "arm-none-eabi-gcc not found on PATH; install it")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("gcc", "objcopy", "size"):
        os.symlink(shutil.which(f"arm-none-eabi-{tool}"), bin_dir / f"arm-none-eabi-{tool}")
    _one_line_error(_run(["build"], env={"PATH": str(bin_dir)}),
                    "qemu-system-arm not found on PATH; install it")


def test_bench_and_run_argument_errors(tmp_path):
    _one_line_error(_run(["bench", "--board", "nucleo-l4r5zi", "--port", "/dev/null",
                          "--power-model", "nucleo-f446re", "--build-dir", str(tmp_path)]),
                    "--power-model is for emulated boards")
    _one_line_error(_run(["bench", "--emulator", "--port", "/dev/null", "--build-dir",
                          str(tmp_path)]), "exactly one of --port PORT or --emulator")
    _one_line_error(_run(["bench", "--emulator", "--build-dir", str(tmp_path)]),
                    "fw.elf not found; run `edgeq build")
    _one_line_error(_run(["bench", "--board", "nucleo-f446re", "--emulator", "--build-dir",
                          str(tmp_path)]), "has no emulator")
    _one_line_error(_run(["bench", "--board", "nucleo-f446re", "--port", "/dev/ttyEDGEQ_NOPE",
                          "--build-dir", str(tmp_path)]), "/dev/ttyEDGEQ_NOPE not found")
    _one_line_error(_run(["run", str(tmp_path / "x.npy"), "--emulator"]), "expected an existing")
    _one_line_error(_run(["flash", "--board", "mps2-an386"]), "emulated: nothing to flash")
    _one_line_error(_run(["build", str(tmp_path / "nope.h5")]), "no such model file")


def test_boards_listing_is_fast_and_complete():
    res = _run(["boards"])
    # header + rule, then per board its line and what was verified where
    assert res.exit_code == 0 and len(res.output.splitlines()) == 2 + 2 * len(
        list(Path(board_dir()).glob("*.toml")))
    lines = res.output.splitlines()
    l4 = lines.index(next(ln for ln in lines if ln.startswith("nucleo-l4r5zi")))
    assert "120 MHz" in lines[l4] and "5 WS" in lines[l4] and "range1-boost" in lines[l4]
    assert "emulation (unicorn/QEMU): clock-tree" in lines[l4 + 1]
    assert "on hardware: not yet" in lines[l4 + 1] and "marker PF15" in lines[l4 + 1]


@pytest.mark.slow
@pytest.mark.parametrize("board", ["nucleo-l4r5zi", "nrf52840dk", "nucleo-h743zi"])
def test_build_for_real_board_stops_before_running(built, tmp_path, board):
    out, _ = built
    res = _run(["build", str(out / "model_int8.tflite"), "--board", board, "-o",
                str(tmp_path / board), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output[res.output.index("{"):])
    assert r["device"]["ran"] is False and "edgeq flash" in r["device"]["reason"]
    assert (tmp_path / board / "firmware" / "fw.hex").is_file()
    from edgeq.toolchain.boards import resolve_target

    assert r["memory"]["flash_capacity"] == resolve_target(board=board).flash.length
    text = _run(["build", str(out / "model_int8.tflite"), "--board", board, "-o",
                 str(tmp_path / board), "--no-run"]).output
    assert "device: not run (--no-run)" in text and "flash:" in text and "RAM:" in text


@pytest.mark.slow
def test_progress_lines_always_debug_lines_only_with_verbose(built, tmp_path):
    out, _ = built
    args = ["build", str(out / "model_int8.tflite"), "--no-run", "-o"]
    quiet = _run([*args, str(tmp_path / "q")])
    loud = _run(["-v", *args, str(tmp_path / "v")])
    assert quiet.exit_code == 0 and loud.exit_code == 0, quiet.output + loud.output
    for res in (quiet, loud):
        assert "edgeq: building firmware for mps2-an386 (cortex-m4)\n" in res.output
    assert "edgeq.toolchain.compiler: compile: " not in quiet.output
    assert "edgeq: edgeq.toolchain.compiler: compile: " in loud.output
