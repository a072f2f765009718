"""Whole models on emulated cores, both kernel paths, every output byte against TFLM.

DSP path on the Cortex-M4 (mps2-an386) and Cortex-M33 (mps2-an505), portable path on the
Cortex-M3 (mps2-an385): the MLPerf-Tiny look-alikes of edgeq.models, the shipped digits_cnn
and the third-party TFLM models of ../shared/models that fit the emulated boards. The size build
(`--optimize size`) runs on the Cortex-M4 for the models whose conv/depthwise layers take its
paths (window borders, 1x1 and kxk tiles, depthwise borders, strides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_device import quantized_digits
from helpers_edgeq_rt import convert_keras, mlperf_lookalike, random_inputs

from edgeq.bench.validate import validate_on_device
from edgeq.codegen.edgeq_rt import write_edgeq_rt
from edgeq.device.qemu import QemuInstance
from edgeq.device.session import DeviceSession
from edgeq.oracles import run_tflm
from edgeq.toolchain.boards import resolve_target
from edgeq.toolchain.compiler import build_firmware

BOARDS = ["mps2-an386", "mps2-an505", "mps2-an385"]
LOOKALIKES = ["ds_cnn", "resnet8", "mobilenet_v1_025", "fc_autoencoder"]
# keyword_scrambled_8bit (SVDF) is refused by edgeq-rt; mobilenet_v2 at
# 224x224 does not fit the emulated boards' 4 MB flash
SHARED = ["hello_world_int8", "micro_speech_quantized", "person_detect"]
SAMPLES = 2
SIZE_MODELS = {"digits_cnn", "ds_cnn", "resnet8", "mobilenet_v1_025"}


def _tflite(name: str, root: Path) -> Path:
    if name == "digits_cnn":
        return quantized_digits(root)
    if name in LOOKALIKES:
        path = root / f"{name}.tflite"
        path.write_bytes(convert_keras(mlperf_lookalike(name)))
        return path
    from conftest import shared_models_dir

    shared = shared_models_dir()
    if shared is None:
        pytest.skip("third-party models not found: put ../shared/models beside the checkout")
    return shared / "tflm" / f"{name}.tflite"


@pytest.fixture(scope="module", params=["digits_cnn", *LOOKALIKES, *SHARED])
def model(request, tmp_path_factory):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp(request.param)
    tflite = _tflite(request.param, root)
    gen = write_edgeq_rt(tflite, root / "gen", plan_json=False)
    x = random_inputs(tflite, SAMPLES, seed=9)
    return {"name": request.param, "root": root, "gen": gen, "x": x,
            "want": run_tflm(tflite, x)}


def _bit_exact_on(model: dict, board: str, optimize: str) -> None:
    target = resolve_target(board=board)
    fw = build_firmware(target, model["root"] / "gen", model["root"] / f"fw-{board}-{optimize}",
                        input_bytes=sum(int(a[0].nbytes) for a in model["x"]),
                        kernel_sources=model["gen"].kernel_sources, optimize=optimize)
    with QemuInstance(target.qemu_machine or "", fw.elf) as q:
        s = DeviceSession(q.port, name=board, alive=q.check_alive)
        s.check_model(model["gen"].model_hash)
        rep = validate_on_device(s, model["x"], model["want"])
    assert rep.samples == SAMPLES
    assert rep.bit_exact, rep.to_dict()
    assert np.asarray(rep.device_outputs[0]).size > 0


@pytest.mark.slow
@pytest.mark.parametrize("board", BOARDS)
def test_model_bit_exact_on_both_kernel_paths(model, board):  # noqa: ANN001
    _bit_exact_on(model, board, "speed")


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(SIZE_MODELS), indirect=True)
def test_model_bit_exact_in_the_size_build(model):  # noqa: ANN001
    _bit_exact_on(model, "mps2-an386", "size")
