"""``edgeq quantize`` / ``edgeq evaluate``: JSON output, and bad input as one line + exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq.cli import cli

REPO = Path(__file__).resolve().parents[2]
DIGITS_H5 = str(REPO / "models" / "digits_cnn" / "digits_cnn.h5")


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "digits_int8.tflite"
    result = CliRunner().invoke(
        cli,
        ["quantize", DIGITS_H5, "--data", "digits", "--samples", "64", "-o", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["mode"] == "int8" and doc["output"]["bytes"] == out.stat().st_size
    assert doc["calibration"]["samples"] == 64
    assert Path(doc["manifest"]).exists()
    return out


def test_quantize_human_output(quantized: Path, tmp_path: Path) -> None:
    out = tmp_path / "pt.tflite"
    result = CliRunner().invoke(
        cli,
        [
            "quantize",
            DIGITS_H5,
            "--per-tensor",
            "--io",
            "float32",
            "--samples",
            "16",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "per-tensor weights, float32 I/O" in result.stdout
    assert "calibrated on 16 samples of digits" in result.stdout  # dataset from the sidecar
    assert out.exists()


def test_evaluate_json(quantized: Path) -> None:
    result = CliRunner().invoke(
        cli, ["evaluate", str(quantized), "--float", DIGITS_H5, "--limit", "100", "--json"]
    )
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    assert r["dataset"]["samples"] == 100
    assert r["float"]["value"] >= 0.95 and abs(r["delta"]) <= 0.02
    assert r["agreement"]["max_abs_diff"] <= 1
    assert r["arena_bytes"] % 16 == 0


def test_evaluate_table(quantized: Path) -> None:
    result = CliRunner().invoke(cli, ["evaluate", str(quantized), "--limit", "50", "--no-arena"])
    assert result.exit_code == 0, result.output
    assert "int8 top-1 accuracy (TFLM ref)" in result.stdout
    assert "TFLM vs LiteRT-ref" in result.stdout


@pytest.fixture()
def bad_inputs(tmp_path: Path, quantized: Path) -> Path:
    (tmp_path / "corrupt.h5").write_bytes(b"this is not HDF5")
    (tmp_path / "corrupt.keras").write_bytes(b"this is not a zip")
    data = quantized.read_bytes()
    (tmp_path / "truncated.tflite").write_bytes(data[: len(data) // 2])
    x = np.random.default_rng(0).uniform(0, 16, (20, 28, 28, 1))  # varied: no constant warning
    np.savez(tmp_path / "wrong_shape.npz", x=x, y=np.zeros(20))
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 8, 8, 1)), y=np.zeros(0))
    return tmp_path


BAD_QUANTIZE = [
    (["{d}/missing.h5"], "no such model file"),
    (["{d}/corrupt.h5"], "corrupt or unreadable Keras model"),
    (["{d}/corrupt.keras"], "corrupt .keras file"),
    (["{d}/truncated.tflite"], "truncated"),
    ([DIGITS_H5, "--data", "{d}/wrong_shape.npz"], "(28, 28, 1) but the model input is (8, 8, 1)"),
    ([DIGITS_H5, "--data", "{d}/empty.npz"], "is empty"),
    ([DIGITS_H5, "--data", "{d}/nothing.npz"], "no such dataset"),
    ([DIGITS_H5, "--mode", "int4"], "unknown quantization mode 'int4'"),
    ([DIGITS_H5, "--io", "uint8"], "unknown I/O type 'uint8'"),
    ([DIGITS_H5, "--mode", "float16", "--target", "cortex-m4"], "TFLite Micro rejects float16"),
    ([DIGITS_H5, "--mode", "dynamic", "--target", "mcu"], "TFLite Micro rejects hybrid"),
]


@pytest.mark.parametrize(("args", "message"), BAD_QUANTIZE)
def test_quantize_bad_input_one_line_exit_1(
    bad_inputs: Path, args: list[str], message: str
) -> None:
    out = bad_inputs / "out" / "model.tflite"
    argv = ["quantize", *(a.format(d=bad_inputs) for a in args), "-o", str(out)]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # not an escaped exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeq: error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.output and result.stdout == ""
    assert not (bad_inputs / "out").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{d}/missing.tflite"], "no such model file"),
        (["{d}/truncated.tflite"], "truncated"),
        (["{q}", "--float", "{d}/corrupt.h5"], "corrupt or unreadable Keras model"),
        (["{q}", "--data", "{d}/wrong_shape.npz"], "(28, 28, 1) but the model input is (8, 8, 1)"),
        (["{q}", "--data", "{d}/empty.npz"], "is empty"),
    ],
)
def test_evaluate_bad_input_one_line_exit_1(
    bad_inputs: Path, quantized: Path, args: list[str], message: str
) -> None:
    argv = ["evaluate", *(a.format(d=bad_inputs, q=quantized) for a in args)]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_real_process_bad_input(tmp_path: Path) -> None:
    """The installed console script: exit code 1, one stderr line, no traceback, no TF noise."""
    (tmp_path / "bad.tflite").write_bytes(b"\x00" * 64)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeq.cli",
            "quantize",
            str(tmp_path / "bad.tflite"),
            "-o",
            str(tmp_path / "o.tflite"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "not a TFLite flatbuffer" in proc.stderr
    assert not (tmp_path / "o.tflite").exists()


def test_help_does_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "from edgeq.cli import cli\n"
        "try:\n"
        "    cli(['--help'], prog_name='edgeq')\n"
        "except SystemExit:\n"
        "    pass\n"
        "for cmd in (['quantize', '--help'], ['evaluate', '--help']):\n"
        "    try:\n"
        "        cli(cmd, prog_name='edgeq')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('tensorflow', 'tf_keras', 'keras') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "quantize" in proc.stdout and "evaluate" in proc.stdout
    assert "HEAVY []" in proc.stdout
