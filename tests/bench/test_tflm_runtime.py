"""``edgeq build --runtime tflm`` (issue 13, section 4): TFLite Micro firmware built from a TFLM
tree (the offline one in ../shared/third_party), run in QEMU behind the same protocol as
edgeq-rt firmware, checked bit-exact against the TFLM Python interpreter and timed the same way.

The TFLM library is the cached Cortex-M4 CMSIS-NN build that tests/bench/test_tflm_baseline.py
also uses (same tree, same make arguments: one build per machine). The checks do not trust the
build's own report: sizes are re-read with arm-none-eabi-size, one input goes through
``edgeq run`` and is compared with the TFLM interpreter here, and the ELF's symbols say which
runtime is inside.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq.cli import cli
from edgeq.oracles import run_tflm
from edgeq.tflite import read_tflite

REPO = Path(__file__).resolve().parents[2]
TFLM_TREE = REPO.parent / "shared" / "third_party" / "tflite-micro"
EDGEQ = [sys.executable, "-m", "edgeq.cli"]


def _cli(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(cli, args)
    return res.exit_code, res.output


def _json(output: str) -> dict:
    return json.loads(output[output.index("{"):])


def _size(elf: Path) -> dict[str, int]:
    """Section sizes by arm-none-eabi-size (Berkeley format: text = code + rodata)."""
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 2 and cols[0].startswith(".") and cols[1].isdigit():
            sizes[cols[0]] = int(cols[1])
    return sizes


def _symbols(elf: Path) -> set[str]:
    out = subprocess.run(["arm-none-eabi-nm", "-C", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    return {" ".join(line.split()[2:]) for line in out.splitlines() if len(line.split()) >= 3}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, shared_models: Path) -> dict[str, Path]:
    """micro_speech (no dataset: generated inputs) built with edgeq-rt and with TFLM."""
    d = tmp_path_factory.mktemp("tflm_rt")
    model = d / "micro_speech.tflite"
    model.write_bytes((shared_models / "tflm" / "micro_speech_quantized.tflite").read_bytes())
    out = {"model": model, "edgeq": d / "b_edgeq", "tflm": d / "b_tflm"}
    code, text = _cli(["build", str(model), "--target", "cortex-m4", "--samples", "12", "-o",
                       str(out["edgeq"]), "--json"])
    assert code == 0, text
    code, text = _cli(["build", str(model), "--target", "cortex-m4", "--samples", "12",
                       "--runtime", "tflm", "--tflm-dir", str(TFLM_TREE), "-o",
                       str(out["tflm"]), "--json"])
    assert code == 0, text
    (d / "tflm_report.json").write_text(json.dumps(_json(text)))
    out["report"] = d / "tflm_report.json"
    return out


@pytest.mark.slow
def test_tflm_firmware_is_validated_and_reported(builds: dict[str, Path]) -> None:
    r = json.loads(builds["report"].read_text())
    assert r["runtime"] == "TFLite Micro (cmsis-nn kernels)"
    v = r["device"]["validation"]
    assert v["bit_exact"] and v["samples"] == 12 and v["mismatched_samples"] == 0
    lat = r["device"]["latency"]
    assert lat["unit"] == "instructions" and lat["runs"] == 12
    # the plugin counted the Invoke (a depthwise conv of ~0.3 M MACs), not an empty window
    assert 100_000 < lat["median"] < 5_000_000
    assert lat["estimate"]["cycles"] > lat["median"]
    # sizes as arm-none-eabi-size reads the ELF, not as the report computes them
    elf = Path(r["firmware"]["elf"])
    s = _size(elf)
    m = r["memory"]
    assert m["flash"] == s[".text"] + s[".rodata"] + s.get(".ARM.exidx", 0) + s[".data"]
    assert m["ram"] == s[".data"] + s[".bss"] + s[".stack"]
    model_bytes = builds["model"].stat().st_size
    assert m["weights"] == model_bytes and s[".rodata"] > model_bytes  # the flatbuffer is in flash
    assert m["arena"] < s[".bss"]
    # TFLM (with CMSIS-NN) is what runs: its interpreter and kernels are linked, edgeq-rt's not
    syms = _symbols(elf)
    assert "tflite::MicroInterpreter::Invoke()" in syms
    assert any(x.startswith("arm_depthwise_conv") for x in syms)
    assert not any(x.startswith("eq_conv") or x.startswith("eq_depthwise") for x in syms)


@pytest.mark.slow
def test_one_input_through_edgeq_run_equals_the_interpreter(builds: dict[str, Path],
                                                            tmp_path: Path) -> None:
    t = read_tflite(builds["model"]).input_tensors[0]
    x = np.random.default_rng(7).integers(-128, 128, size=t.shape, dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    code, text = _cli(["run", str(tmp_path / "x.npy"), "--emulator", "--build-dir",
                       str(builds["tflm"]), "--json"])
    assert code == 0, text
    want = run_tflm(builds["model"], x)[0].reshape(-1)  # shape (1, ...): one sample
    assert _json(text)["output"] == want.tolist()


@pytest.mark.slow
def test_bench_compares_both_runtimes(builds: dict[str, Path]) -> None:
    code, text = _cli(["bench", "--emulator", "--runs", "3", "--build-dir", str(builds["edgeq"]),
                       "--compare", str(builds["tflm"]), "--json"])
    assert code == 0, text
    r = _json(text)
    rows = r["builds"]
    assert [x["runtime"] for x in rows] == ["edgeq-rt", "TFLite Micro (cmsis-nn kernels)"]
    for row, key in zip(rows, ("edgeq", "tflm"), strict=True):
        built = json.loads((builds[key] / "manifest.json").read_text())["build"]
        assert row["memory"]["flash"] == built["memory"]["flash"]
        assert row["bench"]["latency"]["runs"] == 3
    # the same model ran in both: same outputs size, same hash; the runtimes differ in code
    assert rows[0]["bench"]["model_hash"] == rows[1]["bench"]["model_hash"]
    assert rows[0]["memory"]["flash"] != rows[1]["memory"]["flash"]
    from edgeq.bench.compare import render_compare

    ratio = rows[1]["bench"]["latency"]["median"] / rows[0]["bench"]["latency"]["median"]
    assert f"relative to the first: TFLite Micro (cmsis-nn kernels) {ratio:.2f}x" in \
        render_compare(r)
    code, text = _cli(["bench", "--emulator", "--runs", "3", "--build-dir", str(builds["tflm"]),
                       "--per-layer"])
    assert code == 1 and "no per-layer hook" in text


@pytest.mark.slow
def test_svdf_edgeq_rt_refuses_then_tflm_runs_it(shared_models: Path, tmp_path: Path) -> None:
    """The refusal's advice is true: the SVDF keyword model (stateful) runs bit-exact as TFLM
    firmware. (The LSTM that was this test's model now runs on edgeq-rt too:
    tests/cli/test_recurrent_build.py.)"""
    model = tmp_path / "svdf.tflite"
    model.write_bytes((shared_models / "tflm" / "keyword_scrambled_8bit.tflite").read_bytes())
    code, text = _cli(["build", str(model), "--target", "cortex-m4", "-o",
                       str(tmp_path / "rt")])
    assert code == 1
    assert "`edgeq build MODEL --runtime tflm --tflm-dir TFLM_TREE`" in text
    code, text = _cli(["build", str(model), "--target", "cortex-m4", "--runtime", "tflm",
                       "--tflm-dir", str(TFLM_TREE), "--samples", "6", "-o",
                       str(tmp_path / "tflm"), "--json"])
    assert code == 0, text
    r = _json(text)
    assert r["runtime"] == "TFLite Micro (cmsis-nn kernels)"
    assert r["device"]["validation"]["bit_exact"] and r["device"]["validation"]["samples"] == 6
    assert "#define EQ_TFLM_STATEFUL 1" in (tmp_path / "tflm" / "tflm_model" /
                                            "eq_tflm_data.h").read_text()


@pytest.mark.slow
def test_state_is_reset_before_every_invoke(tmp_path: Path) -> None:
    """A model with a resource variable (a running sum) validates bit-exact only if the
    firmware resets the interpreter before each invoke, as the host oracle does per sample."""
    from helpers_stateful import accumulator_tflite, running_sums

    from edgeq.bench.validate import validate_on_device
    from edgeq.codegen.tflm_model import generate_tflm_model
    from edgeq.device.connect import connect
    from edgeq.toolchain.boards import resolve_target
    from edgeq.toolchain.compiler import build_firmware
    from edgeq.toolchain.tflm_library import tflm_library

    data = accumulator_tflite()
    gen = generate_tflm_model(data, "accumulator")
    assert gen.stateful and "ASSIGN_VARIABLE" in gen.ops
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for name, text in gen.files.items():
        (model_dir / name).write_text(text)
    board = resolve_target(board="mps2-an386")
    fw = build_firmware(board, model_dir, tmp_path / "fw", input_bytes=16, kernel_sources=[],
                        tflm=tflm_library("cm4_cmsis_nn", tree=TFLM_TREE))
    x = np.random.default_rng(5).uniform(0.5, 1.0, (5, 4)).astype(np.float32)
    want = run_tflm(data, x)
    np.testing.assert_array_equal(want[0].reshape(x.shape), x)  # the host resets per sample
    assert not np.allclose(running_sums(x), x)  # so a firmware that did not would differ
    with connect(board, elf=fw.elf, emulator=True) as session:
        session.check_model(gen.model_hash)
        rep = validate_on_device(session, [x], want)
    assert rep.samples == 5 and rep.bit_exact, rep


def _one_line_error(args: list[str], cwd: Path, env_tflm: str | None = None) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k != "EDGEQ_TFLM_DIR"}
    env["PYTHONPATH"] = str(REPO)
    if env_tflm is not None:
        env["EDGEQ_TFLM_DIR"] = env_tflm
    proc = subprocess.run([*EDGEQ, *args], capture_output=True, text=True, cwd=cwd, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()  # progress lines (edgeq: ...), then the error
    errors = [ln for ln in lines if ln.startswith("edgeq: error: ")]
    assert errors == lines[-1:] and "Traceback" not in proc.stderr, proc.stderr
    return lines[-1]


def test_bad_tflm_options_are_one_line_errors(shared_models: Path, tmp_path: Path) -> None:
    model = str(shared_models / "tflm" / "hello_world_int8.tflite")
    base = ["build", model, "--target", "cortex-m4", "--runtime", "tflm"]
    line = _one_line_error([*base, "--tflm-dir", str(tmp_path / "nowhere")], tmp_path)
    assert f"TFLite Micro tree not found at {tmp_path / 'nowhere'} (--tflm-dir" in line
    assert "pass --tflm-dir DIR" in line
    line = _one_line_error(base, tmp_path, env_tflm=str(tmp_path))
    assert "(EDGEQ_TFLM_DIR: no tensorflow/lite/micro/tools/make/Makefile there)" in line
    line = _one_line_error(["build", model, "--target", "cortex-m4", "--tflm-dir", "x"], tmp_path)
    assert "add --runtime tflm" in line
    line = _one_line_error([*base, "--per-layer"], tmp_path)
    assert "--per-layer needs edgeq-rt firmware" in line
    line = _one_line_error(["build", model, "--target", "cortex-m7", "--runtime", "tflm"],
                           tmp_path)
    assert "Cortex-M4 firmware only" in line
    assert not (tmp_path / "build").exists()  # nothing half-built


def _failing_tree(root: Path) -> Path:
    """A 'TFLM tree' whose Makefile compiles one file and fails, as a broken checkout would."""
    mk = root / "tensorflow/lite/micro/tools/make/Makefile"
    mk.parent.mkdir(parents=True)
    mk.write_text("microlite:\n\t@echo 'g++ -c kernels/foo.cc -o foo.o'\n"
                  "\t@echo 'kernels/foo.cc:1:1: error: broken tree' >&2\n\t@false\n")
    return root


def test_failed_library_build_is_one_line_and_caches_nothing(
        shared_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from edgeq.errors import BuildError
    from edgeq.toolchain.tflm_library import cache_root, tflm_library

    tree = _failing_tree(tmp_path / "tflite-micro")
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(BuildError) as err:
        tflm_library("cm4_cmsis_nn", tree=tree, progress=True)
    msg = str(err.value)
    assert "TFLM cm4_cmsis_nn build failed (kernels/foo.cc:1:1: error: broken tree)" in msg
    assert "building TFLM" in capsys.readouterr().err  # the bar counted the compile line
    assert [p.suffix for p in cache_root().iterdir() if p.is_dir()] == []  # no half entry
    log = Path(msg.rsplit("log in ", 1)[1])
    assert "broken tree" in log.read_text()
    # through `edgeq build`: one line, exit 1, no build directory left
    model = str(shared_models / "tflm" / "hello_world_int8.tflite")
    line = _one_line_error(["build", model, "--target", "cortex-m4", "--runtime", "tflm",
                            "--tflm-dir", str(tree)], tmp_path)
    assert "build failed (kernels/foo.cc:1:1: error: broken tree)" in line
    assert not (tmp_path / "build" / "hello_world_int8-mps2-an386-tflm").exists()
