"""The TFLM baseline of benchmarks/runtime_speed.py: a bare-metal TFLM firmware linked with the
cached TFLM + CMSIS-NN library runs on mps2-an386 under the plugin, bit-exact with the TFLM
Python interpreter, and its timed window is the Invoke() alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeq.device.icount import build_plugin, plugin_args
from edgeq.device.semihosting import run_tflm_firmware
from edgeq.device.timing import estimate, flash_range, read_windows
from edgeq.oracles import run_tflm
from edgeq.tflite import read_tflite
from edgeq.toolchain.boards import resolve_target
from edgeq.toolchain.tflm_firmware import START, STOP, build_tflm_firmware, render_data_header
from edgeq.toolchain.tflm_library import tflm_library

MODEL = Path(__file__).resolve().parents[3] / "shared" / "models" / "tflm" / \
    "micro_speech_quantized.tflite"


def test_data_header_registers_only_the_models_ops():
    text, ops = render_data_header(MODEL.read_bytes(), b"\x01\x02", 4096)
    assert ops == ["RESHAPE", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"]
    assert "#define EQB_OPS(X) X(AddReshape) X(AddDepthwiseConv2D) X(AddFullyConnected) " \
           "X(AddSoftmax)" in text
    assert "eqb_input[2] = {\n    0x01, 0x02,\n}" in text


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["cm4_cmsis_nn"])  # one library build keeps make test short
def test_tflm_firmware_bit_exact_and_timed(variant, tmp_path):
    board = resolve_target(board="mps2-an386")
    lib = tflm_library(variant)  # built once per machine (minutes), then cached
    t_in = read_tflite(MODEL).input_tensors[0]
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(1, *t_in.shape[1:]), dtype=np.int8)
    want = run_tflm(MODEL, x)[0][0]
    fw = build_tflm_firmware(board, lib, MODEL.read_bytes(), x.tobytes(), tmp_path / "fw")
    counts = tmp_path / "counts.txt"
    args = plugin_args(fw.elf, build_plugin(tmp_path / "plugin"), counts, start=START,
                       stop=STOP, flash=flash_range(board))
    res = run_tflm_firmware(board, fw.elf, args)
    assert res.status == 0
    assert res.output == want.tobytes()
    assert 0 < res.arena_bytes < 64 * 1024
    (w,) = read_windows(counts)
    # micro_speech: a depthwise conv of ~0.3 M MACs and a small FC
    assert 100_000 < w.total.insns < 5_000_000
    assert estimate(w.total, board).cycles > w.total.insns
    assert fw.size.flash > len(MODEL.read_bytes())
