"""The whole path on emulated boards: digits_cnn -> int8 -> edgeq-rt C -> firmware -> QEMU ->
protocol over socket:// -> every output byte equal to the TFLM oracle on 100 test samples."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_device import quantized_digits

from edgeq.bench.validate import top1, validate_on_device
from edgeq.codegen.edgeq_rt import write_edgeq_rt
from edgeq.device.qemu import QemuInstance
from edgeq.device.session import DeviceSession
from edgeq.oracles import run_tflm
from edgeq.quantize.numerics import quantized_test_inputs
from edgeq.toolchain.boards import resolve_target
from edgeq.toolchain.compiler import build_firmware

BOARDS = ["mps2-an386", "mps2-an500", "mps2-an385", "netduinoplus2", "mps2-an505"]
SAMPLES = 100


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits_qemu")
    tflite = quantized_digits(root)
    gen = write_edgeq_rt(tflite, root / "edgeq_rt", name="digits_cnn")
    x, y = quantized_test_inputs(tflite, None, SAMPLES)
    expected = run_tflm(tflite, x)
    return {"root": root, "tflite": tflite, "gen": gen, "x": x, "y": y, "expected": expected}


def _firmware(digits, board, **kw):
    return build_firmware(resolve_target(board=board), digits["root"] / "edgeq_rt",
                          digits["root"] / f"fw-{board}-{len(kw)}", input_bytes=64,
                          kernel_sources=digits["gen"].kernel_sources, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("board", BOARDS)
def test_digits_cnn_bit_exact_on_emulated_board(digits, board):
    fw = _firmware(digits, board)
    assert fw.size.flash < 64 * 1024 and fw.arena_bytes == digits["gen"].arena_bytes
    with QemuInstance(resolve_target(board=board).qemu_machine, fw.elf) as q:
        s = DeviceSession(q.port, name=board, alive=q.check_alive)
        s.check_model(digits["gen"].model_hash)
        assert s.info.inputs[0].shape == (1, 8, 8, 1) and s.info.outputs[0].shape == (1, 10)
        rep = validate_on_device(s, [digits["x"]], digits["expected"])
    assert rep.samples == SAMPLES
    assert rep.bit_exact, rep.to_dict()
    assert top1(rep.device_outputs, digits["y"]) == top1(list(digits["expected"][0]), digits["y"])
    assert top1(rep.device_outputs, digits["y"]) > 0.9
    assert min(rep.counts) > 10_000


@pytest.mark.slow
def test_instruction_counts_identical_across_runs_with_per_layer_profile(digits):
    fw = _firmware(digits, "mps2-an386", profile_layers=True)
    x = digits["x"][:3]
    runs = []
    for _ in range(2):
        with QemuInstance("mps2-an386", fw.elf) as q:
            s = DeviceSession(q.port, alive=q.check_alive)
            per_sample = []
            for k in range(len(x)):
                (out,), res = s.infer([x[k].reshape(1, 8, 8, 1)], runs=3, warmup=1)
                np.testing.assert_array_equal(out.reshape(-1), digits["expected"][0][k].reshape(-1))
                per_sample.append((tuple(res.counts), tuple(s.layer_counts())))
            names = [s.layer_info(i) for i in range(s.info.num_layers)]
            runs.append(per_sample)
    assert runs[0] == runs[1]
    counts, layers = runs[0][0]
    assert len(set(counts)) == 1 and 0 < sum(layers) <= counts[0]
    assert [n for n, _ in names] == [layer.op for layer in digits["gen"].layers]
    assert [m for _, m in names] == [layer.macs for layer in digits["gen"].layers]
