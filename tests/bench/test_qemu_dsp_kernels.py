"""edgeq-rt's two kernel paths on emulated Cortex-M cores, every output byte against the oracles.

The DSP path (SMLAD/SXTB16 tiles over codegen-packed filters, selected by __ARM_FEATURE_DSP) runs
on the Cortex-M4 (mps2-an386) and the Cortex-M33 (mps2-an505); the portable path is forced there
with -DEDGEQ_RT_PORTABLE and is what the Cortex-M3 (mps2-an385) compiles on its own. The matrix
covers {default, single rounding} x {int8, int4/LUT/sparse weights} x {DSP, portable} x
{per-layer profiling on, off}: TFLM is the oracle of the default build, LiteRT's reference
kernels of the single-rounding build. A disassembly check proves which path each build took.
The size build (`--optimize size`: -Os, -DEDGEQ_RT_SIZE) runs the same matrix rows on the DSP
cores and, portable, on the Cortex-M3; its symbols prove the size paths were compiled."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers_edgeq_rt import convert_keras, depth_multiplier_model, keras_layers, random_inputs

from edgeq.bench.validate import validate_on_device
from edgeq.codegen.edgeq_rt import write_edgeq_rt
from edgeq.device.qemu import QemuInstance
from edgeq.device.session import DeviceSession
from edgeq.oracles import run_litert_ref, run_tflm
from edgeq.tflite import load_model_t, serialize_model_t
from edgeq.toolchain.boards import resolve_target
from edgeq.toolchain.compiler import CROSS_PREFIX, build_firmware

SAMPLES = 4

# (board, path, rounding, profile): each pair of settings appears at least once
MATRIX = [
    ("mps2-an386", "dsp", "double", False),
    ("mps2-an386", "portable", "double", True),
    ("mps2-an386", "dsp", "single", True),
    ("mps2-an386", "portable", "single", False),
    ("mps2-an505", "dsp", "double", True),
    ("mps2-an505", "dsp", "single", False),
    ("mps2-an505", "portable", "double", False),
    ("mps2-an385", "auto", "double", False),
    ("mps2-an386", "size", "double", False),
    ("mps2-an505", "size", "single", True),
    ("mps2-an385", "size", "double", False),
]


def _int8_model() -> object:
    """Every fast path: packed conv (in_c % 4 == 0, borders, stride 2, a 3-channel remainder),
    first conv (in_c 3, whole windows read in place), depthwise 3x3 stride 1 and 2 (borders
    over the zero-point row), residual ADD (input tables), max pooling with borders, average
    pooling with a 3-channel remainder, packed FC with a remainder row."""
    keras = keras_layers()
    keras.utils.set_random_seed(1)
    L = keras.layers
    inp = keras.Input((11, 9, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    y = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    y = L.Conv2D(8, 1)(y)
    x = L.Add()([x, y])
    x = L.MaxPooling2D(3, strides=1, padding="same")(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = L.Conv2D(11, 3, strides=2, padding="same", activation="relu")(x)
    x = L.AveragePooling2D(2, padding="same")(x)
    x = L.Flatten()(x)
    return keras.Model(inp, L.Dense(7)(x))


def _narrow_first_conv(data: bytes) -> bytes:
    """The first conv as a RELU6 with an output grid of zero point -20 and scale 0.12: bounds
    [-20, 30], narrower than int8 on both sides, so the kernels' activation clamp (not only the
    int8 saturation) decides outputs. Later layers read the same tensor, so the model stays
    consistent; the oracles compute it from the same parameters."""
    mt = load_model_t(data)
    sg = mt.subgraphs[0]
    op = next(o for o in sg.operators
              if max(int(mt.operatorCodes[o.opcodeIndex].builtinCode),
                     int(mt.operatorCodes[o.opcodeIndex].deprecatedBuiltinCode)) == 3)  # CONV_2D
    op.builtinOptions.fusedActivationFunction = 3  # RELU6
    q = sg.tensors[op.outputs[0]].quantization
    q.scale = np.array([0.12], dtype=np.float32)
    q.zeroPoint = np.array([-20], dtype=np.int64)
    return serialize_model_t(mt)


@pytest.fixture(scope="module")
def int8_case(tmp_path_factory):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp("dsp_int8")
    path = root / "m.tflite"
    path.write_bytes(_narrow_first_conv(convert_keras(_int8_model, io_dtype="int8")))
    gen = write_edgeq_rt(path, root / "gen", plan_json=False)
    model_c = (root / "gen" / "model.c").read_text()
    assert ".act_min = -20," in model_c and ".act_max = 30," in model_c  # the narrow clamp
    x = random_inputs(path, SAMPLES, seed=5)[0]
    return {"root": root, "tflite": path, "gen": gen, "x": x,
            "double": run_tflm(path, x), "single": run_litert_ref(path, x)}


def _firmware(case: dict, board: str, path: str, rounding: str, profile: bool, tag: str):  # noqa: ANN202
    defines = []
    if path == "portable":
        defines.append("EDGEQ_RT_PORTABLE")
    if rounding == "single":
        defines.append("EDGEQ_RT_SINGLE_ROUNDING")
    return build_firmware(resolve_target(board=board), case["root"] / tag,
                          case["root"] / f"fw-{tag}-{board}-{path}-{rounding}-{int(profile)}",
                          input_bytes=int(case["x"][0].nbytes), profile_layers=profile,
                          kernel_sources=case["gen"].kernel_sources, defines=tuple(defines),
                          optimize="size" if path == "size" else "speed")


def _run(case: dict, fw, board: str, rounding: str) -> None:  # noqa: ANN001
    with QemuInstance(resolve_target(board=board).qemu_machine or "", fw.elf) as q:
        s = DeviceSession(q.port, name=board, alive=q.check_alive)
        s.check_model(case["gen"].model_hash)
        rep = validate_on_device(s, [case["x"]], case[rounding])
    assert rep.samples == SAMPLES
    assert rep.bit_exact, rep.to_dict()


def _uses_smlad(elf: Path) -> bool:
    dis = subprocess.run([f"{CROSS_PREFIX}objdump", "-d", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    return "smlad" in dis


def _functions(elf: Path) -> set[str]:
    out = subprocess.run([f"{CROSS_PREFIX}nm", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    return {ln.split()[-1] for ln in out.splitlines() if ln.split()[-2] in "tT"}


@pytest.mark.slow
@pytest.mark.parametrize("board,path,rounding,profile", MATRIX)
def test_int8_kernel_paths_bit_exact_in_qemu(int8_case, board, path, rounding, profile):  # noqa: ANN001
    gen = int8_case["gen"]
    assert {"eq_conv2d_s8", "eq_depthwise_conv2d_s8", "eq_fully_connected_s8",
            "eq_add_s8"} <= set(gen.functions)
    model_c = (int8_case["root"] / "gen" / "model.c").read_text()
    assert "filter_packed" in model_c  # the packed conv and FC layouts are in use
    fw = _firmware(int8_case, board, path, rounding, profile, "gen")
    dsp_core = board != "mps2-an385"
    assert _uses_smlad(fw.elf) == (path == "dsp" or (path == "size" and dsp_core))
    # a size build keeps one out-of-line copy of the pixel loops and of the requantization
    # beside the tiles; a speed build inlines them at every call site
    size_paths = {"conv_pixel", "dw_pixel_packed", "eq_out_q_conv4_cold"}
    assert (size_paths <= _functions(fw.elf)) == (path == "size")
    assert fw.optimize == ("size" if path == "size" else "speed")
    _run(int8_case, fw, board, rounding)


@pytest.fixture(scope="module")
def dm_case(tmp_path_factory):  # noqa: ANN001, ANN201
    """Depthwise convolutions with depth multiplier > 1 (helpers_edgeq_rt.depth_multiplier_model:
    in place and copied windows, clipped rows, padded filter rows, dilation, outputs past the
    last block of four)."""
    root = tmp_path_factory.mktemp("dsp_dm")
    path = root / "dm.tflite"
    path.write_bytes(convert_keras(depth_multiplier_model, io_dtype="int8"))
    gen = write_edgeq_rt(path, root / "dm", plan_json=False)
    assert (root / "dm" / "model.c").read_text().count(".filter_blocks = ") == 6
    x = random_inputs(path, SAMPLES, seed=7)[0]
    return {"root": root, "tflite": path, "gen": gen, "x": x, "double": run_tflm(path, x)}


@pytest.mark.slow
@pytest.mark.parametrize("board,path", [
    ("mps2-an386", "dsp"),
    ("mps2-an505", "dsp"),
    ("mps2-an386", "size"),
])
def test_depth_multiplier_kernels_bit_exact_in_qemu(dm_case, board, path):  # noqa: ANN001
    fw = _firmware(dm_case, board, path, "double", False, "dm")
    assert _uses_smlad(fw.elf)  # the blocks run on the SMLAD tile
    assert ("dw_mult_channel" in _functions(fw.elf)) == (path == "size")
    _run(dm_case, fw, board, "double")


def _ternary_model() -> object:
    """Conv / depthwise / conv / dense whose kernels hold only {-a, 0, a} per channel, most of
    them 0: the LUT lowering codes them densely or sparsely (whichever is smaller)."""
    keras = keras_layers()
    keras.utils.set_random_seed(4)
    L = keras.layers
    inp = keras.Input((10, 10, 2))
    x = L.Conv2D(6, 3, padding="same", activation="relu")(inp)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(x)
    x = L.Conv2D(8, 1, activation="relu")(x)
    model = keras.Model(inp, L.Dense(5)(L.Flatten()(x)))
    rng = np.random.default_rng(4)
    for layer in model.layers:
        if layer.get_weights() and type(layer).__name__ != "InputLayer":
            w, b = layer.get_weights()
            t = np.sign(rng.standard_normal(w.shape)) * (rng.random(w.shape) > 0.6) * 0.3
            layer.set_weights([t.astype(np.float32), b])
    return model


@pytest.fixture(scope="module")
def lut_case(tmp_path_factory):  # noqa: ANN001, ANN201
    """LUT-coded (dense and sparse) layers: their kernels share the conv family's
    requantization header with the int8 kernels."""
    root = tmp_path_factory.mktemp("dsp_lut")
    path = root / "t.tflite"
    path.write_bytes(convert_keras(_ternary_model, io_dtype="int8"))
    x = random_inputs(path, SAMPLES, seed=6)[0]
    gen = write_edgeq_rt(path, root / "lut", plan_json=False, weight_coding="lut")
    assert any(f.endswith("_lut") for f in gen.functions)
    assert "filter_packed" not in (root / "lut" / "model.c").read_text()
    return {"root": root, "tflite": path, "gen": gen, "x": x,
            "double": run_tflm(path, x), "single": run_litert_ref(path, x)}


@pytest.mark.slow
@pytest.mark.parametrize("board,path,rounding,profile", [
    ("mps2-an386", "dsp", "double", True),
    ("mps2-an386", "portable", "single", False),
    ("mps2-an505", "dsp", "single", False),
    ("mps2-an386", "size", "double", False),
])
def test_lut_kernels_bit_exact_in_qemu(lut_case, board, path, rounding, profile):  # noqa: ANN001
    fw = _firmware(lut_case, board, path, rounding, profile, "lut")
    _run(lut_case, fw, board, rounding)
