"""The issue-13 ops on an emulated Cortex-M4 (mps2-an386), through the normal build path: one
small tf-keras model holding RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, SPLIT, SPLIT_V, UNPACK,
PACK, GATHER, SQUARED_DIFFERENCE, RSQRT and BATCH_MATMUL, converted to int8, generated, compiled
with arm-none-eabi-gcc (DSP and portable paths) and run in QEMU; every output byte equal to
the TFLite Micro interpreter."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers_edgeq_rt import convert_keras, keras_layers, random_inputs

from edgeq.bench.validate import validate_on_device
from edgeq.codegen.edgeq_rt import write_edgeq_rt
from edgeq.device.qemu import QemuInstance
from edgeq.device.session import DeviceSession
from edgeq.oracles import run_tflm
from edgeq.tflite import read_tflite
from edgeq.toolchain.boards import resolve_target
from edgeq.toolchain.compiler import build_firmware

SAMPLES = 4
OPS = {"RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "SPLIT", "SPLIT_V", "UNPACK", "PACK",
       "GATHER", "SQUARED_DIFFERENCE", "RSQRT", "BATCH_MATMUL"}


def combined_model() -> Any:
    from edgeq.tfenv import import_tf

    tf = import_tf()
    keras = keras_layers()
    L = keras.layers
    x = keras.Input((6, 8, 3))
    h = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    h = L.UpSampling2D(2)(h)  # 12 x 16, nearest
    h = tf.image.resize(h, (5, 7))  # bilinear
    p, q = tf.split(h, 2, axis=-1)
    d = tf.math.squared_difference(p, q)
    t = L.Reshape((35, 8))(L.Concatenate()([p, d]))
    mean = tf.reduce_mean(t, axis=-1, keepdims=True)
    var = tf.reduce_mean(tf.math.squared_difference(t, mean), axis=-1, keepdims=True)
    t = (t - mean) * tf.math.rsqrt(var + 1e-3)
    a, b = tf.split(t, [13, 22], axis=1)
    t = L.Concatenate(axis=1)([b, a])
    rows = tf.unstack(t[:, :3], axis=1)
    t = L.Concatenate(axis=1)([tf.stack([rows[2], rows[0], rows[1]], axis=1), t])
    t = tf.gather(t, [0, 5, 9, 17, 30, 37, 2, 11], axis=1)
    qk = tf.matmul(L.Dense(6)(t), L.Dense(6)(t), transpose_b=True)
    y = tf.matmul(tf.nn.softmax(qk), L.Dense(5)(t))
    return keras.Model(x, L.Dense(10, activation="softmax")(L.Flatten()(y)))


@pytest.fixture(scope="module")
def model(tmp_path_factory):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp("more_ops")
    tflite = root / "more_ops.tflite"
    tflite.write_bytes(convert_keras(combined_model))
    ops = {op.opcode for op in read_tflite(tflite).operators}
    assert OPS <= ops, OPS - ops
    gen = write_edgeq_rt(tflite, root / "gen", plan_json=False)
    x = random_inputs(tflite, SAMPLES, seed=5)
    return {"root": root, "gen": gen, "x": x, "want": run_tflm(tflite, x)}


@pytest.mark.slow
@pytest.mark.parametrize("portable", [False, True], ids=["dsp", "portable"])
def test_new_ops_bit_exact_in_qemu(model, portable):  # noqa: ANN001
    target = resolve_target(board="mps2-an386")
    fw = build_firmware(target, model["root"] / "gen", model["root"] / f"fw-{portable}",
                        input_bytes=sum(int(a[0].nbytes) for a in model["x"]),
                        kernel_sources=model["gen"].kernel_sources,
                        defines=("EDGEQ_RT_PORTABLE",) if portable else ())
    with QemuInstance(target.qemu_machine or "", fw.elf) as q:
        s = DeviceSession(q.port, name="mps2-an386", alive=q.check_alive)
        s.check_model(model["gen"].model_hash)
        rep = validate_on_device(s, model["x"], model["want"])
    assert rep.samples == SAMPLES
    assert rep.bit_exact, rep.to_dict()
    assert np.asarray(rep.device_outputs[0]).size == 10
    assert min(rep.counts) > 1000


@pytest.mark.slow
def test_edgeq_build_of_the_combined_model(model, tmp_path, monkeypatch):  # noqa: ANN001
    """`edgeq build MODEL.tflite --target cortex-m4` (no dataset: generated inputs) quantizes
    nothing, generates, compiles, runs in QEMU and reports every output byte equal to TFLM."""
    import json

    from click.testing import CliRunner

    from edgeq.cli import cli

    monkeypatch.chdir(tmp_path)
    src = tmp_path / "more_ops.tflite"
    src.write_bytes((model["root"] / "more_ops.tflite").read_bytes())
    res = CliRunner().invoke(cli, ["build", str(src), "--target", "cortex-m4", "-o",
                                   str(tmp_path / "b"), "--samples", "8", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    assert report["device"]["validation"]["samples"] == 8
    assert report["device"]["validation"]["bit_exact"]
