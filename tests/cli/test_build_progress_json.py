"""Issue 13, section 5: `edgeq build` shows progress on a terminal (compile, per-sample device
validation with samples/s and time left) and stays quiet under --json and in CI; under --json
an error is also a JSON object on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeq.cli import show_progress
from edgeq.pipeline import BuildRequest, run_build

REPO = Path(__file__).resolve().parents[2]


def test_progress_only_for_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert show_progress(as_json=False)
    assert not show_progress(as_json=True)
    monkeypatch.setenv("CI", "true")
    assert not show_progress(as_json=False)
    monkeypatch.delenv("CI")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not show_progress(as_json=False)


@pytest.mark.slow
def test_build_draws_compile_and_validation_bars(shared_models: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "hello.tflite"
    model.write_bytes((shared_models / "tflm" / "hello_world_int8.tflite").read_bytes())
    run_build(BuildRequest(model=str(model), target="cortex-m4", samples=8,
                           out=str(tmp_path / "b1"), progress=True))
    err = capsys.readouterr().err
    assert "compiling" in err and "file" in err
    assert "validating on the device" in err and "8/8" in err and "sample/s" in err
    run_build(BuildRequest(model=str(model), target="cortex-m4", samples=8,
                           out=str(tmp_path / "b2"), progress=False))
    err = capsys.readouterr().err
    assert "compiling" not in err and "validating on the device" not in err


def test_json_error_is_a_json_object_on_stdout(shared_models: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "edgeq.cli", "build",
            str(shared_models / "tflm" / "hello_world_int8.tflite"), "--target", "cortex-m4",
            "--samples", "0"]
    for extra, as_json in (([], False), (["--json"], True)):
        proc = subprocess.run([*args, *extra], capture_output=True, text=True, cwd=tmp_path,
                              env=env)
        assert proc.returncode == 1
        (line,) = proc.stderr.strip().splitlines()
        assert line == "edgeq: error: --samples must be positive"
        if as_json:
            assert json.loads(proc.stdout) == {"error": "--samples must be positive"}
        else:
            assert proc.stdout == ""
