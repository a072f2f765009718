"""`edgeq build --protocol mlperf` on digits_cnn, then the firmware driven through QEMU's pty
exactly as the MLPerf Tiny runner would (31 bytes per db command, `%` terminators): the model's
accuracy over the protocol equals the host evaluation (TFLM) on the same samples, and every
printed result equals the oracle's dequantized output to the printed three decimals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import serial
from click.testing import CliRunner

from edgeq.bench.mlperf import harness_results
from edgeq.cli import cli
from edgeq.device.mlperf import RUNNER_DB_BYTES, MlperfClient
from edgeq.device.qemu import QemuInstance
from edgeq.oracles import run_tflm
from edgeq.quantize.numerics import quantized_test_inputs
from edgeq.tflite import read_tflite

SAMPLES = 60


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlperf_build") / "digits_cnn-mps2-an386"
    # as for the MLPerf image datasets: uint8 bytes on the wire, shifted by -128 on the device
    res = CliRunner().invoke(cli, ["build", "--target", "cortex-m4", "--protocol", "mlperf",
                                   "--mlperf-model", "ic01", "--mlperf-input-offset", "-128",
                                   "--samples", "20", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    return out, json.loads(res.output[res.output.index("{"):])


@pytest.mark.slow
def test_build_reports_harness_accuracy_equal_to_host(built):
    out, r = built
    h = r["device"]["harness"]
    assert h["protocol"] == "mlperf" and h["samples"] == 20 and h["results_equal"]
    assert h["device_accuracy"] == h["host_accuracy"] > 0.8
    assert r["accuracy"]["int8_device"] == r["accuracy"]["int8_host_same_samples"]
    assert r["firmware"]["protocol"] == "mlperf" and r["firmware"]["mlperf_input_offset"] == -128


@pytest.mark.slow
def test_runner_style_session_through_the_pty_matches_host_accuracy(built):
    out, _ = built
    tflite = out / "model_int8.tflite"
    x, y = quantized_test_inputs(tflite, None, SAMPLES)
    want = run_tflm(tflite, x)[0]
    q = read_tflite(tflite).output_tensors[0].quant
    scale, zp = float(q.scale[0]), int(q.zero_point[0])
    with QemuInstance("mps2-an386", out / "firmware" / "fw.elf", pty=True) as qemu:
        port = serial.Serial(qemu.pty_path, 115200, timeout=1.0, exclusive=True)
        try:
            c = MlperfClient(port, name="qemu", db_bytes=RUNNER_DB_BYTES)
            c.sync()
            assert c.name_().startswith("edgeq") and c.profile()["model"] == "ic01"
            device_pred = []
            for k in range(SAMPLES):
                c.load((x[k].astype(np.int16) + 128).astype(np.uint8).tobytes())  # as uint8
                r = c.infer(1, 0)
                assert r.results == harness_results(want[k], scale, zp), k
                device_pred.append(int(np.argmax(r.results)))
        finally:
            port.close()
    host_pred = [int(np.argmax(w.reshape(-1))) for w in want]
    device_acc = float(np.mean(np.array(device_pred) == y))
    host_acc = float(np.mean(np.array(host_pred) == y))
    assert device_acc == host_acc > 0.8


@pytest.mark.slow
def test_bench_protocol_mlperf_on_the_emulator(built):
    out, _ = built
    res = CliRunner().invoke(cli, ["bench", "--emulator", "--protocol", "mlperf",
                                   "--build-dir", str(out), "--runs", "5", "--json"])
    assert res.exit_code == 0, res.output
    b = json.loads(res.output[res.output.index("{"):])
    assert b["protocol"] == "mlperf" and b["runs"] == 5 and len(b["laps_us"]) == 2
    assert b["us_per_inference"] > 0 and len(b["results"]) == 10
    assert b["transfer"]["bytes"] == 64
    text = CliRunner().invoke(cli, ["bench", "--emulator", "--protocol", "mlperf",
                                    "--build-dir", str(out), "--runs", "2"]).output
    assert "us/inference" in text and "m-lap-us" in text


@pytest.mark.slow
def test_bench_with_the_wrong_protocol_says_so(built):
    out, _ = built
    res = CliRunner().invoke(cli, ["bench", "--emulator", "--build-dir", str(out)])
    assert res.exit_code == 1 and "holds MLPerf Tiny harness firmware; use `edgeq bench " \
        "--protocol mlperf`" in res.output.strip().splitlines()[-1]
