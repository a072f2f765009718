"""int4 depthwise filters written by edgeq (ai-edge-quantizer has none): the file holds what the
float weights say, TFLite Micro runs it, edgeq-rt matches TFLM bit for bit, and mixed precision
can now go below the old minimum on a depthwise-heavy model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeq.quantize.int4_depthwise import pack_int4


def test_pack_int4_layout_matches_the_reader() -> None:
    from edgeq.tflite.reader import _tensor_data

    vals = np.array([1, -1, 7, -7, 0], dtype=np.int8)
    packed = pack_int4(vals)
    assert packed.tolist() == [0xF1, 0x97, 0x00]  # element 0 in the low nibble, two's complement
    back = _tensor_data(packed.tobytes(), 17, (5,))  # TensorType.INT4
    assert back.tolist() == vals.tolist()


def _dw_model():  # noqa: ANN202
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(3)
    L = keras.layers
    inp = keras.Input((10, 10, 3))
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inp)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw1")(x)
    x = L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same", name="dw2")(x)
    x = L.ReLU()(x)
    out = L.Conv2D(4, 1, name="pw")(x)
    model = keras.Model(inp, out)
    for name in ("dw1", "dw2"):  # nonzero biases, so their re-quantization is checked too
        k, b = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights(
            [k, np.random.default_rng(1).normal(0, 0.3, b.shape).astype(np.float32)])
    return model


@pytest.mark.slow
def test_int4_depthwise_file_tflm_and_edgeq_rt(tmp_path: Path) -> None:
    from helpers_host_harness import build_host_model

    from edgeq.codegen.edgeq_rt import write_edgeq_rt
    from edgeq.oracles import run_tflm
    from edgeq.quantize.numerics import quantize
    from edgeq.quantize.sensitivity import (
        Precision,
        float_tflite,
        quantize_with_plan,
        weight_layers,
    )
    from edgeq.tflite import read_tflite_bytes

    model = _dw_model()
    x = np.random.default_rng(2).uniform(-1, 1, size=(40, 10, 10, 3)).astype(np.float32)
    fmodel = float_tflite(model)
    dws = [layer for layer in weight_layers(fmodel) if layer.opcode == "DEPTHWISE_CONV_2D"]
    assert len(dws) == 2
    data = quantize_with_plan(fmodel, {layer.name: Precision(4, 8) for layer in dws}, x[:30])
    m, fm = read_tflite_bytes(data), read_tflite_bytes(fmodel)
    fops = [op for op in fm.operators if op.opcode == "DEPTHWISE_CONV_2D"]
    qops = [op for op in m.operators if op.opcode == "DEPTHWISE_CONV_2D"]
    for fop, qop in zip(fops, qops, strict=True):
        wf = np.asarray(fm.tensors[fop.inputs[1]].data, dtype=np.float64)
        bf = np.asarray(fm.tensors[fop.inputs[2]].data, dtype=np.float64)
        ft, bt = m.tensors[qop.inputs[1]], m.tensors[qop.inputs[2]]
        assert ft.dtype == "int4" and bt.dtype == "int32"
        q = np.asarray(ft.data, dtype=np.int64)
        assert q.min() >= -7 and q.max() <= 7
        assert np.all(np.abs(q.reshape(-1, q.shape[-1])).max(axis=0) == 7)  # full grid used
        scale = np.asarray(ft.quant.scale)
        assert scale.size == wf.shape[-1]
        # every stored value is the nearest grid point of the float weight
        assert np.all(np.abs(q * scale - wf) <= scale / 2 + 1e-9)
        s_in = float(m.tensors[qop.inputs[0]].quant.scale[0])
        assert np.allclose(bt.quant.scale, s_in * scale)
        assert np.all(np.abs(np.asarray(bt.data) * s_in * scale - bf) <= s_in * scale / 2 + 1e-9)
    assert m.weight_bytes() < read_tflite_bytes(quantize_with_plan(fmodel, {}, x[:30])
                                                ).weight_bytes()

    path = tmp_path / "dw4.tflite"
    path.write_bytes(data)
    it, ot = m.input_tensors[0], m.output_tensors[0]
    xq = quantize(x, float(it.quant.scale[0]), int(it.quant.zero_point[0]), "int8")
    ref = run_tflm(path, xq)[0]
    # the int4 model still computes the float function (wrong scales would not)
    got = (ref.astype(np.float64) - ot.quant.zero_point[0]) * ot.quant.scale[0]
    want = model.predict(x, verbose=0).reshape(got.shape)
    sqnr = 10 * np.log10(np.sum(want**2) / np.sum((got - want) ** 2))
    assert sqnr > 10.0, sqnr
    res = write_edgeq_rt(path, tmp_path / "g", plan_json=False)
    assert "eq_depthwise_conv2d_s8_lut" in res.functions  # both depthwise ops: int4 LUT
    assert "eq_depthwise_conv2d_s8" not in res.functions
    out = build_host_model(path, tmp_path / "h", result=res).run(xq)[0]
    assert np.array_equal(out.reshape(ref.shape), ref)
