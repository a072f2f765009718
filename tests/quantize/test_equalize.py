"""Cross-layer equalization keeps the float function; bias correction removes mean weight error."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.errors import QuantizeError
from edgeq.quantize import equalize as E


def _spread_model(seed: int = 0):  # noqa: ANN202
    """Conv-BN-ReLU, depthwise-BN-ReLU, 1x1 conv, GAP, Dense with channel ranges 1000x apart."""
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((12, 12, 1), name="image")
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="c1")(inp)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(name="r1")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = L.BatchNormalization(name="bn2")(x)
    x = L.ReLU(name="r2")(x)
    x = L.Conv2D(12, 1, activation="relu", name="pw")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(5, name="fc")(x)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(seed)
    for bn in ("bn1", "bn2"):
        layer = model.get_layer(bn)
        g, b, m, v = layer.get_weights()
        gamma = np.exp(rng.uniform(-3.5, 3.5, g.shape)).astype(np.float32)  # ~1000x spread
        layer.set_weights([gamma, rng.normal(0, 0.5, b.shape).astype(np.float32),
                           rng.normal(0, 0.1, m.shape).astype(np.float32),
                           rng.uniform(0.5, 2, v.shape).astype(np.float32)])
    return model


def _x(n: int = 64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, 12, 12, 1)).astype(np.float32)


def test_equalized_model_computes_the_same_float_function() -> None:
    model = _spread_model()
    eq, report = E.equalize(model)
    x = _x()
    ref = model.predict(x, verbose=0)
    got = eq.predict(x, verbose=0)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))
    assert report.folded_batchnorm == ["bn1", "bn2"]
    assert ("c1", "dw") in report.equalized_pairs and ("dw", "pw") in report.equalized_pairs
    # the per-tensor danger sign shrinks by a lot on the layers it equalized
    assert report.spread_after["dw"] < report.spread_before["dw"] / 5
    assert report.spread_after["c1"] < report.spread_before["c1"] / 5


def test_equalize_refuses_relu6_pairs_and_branches_by_name() -> None:
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    L = keras.layers
    inp = keras.Input((8, 8, 1))
    a = L.Conv2D(4, 3, padding="same", name="a")(inp)
    r = L.ReLU(6.0, name="r6")(a)
    b = L.Conv2D(4, 1, name="b")(r)
    _, report = E.equalize(keras.Model(inp, b))
    assert report.equalized_pairs == [] and any("r6" in s for s in report.skipped)
    s = L.Add()([a, L.Conv2D(4, 1)(a)])
    with pytest.raises(QuantizeError, match="single-path"):
        E.equalize(keras.Model(inp, s))


def _first_conv_mean_error(tflite: bytes, float_model, x: np.ndarray) -> float:  # noqa: ANN001
    """Mean over channels of |E[int8 output - float output]| of the first CONV_2D, measured on
    the real int8 model (LiteRT reference kernels), not on edgeq's emulation."""
    from edgeq.analyze.layers import float_tflite, pair_tensors
    from edgeq.oracles import litert_ref_interpreter
    from edgeq.quantize import numerics
    from edgeq.tflite import read_tflite_bytes

    fb = float_tflite(float_model)
    qm, fm = read_tflite_bytes(tflite), read_tflite_bytes(fb)
    op, fidx = next(p for p in pair_tensors(qm, fm) if p[0].opcode == "CONV_2D")
    t = qm.tensors[op.outputs[0]]
    qi, fi = litert_ref_interpreter(tflite), litert_ref_interpreter(fb)
    qin = qi.get_input_details()[0]
    s, z = qin["quantization"]
    errs = []
    for xs in x:
        fi.set_tensor(fi.get_input_details()[0]["index"], xs[None])
        qi.set_tensor(qin["index"], numerics.quantize(xs[None], s, z, "int8").astype(np.int8))
        fi.invoke()
        qi.invoke()
        qv = numerics.dequantize(qi.get_tensor(t.index), float(t.quant.scale[0]),
                                 int(t.quant.zero_point[0]))
        errs.append((qv - fi.get_tensor(fidx)).reshape(-1, qv.shape[-1]).mean(axis=0))
    return float(np.abs(np.mean(errs, axis=0)).mean())


def test_bias_correction_reduces_the_mean_output_error_of_a_layer() -> None:
    from edgeq.quantize.ptq import convert_ptq

    model = _spread_model(seed=2)
    folded, _ = E.fold_batchnorm(model)
    corrected, report = E.correct_bias(E.fold_batchnorm(model)[0], _x(200, seed=3),
                                       per_channel=False)
    assert report.bias_corrected["c1"] > 0
    cal = _x(100, seed=4)

    def rep():  # noqa: ANN202
        return ([s[None]] for s in cal)

    plain = convert_ptq(folded, rep, per_channel=False)
    fixed = convert_ptq(corrected, rep, per_channel=False)
    held = _x(100, seed=5)
    before = _first_conv_mean_error(plain, folded, held)
    after = _first_conv_mean_error(fixed, folded, held)
    assert after < 0.5 * before


@pytest.mark.slow
def test_cli_quantize_equalize_bias_correction_then_analyze_shows_it(tmp_path) -> None:  # noqa: ANN001
    import json
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    h5 = str(repo / "models" / "digits_cnn" / "digits_cnn.h5")
    out = tmp_path / "eq.tflite"

    def edgeq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edgeq.cli", *args], capture_output=True,
                              text=True, cwd=repo, timeout=600)

    r = edgeq("quantize", h5, "-o", str(out), "--per-tensor", "--equalize", "--bias-correction",
              "--json")
    assert r.returncode == 0, r.stderr
    pre = json.loads(r.stdout)["weights_preprocess"]
    # dw2 -> pw2 crosses a ReLU6; pw2 -> logits crosses ReLU, two poolings and a Flatten
    assert pre["equalized_pairs"] == [["conv1", "dw2"], ["pw2", "logits"]]
    assert any("relu6_2" in s for s in pre["skipped"]) and len(pre["bias_corrected"]) == 4
    assert json.loads(out.with_suffix(".json").read_text())["quantize"]["weights_preprocess"]
    r = edgeq("analyze", str(out), "--float", h5, "--limit", "100")
    assert r.returncode == 0, r.stderr
    assert "made with" in r.stdout and "2 layer pairs equalized" in r.stdout
