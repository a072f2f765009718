"""Models that are not one-input classifiers (issue 13 section 3), built in the test and taken
through `edgeq build --target cortex-m4` to QEMU (mps2-an386): every input is loaded over the
protocol, every output byte read back and compared with TFLite Micro's; or, where TFLite Micro
itself cannot run the model, one line that says so and what to use instead."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq.cli import cli
from edgeq.tflite import read_tflite

TFLM_TREE = Path(__file__).resolve().parents[2].parent / "shared" / "third_party" / "tflite-micro"


def _build(model: Path, out: Path, samples: int) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["build", str(model), "--target", "cortex-m4", "-o", str(out),
                                   "--samples", str(samples), "--json"])
    return res.exit_code, res.output


def _report(output: str) -> dict:
    return json.loads(output[output.index("{"):])


def _sidecar(model: Path, **meta: object) -> None:
    model.with_name(model.stem + ".edgeq.json").write_text(json.dumps(meta))


def _one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.startswith("edgeq: error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def _keras3():  # noqa: ANN202
    from edgeq.tfenv import import_keras3

    keras = import_keras3()
    keras.utils.set_random_seed(0)
    return keras


def _squares(n: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dim images with one bright square; the mask marks it (class 1) on background (0)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.2, (n, size, size, 1)).astype(np.float32)
    mask = np.zeros((n, size, size), np.int64)
    for k in range(n):
        r, c = rng.integers(0, size - 6, 2)
        x[k, r:r + 6, c:c + 6, 0] += 0.8
        mask[k, r:r + 6, c:c + 6] = 1
    return x, mask


@pytest.mark.slow
def test_two_input_model_bit_exact_in_qemu(tmp_path: Path) -> None:
    """Two inputs of the same shape, so feeding them swapped would not fail on shapes: it would
    invert every answer, which the float/int8/device accuracies below would show."""
    keras = _keras3()
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (300, 12)).astype(np.float32)
    b = rng.uniform(0, 1, (300, 12)).astype(np.float32)
    y = (a.mean(1) > b.mean(1)).astype(np.int64)
    np.savez(tmp_path / "pair.npz", x_0=a, x_1=b, y=y)
    ia, ib = keras.Input((12,), name="a_first"), keras.Input((12,), name="b_second")
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([ia, ib]))
    model = keras.Model([ia, ib], keras.layers.Dense(2, activation="softmax")(h))
    model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    model.fit([a, b], y, epochs=40, verbose=0)
    model.save(tmp_path / "pair.keras")
    _sidecar(tmp_path / "pair.keras", dataset="pair.npz", task="classification")

    code, output = _build(tmp_path / "pair.keras", tmp_path / "build", 30)
    assert code == 0, output
    r = _report(output)
    v = r["device"]["validation"]
    assert v["bit_exact"] and v["samples"] == 30 and v["inputs_per_sample"] == 2
    acc = r["accuracy"]
    assert acc["float"] > 0.9 and abs(acc["int8_host"] - acc["float"]) < 0.05
    assert acc["int8_device"] == acc["int8_host_same_samples"] > 0.85
    tfl = tmp_path / "build" / "model_int8.tflite"
    assert len(read_tflite(tfl).inputs) == 2
    # `edgeq run` takes one sample of each input from a .npz and prints what TFLM computes
    from edgeq.oracles import run_tflm
    from edgeq.quantize.numerics import quantized_test_vectors

    xs, _ = quantized_test_vectors(tfl, None, 1)
    np.savez(tmp_path / "one.npz", x_0=xs[0][0], x_1=xs[1][0])
    res = CliRunner().invoke(cli, ["run", str(tmp_path / "one.npz"), "--emulator",
                                   "--build-dir", str(tmp_path / "build"), "--json"])
    assert res.exit_code == 0, res.output
    assert _report(res.output)["output"] == run_tflm(tfl, xs)[0][0].reshape(-1).tolist()
    np.savez(tmp_path / "half.npz", x_0=xs[0][0])
    res = CliRunner().invoke(cli, ["run", str(tmp_path / "half.npz"), "--emulator",
                                   "--build-dir", str(tmp_path / "build")])
    assert res.exit_code != 0 and "1 input array(s) for a model with 2 inputs" in res.output
    # `edgeq bench` feeds one test sample of each input
    res = CliRunner().invoke(cli, ["bench", "--emulator", "--build-dir", str(tmp_path / "build"),
                                   "--runs", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert _report(res.output)["latency"]["median"] > 0


@pytest.mark.slow
def test_two_output_segmentation_model_with_conv2d_transpose_bit_exact(tmp_path: Path) -> None:
    """A segmentation head (Conv2DTranspose back to full size) and a second, class output: both
    outputs read from the device and compared byte for byte; mean IoU scored on the mask."""
    keras = _keras3()
    x, mask = _squares(240)
    np.savez(tmp_path / "squares.npz", x=x, y=mask)
    i = keras.Input((16, 16, 1), name="image")
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(i)
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(h)
    u = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(h)
    u = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(u)
    seg = keras.layers.Conv2D(2, 1, activation="softmax", name="mask")(u)
    side = keras.layers.Dense(2, activation="softmax", name="side")(
        keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(i, [seg, side])
    model.compile(keras.optimizers.Adam(0.01),
                  ["sparse_categorical_crossentropy", "sparse_categorical_crossentropy"])
    model.fit(x, [mask, (mask[:, :, :8].sum((1, 2)) > 18).astype(np.int64)], epochs=30,
              batch_size=32, verbose=0)
    model.save(tmp_path / "seg.keras")
    _sidecar(tmp_path / "seg.keras", dataset="squares.npz", task=["segmentation", "none"])

    code, output = _build(tmp_path / "seg.keras", tmp_path / "build", 12)
    assert code == 0, output
    r = _report(output)
    v = r["device"]["validation"]
    assert v["bit_exact"] and v["samples"] == 12 and v["outputs_per_sample"] == 2
    ops = {op.opcode for op in read_tflite(tmp_path / "build" / "model_int8.tflite").operators}
    assert "TRANSPOSE_CONV" in ops
    acc = r["accuracy"]
    assert acc["metric"] == "mean IoU" and acc["task"] == "segmentation"
    assert acc["float"] > 0.7 and abs(acc["int8_host"] - acc["float"]) < 0.05
    assert acc["int8_device"] == acc["int8_host_same_samples"]
    assert [o["task"] for o in acc["outputs"]] == ["segmentation", "none"]
    _second_output_is_compared(tmp_path / "build")


def _second_output_is_compared(build: Path) -> None:
    """The device's second output is read and compared too: expecting one byte of it
    different from TFLM's makes exactly that sample mismatch."""
    from edgeq.bench.validate import validate_on_device
    from edgeq.device.qemu import QemuInstance
    from edgeq.device.session import DeviceSession
    from edgeq.oracles import run_tflm
    from edgeq.quantize.numerics import quantized_test_vectors
    from edgeq.toolchain.boards import resolve_target

    tfl = build / "model_int8.tflite"
    xs, _ = quantized_test_vectors(tfl, None, 3)
    expected = run_tflm(tfl, xs)
    expected[1][2].reshape(-1)[0] ^= 1
    board = resolve_target("cortex-m4", None)
    with QemuInstance(board.qemu_machine, build / "firmware" / "fw.elf") as q:
        session = DeviceSession(q.port, alive=q.check_alive)
        assert len(session.info.inputs) == 1 and len(session.info.outputs) == 2
        rep = validate_on_device(session, xs, expected)
    assert rep.mismatched_samples == 1 and rep.first_mismatch == 2 and rep.max_abs_diff == 1
    assert [o.shape for o in rep.all_outputs] == [e.shape for e in expected]


@pytest.mark.slow
def test_two_output_model_with_upsampling2d(tmp_path: Path) -> None:
    """UpSampling2D: tf-keras lowers it to RESIZE_NEAREST_NEIGHBOR (RESIZE_BILINEAR), and a
    Keras 3 model (which would lower it to RESHAPE + TILE, with no TFLM kernel) is rebuilt in
    tf-keras first: all three build bit-exact. A Keras 3 model the rebuild cannot express keeps
    its TILE and is refused in one line naming the op, the layer and the replacement."""
    import edgeq.codegen.edgeq_rt  # noqa: F401  (registers every lowering)
    from edgeq.codegen.lowering import registered_ops
    from edgeq.tfenv import import_tf_keras

    x, mask = _squares(120)
    np.savez(tmp_path / "squares.npz", x=x, y=mask)
    cases = (("keras3", _keras3(), "nearest"), ("keras3_bilinear", _keras3(), "bilinear"),
             ("tf_keras", import_tf_keras(), "nearest"), ("keras3_tile", _keras3(), "nearest"))
    for flavour, keras, interpolation in cases:
        i = keras.Input((16, 16, 1))
        h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(i)
        h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(h)
        u = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(h)
        u = keras.layers.UpSampling2D(2, interpolation=interpolation, name="up")(u)
        if flavour == "keras3_tile":  # a layer the tf-keras rebuild does not know
            u = keras.layers.Multiply(name="gate")([u, u])
        seg = keras.layers.Conv2D(2, 1, activation="softmax")(u)
        side = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(h))
        model = keras.Model(i, [seg, side])
        path = tmp_path / f"up_{flavour}.{'h5' if flavour == 'tf_keras' else 'keras'}"
        model.save(path)
        _sidecar(path, dataset="squares.npz", task=["segmentation", "none"])
        out = tmp_path / f"build_{flavour}"
        code, output = _build(path, out, 6)
        if flavour == "keras3_tile":
            assert code != 0
            line = _one_error_line(output)
            assert "TFLite Micro has no kernel for TILE" in line and "Keras layer 'up" in line
            assert "Resizing" in line
            assert not out.exists()  # no partial build directory
        elif "RESIZE_NEAREST_NEIGHBOR" in registered_ops():
            assert code == 0, output
            assert _report(output)["device"]["validation"]["bit_exact"]
            opcodes = {op.opcode for op in read_tflite(out / "model_int8.tflite").operators}
            resize = "RESIZE_BILINEAR" if interpolation == "bilinear" else "RESIZE_NEAREST_NEIGHBOR"
            assert resize in opcodes and "TILE" not in opcodes, opcodes
        else:
            assert code != 0
            assert "RESIZE_NEAREST_NEIGHBOR" in _one_error_line(output)
            assert not out.exists()
            # the way forward: the same model on TFLite Micro firmware, every byte checked
            res = CliRunner().invoke(cli, ["build", str(path), "--target", "cortex-m4",
                                           "--runtime", "tflm", "--tflm-dir", str(TFLM_TREE),
                                           "-o", str(out), "--samples", "6", "--json"])
            assert res.exit_code == 0, res.output
            v = _report(res.output)["device"]["validation"]
            assert v["bit_exact"] and v["outputs_per_sample"] == 2


def _mobilenet_build(tmp_path: Path, keras: object, model: object, samples: int
                     ) -> tuple[dict, set[str]]:
    """Untrained (weights=None) model, random images to calibrate on, task "none": what is
    checked is that every output byte on the device equals TFLM's. Its BatchNormalization
    statistics are set from one batch first: with the initial ones (mean 0, variance 1) the
    activations of a random network die out by the last blocks and every output is the same."""
    from edgeq.oracles import run_tflm
    from edgeq.quantize.numerics import quantized_test_vectors

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (60, 32, 32, 3)).astype(np.float32)
    np.savez(tmp_path / "colours.npz", x=x)
    for layer in model.layers:  # type: ignore[attr-defined]
        if isinstance(layer, keras.layers.BatchNormalization):  # type: ignore[attr-defined]
            layer.momentum = 0.0  # the moving statistics become this batch's
    model((x[:32] - 127.5) / 127.5, training=True)  # type: ignore[operator]
    path = tmp_path / "net.keras"
    model.save(path)  # type: ignore[attr-defined]
    _sidecar(path, dataset="colours.npz", task="none",
             normalization={"mean": 127.5, "std": 127.5})
    code, output = _build(path, tmp_path / "build", samples)
    assert code == 0, output
    r = _report(output)
    assert r["device"]["validation"]["bit_exact"]
    assert r["device"]["validation"]["samples"] == samples
    assert r["accuracy"]["metric"].startswith("none")
    tfl = tmp_path / "build" / "model_int8.tflite"
    outs = run_tflm(tfl, quantized_test_vectors(tfl, None, samples)[0])[0]
    assert len({row.tobytes() for row in outs}) == samples  # the outputs depend on the input
    return r, {op.opcode for op in read_tflite(tfl).operators}


@pytest.mark.slow
def test_mobilenet_v2_035_bit_exact_in_qemu(tmp_path: Path) -> None:
    keras = _keras3()
    net = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None,
                                         classes=4)
    r, ops = _mobilenet_build(tmp_path, keras, net, 4)
    assert {"DEPTHWISE_CONV_2D", "ADD", "CONV_2D"} <= ops
    assert r["device"]["latency"]["median"] > 1_000_000  # a real network ran, not a stub


@pytest.mark.slow
def test_mobilenet_v3_small_hard_swish_bit_exact_in_qemu(tmp_path: Path) -> None:
    keras = _keras3()
    net = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=4,
                                              include_preprocessing=False)
    r, ops = _mobilenet_build(tmp_path, keras, net, 4)
    assert "HARD_SWISH" in ops and "DEPTHWISE_CONV_2D" in ops
