"""The per-layer analysis' parts that need no trained model: weight statistics of a hand-built
.tflite, probabilities and KL worked by hand, pairing of int8 and float graphs, the records,
every branch of ``suggest`` and the manifest lookup. Fast (no TensorFlow), so they also run
under ``make mutation``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers_elementwise import T, build_model, opts

from edgeq.analyze import layers as L
from edgeq.errors import AnalyzeError
from edgeq.tflite import load_model_t, read_tflite_bytes, serialize_model_t
from edgeq.tflite.reader import schema


def _conv(op: str, w: np.ndarray, scales: list[float] | None, axis: int = 0,
          weight_const: bool = True) -> bytes:
    """A one-op conv-family model whose weights are ``w`` (int8) with the given scales."""
    kind = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
            "FULLY_CONNECTED": "FullyConnectedOptions"}[op]
    o, k = opts(kind, **({} if op == "FULLY_CONNECTED" else {"strideW": 1, "strideH": 1}),
                **({"depthMultiplier": 1} if op == "DEPTHWISE_CONV_2D" else {}))
    wt = T(w.shape, "int8", 0.5, 0, w if weight_const else None)
    model = build_model(op, [T((1, 1, 1, w.shape[-1]), "int8", 0.1, 0), wt],
                        [T((1, 1, 1, 2), "int8", 0.1, 0)], o, k)
    if scales is None:
        return model
    m = load_model_t(model)
    q = m.subgraphs[0].tensors[1].quantization
    q.scale = np.asarray(scales, dtype=np.float32)
    q.zeroPoint = np.zeros(len(scales), dtype=np.int64)
    q.quantizedDimension = axis
    return serialize_model_t(m)


def test_weight_statistics_of_a_hand_built_conv() -> None:
    # per-tensor scale 0.5: channel 0 holds |q| up to 20 (10.0), channel 1 up to 2 (1.0)
    w = np.array([10, -20, 1, 2], dtype=np.int8).reshape(2, 1, 1, 2)
    m = read_tflite_bytes(_conv("CONV_2D", w, None))
    per_ch, spread, bits, absmax = L._weight_info(m, m.operators[0])
    # spread 10.0 / 1.0; 2*20+1 = 41 levels need 6 bits
    assert (per_ch, spread, bits, absmax) == (False, 10.0, 6, [10.0, 1.0])
    # per-channel scales 0.5 and 0.25 along axis 0: |w| max 10.0 and 0.5
    m = read_tflite_bytes(_conv("CONV_2D", w, [0.5, 0.25]))
    assert L._weight_info(m, m.operators[0]) == (True, 20.0, 6, [10.0, 0.5])
    # depthwise weights [1, h, w, channels]: per-tensor statistics along the last axis
    wd = np.array([127, 3, -64, 0], dtype=np.int8).reshape(1, 1, 2, 2)
    m = read_tflite_bytes(_conv("DEPTHWISE_CONV_2D", wd, None))
    # channel 0: |127|, |-64| -> 63.5; channel 1: 3, 0 -> 1.5; 255 levels -> 8 bits
    assert L._weight_info(m, m.operators[0]) == (False, 63.5 / 1.5, 8, [63.5, 1.5])
    # an all-zero channel is left out of the spread; all-zero weights have none
    wz = np.array([0, 0, 7, -7], dtype=np.int8).reshape(2, 1, 1, 2)
    m = read_tflite_bytes(_conv("CONV_2D", wz, None))
    assert L._weight_info(m, m.operators[0]) == (False, 1.0, 4, [0.0, 3.5])
    m = read_tflite_bytes(_conv("CONV_2D", np.zeros((2, 1, 1, 2), np.int8), None))
    assert L._weight_info(m, m.operators[0]) == (False, None, 1, [0.0, 0.0])
    # weights fed at run time, or an op without weights: nothing to say
    m = read_tflite_bytes(_conv("CONV_2D", w, None, weight_const=False))
    assert L._weight_info(m, m.operators[0]) == (None, None, None, [])
    m = read_tflite_bytes(build_model("RELU", [T((1, 4))], [T((1, 4))]))
    assert L._weight_info(m, m.operators[0]) == (None, None, None, [])


def test_probabilities_and_kl_worked_by_hand() -> None:
    # rows that already are probabilities (within 2e-2) are only renormalized
    np.testing.assert_allclose(L._probabilities(np.array([[0.2, 0.3, 0.49]])),
                               [[0.2 / 0.99, 0.3 / 0.99, 0.49 / 0.99]])
    # logits (or rows summing to 1.5, or negative values) go through a softmax
    for row in ([1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [-0.5, 0.5, 1.0]):
        e = [math.exp(v) for v in row]
        np.testing.assert_allclose(L._probabilities(np.array([row])), [[v / sum(e) for v in e]],
                                   rtol=1e-12)
    # shape (n, 1, k) is flattened per sample
    assert L._probabilities(np.zeros((2, 1, 4))).shape == (2, 4)
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    q = np.array([[0.25, 0.75], [0.9, 0.1]])
    want = (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)) / 2
    assert L._mean_kl(p, q) == pytest.approx(want, rel=1e-9)
    # a probability int8 rounded to exactly 0 is floored at 1e-6 (and the rows renormalized)
    got = L._mean_kl(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]))
    qf = [1.0 / (1 + 1e-6), 1e-6 / (1 + 1e-6)]
    assert got == pytest.approx(0.5 * math.log(0.5 / qf[0]) + 0.5 * math.log(0.5 / qf[1]),
                                rel=1e-9)


def test_int8_and_float_graphs_pair_by_name_then_by_op_sequence() -> None:
    q = read_tflite_bytes(build_model("RELU", [T((1, 4))], [T((1, 4))]))
    f = read_tflite_bytes(build_model("RELU", [T((1, 4), "float32", None)],
                                      [T((1, 4), "float32", None)]))
    assert [(op.index, i) for op, i in L.pair_tensors(q, f)] == [(0, 1)]
    # other tensor names: paired by op kind and output shape
    m = load_model_t(build_model("RELU", [T((1, 4), "float32", None)],
                                 [T((1, 4), "float32", None)]))
    for t in m.subgraphs[0].tensors:
        t.name = "renamed_" + (t.name.decode() if isinstance(t.name, bytes) else t.name)
    f2 = read_tflite_bytes(serialize_model_t(m))
    assert [(op.index, i) for op, i in L.pair_tensors(q, f2)] == [(0, 1)]
    for other in (build_model("RELU6", [T((1, 4), "float32", None)],
                              [T((1, 4), "float32", None)]),
                  build_model("RELU", [T((1, 8), "float32", None)],
                              [T((1, 8), "float32", None)])):
        m = load_model_t(other)
        m.subgraphs[0].tensors[1].name = "x"
        with pytest.raises(AnalyzeError, match="do not line up"):
            L.pair_tensors(q, read_tflite_bytes(serialize_model_t(m)))


def test_dequantize_and_quantize_helpers() -> None:
    m = read_tflite_bytes(build_model("RELU", [T((1, 3), "int8", 0.5, -2)],
                                      [T((1, 3), "float32", None)]))
    t_q, t_f = m.tensors[0], m.tensors[1]
    assert L._dequant(np.array([-2, 0, 4], np.int8), t_q).tolist() == [0.0, 1.0, 3.0]
    v = np.array([0.25, 1.5, -3.0], np.float32)
    for t in (t_f, t_q):  # float values (a float tensor, or already float) pass unchanged
        out = L._dequant(v, t)
        assert out.dtype == np.float64 and out.tolist() == [0.25, 1.5, -3.0]
    d = {"dtype": np.int8, "quantization": (0.5, -2)}
    assert L._quantize_input(np.array([0.0, 1.0, 3.0, 100.0]), d).tolist() == [-2, 0, 4, 127]
    f = L._quantize_input(np.array([0.5], np.float64), {"dtype": np.float32})
    assert f.dtype == np.float32


def _layer(i: int, op: str = "CONV_2D", sqnr: float = 20.0, sqnr_in: float = math.inf, *,
           clipped: float = 0.0, bits: int | None = 8, spread: float | None = 2.0,
           per_channel: bool | None = True, bulk: tuple[float, float] = (0.0, 20.0),
           dtype: str = "int8") -> L.LayerStats:
    return L.LayerStats(op_index=i, op=op, tensor=f"t{i}", shape=[1, 4], sqnr_db=sqnr,
                        scale=0.1, zero_point=-128, range_used=(0.0, 25.5),
                        range_observed=(0.0, 25.0), clipped_fraction=clipped, range_bulk=bulk,
                        weight_per_channel=per_channel, weight_spread=spread, weight_bits=bits,
                        dtype=dtype, input_sqnr_db=sqnr_in)


def _model(f_acc: float | None = 0.98, q_acc: float | None = 0.90,
           agree: float | None = 0.9) -> L.ModelStats:
    return L.ModelStats(samples=500, float_accuracy=f_acc, int8_accuracy=q_acc,
                        top1_agreement=agree, kl_softmax=0.1, output_sqnr_db=math.inf)


def test_layer_and_analysis_records() -> None:
    s = _layer(2, sqnr=10.0, sqnr_in=20.0)
    # noise-to-signal ratios add: 0.1 - 0.01 = 0.09 -> 10.457 dB of its own
    assert s.own_drop_db == 10.0
    assert s.own_sqnr_db == pytest.approx(-10 * math.log10(0.1 - 0.01), rel=1e-12)
    exact = _layer(3, sqnr=math.inf, sqnr_in=30.0)
    assert exact.own_drop_db == 0.0 and exact.own_sqnr_db == math.inf
    first = _layer(0, sqnr=25.0)  # reads the exact model input
    assert first.own_drop_db == math.inf and first.own_sqnr_db == pytest.approx(25.0)
    cleaner = _layer(4, op="RELU", sqnr=21.0, sqnr_in=20.0)  # removes noise
    assert cleaner.own_sqnr_db == math.inf
    assert _layer(5, sqnr=-math.inf, sqnr_in=3.0).own_sqnr_db == -math.inf
    d = exact.as_dict()
    assert (d["sqnr_db"], d["input_sqnr_db"], d["own_drop_db"], d["own_sqnr_db"]) == (
        "inf", 30.0, 0.0, "inf")
    assert d["op_index"] == 3 and d["tensor"] == "t3" and d["range_used"] == (0.0, 25.5)
    assert _layer(6, sqnr=-math.inf, sqnr_in=-math.inf).as_dict()["sqnr_db"] == "-inf"
    a = L.Analysis(layers=[s, exact, first, cleaner], model=_model(), sanity=[{"bits": 8}],
                   suggestions=["x"])
    assert [x.op_index for x in a.worst()] == [2, 4, 0]
    assert [x.op_index for x in a.worst(1)] == [2]
    doc = a.as_dict()
    assert doc["model"]["output_sqnr_db"] == "inf" and doc["model"]["samples"] == 500
    assert doc["sanity_6db"] == [{"bits": 8}] and doc["suggestions"] == ["x"]
    assert [x["op_index"] for x in doc["layers"]] == [2, 3, 0, 4]
    json.dumps(doc)  # plain JSON: no inf floats left


def test_lost_nothing_is_within_noise_or_agreement() -> None:
    assert L.lost_nothing(L.Analysis([], _model(0.980, 0.9785), []))  # 0.15 points
    assert not L.lost_nothing(L.Analysis([], _model(0.980, 0.9775), []))  # 0.25 points
    assert L.lost_nothing(L.Analysis([], _model(0.002, 0.0), []))  # exactly 0.2 in floats
    assert L.lost_nothing(L.Analysis([], _model(None, None, 0.995), []))
    assert not L.lost_nothing(L.Analysis([], _model(None, None, 0.994), []))
    assert L.lost_nothing(L.Analysis([], _model(0.98, None, 0.999), []))
    assert not L.lost_nothing(L.Analysis([], _model(None, None, None), []))


def _tips(layers: list[L.LayerStats], calibration: str | None = None,
          model: L.ModelStats | None = None) -> list[str]:
    return L.suggest(L.Analysis(layers, model or _model(), []), calibration=calibration)


def test_suggest_every_branch_word_for_word() -> None:
    name = "op 1 CONV_2D ('t1', own 10.0 dB, accumulated 10.0 dB)"
    assert _tips([_layer(1, sqnr=10.0, bits=4)]) == [
        f"{name}: weights use only 4 bits; requantize them at 8 bits"]
    assert _tips([_layer(1, sqnr=10.0, spread=12.4, per_channel=False)]) == [
        f"{name}: channel weight ranges differ 12x under per-tensor scales; quantize "
        "per-channel, or --equalize"]
    # a wide spread under per-channel scales, or a spread of exactly 10, is not the problem
    for layer in (_layer(1, sqnr=10.0, spread=50.0), _layer(1, sqnr=10.0, spread=10.0,
                                                            per_channel=False)):
        assert "weight ranges" not in _tips([layer])[0]
    clip = _layer(1, sqnr=10.0, clipped=0.0125)
    head = f"{name}: 1.25% of values clipped; "
    assert _tips([clip]) == [head + "calibrate on more samples (--samples), or --calibration auto"]
    assert _tips([clip], "minmax") == _tips([clip])
    assert _tips([clip], "percentile:99.9") == [head + "use --calibration minmax or auto"]
    assert _tips([clip], "auto") == [head + "use --calibration minmax"]
    narrow = _layer(1, sqnr=10.0, bulk=(0.0, 5.0))  # 5 of 25.5 used
    assert _tips([narrow]) == [f"{name}: values use 20% of the int8 range (outliers widen it); "
                               "try --calibration auto (or percentile, mse)"]
    assert _tips([narrow], "kl")[0].endswith("or QAT (edgeq train-qat)")
    assert _tips([_layer(1, sqnr=10.0, clipped=0.001)]) == [
        f"{name}: try int16 activations for this layer (edgeq mixed --int16), or QAT "
        "(edgeq train-qat)"]
    assert _tips([_layer(1, sqnr=10.0), _layer(2, sqnr=60.0, dtype="int16")]) == [
        f"{name}: try QAT (edgeq train-qat)"]
    # an exact layer (no noise of its own) that clips: "own exact"
    ex = _layer(0, sqnr=math.inf, sqnr_in=math.inf, clipped=0.5)
    assert _tips([ex])[0].startswith("op 0 CONV_2D ('t0', own exact, accumulated inf dB): 50.00%")
    # clean layers (own >= 40 dB, clipping <= 0.1 %) are skipped
    assert _tips([_layer(1, sqnr=40.0, clipped=0.001)]) == [
        "no single layer stands out; try QAT (edgeq train-qat)"]
    assert "op 1" in _tips([_layer(1, sqnr=39.9)])[0]
    assert "op 1" in _tips([_layer(1, sqnr=60.0, clipped=0.0011)])[0]


def test_suggest_ranks_by_own_noise_and_skips_fixed_range_ops() -> None:
    layers = [_layer(0, sqnr=30.0), _layer(1, sqnr=12.0, sqnr_in=30.0),
              _layer(2, "SOFTMAX", sqnr=5.0, sqnr_in=12.0), _layer(3, sqnr=11.0, sqnr_in=12.0),
              _layer(4, sqnr=20.0, clipped=0.3), _layer(5, sqnr=20.0, clipped=0.2)]
    # own SQNR: op1 ~12.1 dB, op3 ~17.9 dB, op0 30, ops 4/5 20 dB (more clipping first)
    assert [s.op_index for s in L.blame(L.Analysis(layers, _model(), []), 4)] == [1, 3, 4, 5]
    assert [s.op_index for s in L.blame(L.Analysis(layers, _model(), []))] == [1, 3, 4]
    tips = _tips(layers)
    assert [t.split(" ")[1] for t in tips] == ["1", "3", "4"]


def test_suggest_says_why_nothing_is_to_do() -> None:
    assert _tips([_layer(1, sqnr=5.0)], model=_model(0.979, 0.980)) == [
        "nothing to do: the model lost nothing beyond noise (int8 98.0 % vs float 97.9 % on "
        "500 samples)"]
    assert _tips([_layer(1, sqnr=5.0)], model=_model(None, None, 0.9987)) == [
        "nothing to do: the model lost nothing beyond noise (top-1 agreement with float 99.9 %)"]


def test_utilization_of_the_int8_range() -> None:
    assert L._utilization(_layer(0, bulk=(5.0, 10.1))) == pytest.approx(5.1 / 25.5)
    assert L._utilization(_layer(0, bulk=(-30.0, 40.0))) == 1.0  # bulk clipped to the range
    assert L._utilization(_layer(0, bulk=(30.0, 40.0))) == 0.0  # entirely outside
    flat = _layer(0)
    flat.range_used = (1.0, 1.0)
    assert L._utilization(flat) == 1.0


def test_manifest_calibration_lookup(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    side = tmp_path / "m.json"
    assert L.manifest_section(str(model)) == {} and L._manifest_calibration(str(model)) is None
    side.write_text(json.dumps({"quantize": {"calibration": {"method": "percentile:99.9"}}}))
    assert L.manifest_section(str(model)) == {"calibration": {"method": "percentile:99.9"}}
    assert L._manifest_calibration(str(model)) == "percentile:99.9"
    for doc in ("not json", "[1, 2]", '{"quantize": [1]}', '{"quantize": {"calibration": "kl"}}',
                '{"quantize": {"calibration": {"other": 1}}}', "{}"):
        side.write_text(doc)
        assert L._manifest_calibration(str(model)) is None, doc
    side.write_text('{"quantize": [1]}')
    assert L.manifest_section(str(model)) == {}


def test_analyze_files_refuses_bad_arguments_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(AnalyzeError) as exc:
        L.analyze_files("model.h5", "float.h5")
    assert str(exc.value) == ("model.h5: analyze takes the quantized .tflite first; pass "
                              "MODEL.tflite --float FLOAT_MODEL")
    with pytest.raises(AnalyzeError) as exc:
        L.analyze_files("m.tflite", "float.h5", limit=0)
    assert str(exc.value) == "--limit must be positive, got 0"
    tfl = tmp_path / "f.tflite"
    tfl.write_bytes(build_model("RELU", [T((1, 4))], [T((1, 4))]))
    with pytest.raises(AnalyzeError) as exc:
        L.analyze_files(str(tfl), str(tfl))
    assert str(exc.value) == (f"{tfl}: --float must be the float Keras model (.keras/.h5), "
                              "not a .tflite")


def test_sanity_line_follows_the_exact_full_scale_formula() -> None:
    """The signal spans [lo - 1/2, hi + 1/2] steps, 2^b steps centred half a step below zero:
    its power is (4^b / 12 + 1/4) step^2 against step^2 / 12 of noise, so the SQNR is
    20·log10(2^b) + 10·log10(1 + 3 / 4^b): +0.051 dB at 4 bits (sampling error ~0.01 dB)."""
    for r in L.sanity_6db():
        b = r["bits"]
        assert r["delta_db"] == pytest.approx(10 * math.log10(1 + 3 / 4**b), abs=0.03), b


def _chain(ops: list[str], dtype: str = "int8", names: str = "") -> bytes:
    """A straight chain of one-input ops on (1, 4) tensors, tensor names prefixed ``names``."""
    t = T((1, 4), dtype, 0.1 if dtype == "int8" else None, 0)
    m = load_model_t(build_model(ops[0], [t], [t]))
    s_mod = schema()
    sg = m.subgraphs[0]
    for op_name in ops[1:]:
        code = next((i for i, c in enumerate(m.operatorCodes)
                     if c.builtinCode == getattr(s_mod.BuiltinOperator, op_name)), None)
        if code is None:
            c = s_mod.OperatorCodeT()
            c.builtinCode = c.deprecatedBuiltinCode = getattr(s_mod.BuiltinOperator, op_name)
            c.version = 1
            m.operatorCodes.append(c)
            code = len(m.operatorCodes) - 1
        out = s_mod.TensorT()
        prev = sg.tensors[sg.outputs[0]]
        out.shape, out.type, out.quantization = prev.shape, prev.type, prev.quantization
        out.name = f"t{len(sg.tensors)}"
        m.buffers.append(s_mod.BufferT())
        out.buffer = len(m.buffers) - 1
        sg.tensors.append(out)
        op = s_mod.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = code, [sg.outputs[0]], [len(sg.tensors) - 1]
        sg.operators.append(op)
        sg.outputs = [len(sg.tensors) - 1]
    for tt in sg.tensors:
        tt.name = names + (tt.name.decode() if isinstance(tt.name, bytes) else tt.name)
    return serialize_model_t(m)


def test_pairing_walks_both_graphs_in_order() -> None:
    def pairs(q_ops: list[str], f_ops: list[str], names: str = "f_") -> list[tuple[int, int]]:
        q = read_tflite_bytes(_chain(q_ops))
        f = read_tflite_bytes(_chain(f_ops, "float32", names))
        return [(op.index, i) for op, i in L.pair_tensors(q, f)]

    # renamed float tensors: op k pairs with the k-th float op's output (tensor k + 1)
    assert pairs(["RELU", "RELU", "RELU"], ["RELU", "RELU", "RELU"]) == [(0, 1), (1, 2), (2, 3)]
    # an int8-only op in between is left out; half the ops (rounded up) must pair
    assert pairs(["RELU", "RELU6", "RELU6", "RELU"], ["RELU", "RELU"]) == [(0, 1), (3, 2)]
    with pytest.raises(AnalyzeError) as exc:
        pairs(["RELU6", "RELU6", "RELU6", "RELU"], ["RELU"])
    assert str(exc.value) == ("the float model's ops do not line up with the quantized model's; "
                              "pass the float model this .tflite was converted from")
    with pytest.raises(AnalyzeError, match="do not line up"):  # the last op must pair
        pairs(["RELU", "RELU6"], ["RELU", "RELU"])
    # same names: paired by name even where the shapes or kinds disagree
    assert pairs(["RELU", "RELU6"], ["RELU6", "RELU"], names="") == [(0, 1), (1, 2)]


def test_ops_without_weights_report_none_even_with_a_constant_operand() -> None:
    o, kind = opts("AddOptions", fusedActivationFunction=0)
    m = read_tflite_bytes(build_model("ADD", [T((1, 2)), T((1, 2), data=np.array([[5, -5]]))],
                                      [T((1, 2))], o, kind))
    assert L._weight_info(m, m.operators[0]) == (None, None, None, [])


def test_probabilities_row_by_row() -> None:
    # two rows of probabilities (one with a zero), renormalized each on its own
    y = np.array([[0.0, 0.3, 0.7], [0.2, 0.2, 0.59]])
    np.testing.assert_allclose(L._probabilities(y), [[0.0, 0.3, 0.7],
                                                     [0.2 / 0.99, 0.2 / 0.99, 0.59 / 0.99]])
    # logits, one row far out: softmax per row, no overflow
    y = np.array([[1000.0, 999.0], [0.2, 0.5]])
    e = 1 / (1 + math.exp(-1.0))
    f = math.exp(0.5) / (math.exp(0.2) + math.exp(0.5))
    np.testing.assert_allclose(L._probabilities(y), [[e, 1 - e], [1 - f, f]], rtol=1e-12)
    # a row summing to 1.5 is not probabilities
    np.testing.assert_allclose(L._probabilities(np.array([[0.2, 0.5, 0.8]])).sum(), 1.0)
    sm = [math.exp(v) for v in (0.2, 0.5, 0.8)]
    np.testing.assert_allclose(L._probabilities(np.array([[0.2, 0.5, 0.8]])),
                               [[v / sum(sm) for v in sm]], rtol=1e-12)


def test_mean_kl_floors_and_renormalizes_each_row() -> None:
    p = [[0.5, 0.5], [1.0, 0.0]]
    q = [[0.999, 0.001], [0.0, 1.0]]

    def floored(row: list[float]) -> list[float]:
        r = [max(v, 1e-6) for v in row]
        return [v / sum(r) for v in r]

    want = sum(sum(a * math.log(a / b) for a, b in zip(floored(pr), floored(qr), strict=True))
               for pr, qr in zip(p, q, strict=True)) / 2
    assert L._mean_kl(np.array(p), np.array(q)) == pytest.approx(want, rel=1e-12)


def test_suggest_boundaries() -> None:
    name = "op 1 CONV_2D ('t1', own 10.0 dB, accumulated 10.0 dB)"
    assert _tips([_layer(1, sqnr=10.0, spread=10.5, per_channel=False)]) == [
        f"{name}: channel weight ranges differ 10x under per-tensor scales; quantize "
        "per-channel, or --equalize"]
    # exactly a quarter of the range is not "too little"
    assert "int16" in _tips([_layer(1, sqnr=10.0, bulk=(0.0, 6.375))])[0]
    # 20.45 % is printed as 20 %
    assert "values use 20% of the int8 range" in _tips([_layer(1, sqnr=10.0,
                                                               bulk=(0.0, 0.2045 * 25.5))])[0]
    # a clean layer ranked first does not stop the ones after it
    assert [t.split(" ")[1] for t in _tips([_layer(1, sqnr=45.0),
                                            _layer(2, sqnr=50.0, clipped=0.01)])] == ["2"]
    # n limits the tips; accuracy unknown but agreement high: nothing to do
    two = [_layer(1, sqnr=10.0), _layer(2, sqnr=11.0)]
    assert len(L.suggest(L.Analysis(two, _model(), []), 1)) == 1
    assert _tips(two, model=_model(0.98, None, 0.999)) == [
        "nothing to do: the model lost nothing beyond noise (top-1 agreement with float 99.9 %)"]
    small = _layer(0, bulk=(0.0, 0.1))
    small.range_used = (0.0, 0.5)
    assert L._utilization(small) == pytest.approx(0.2)


def test_layer_record_with_exact_input() -> None:
    d = _layer(0, sqnr=12.0).as_dict()
    assert (d["input_sqnr_db"], d["own_drop_db"], d["own_sqnr_db"]) == ("inf", "inf", 12.0)


def test_analyze_files_checks_the_limit_before_loading(tmp_path: Path) -> None:
    tfl = tmp_path / "f.tflite"
    tfl.write_bytes(build_model("RELU", [T((1, 4))], [T((1, 4))]))
    with pytest.raises(AnalyzeError, match="--float must be the float Keras model"):
        L.analyze_files(str(tfl), str(tfl), limit=1)


def test_weights_stored_as_the_first_tensor() -> None:
    """Tensor order is free in a .tflite: weights at index 0 are weights all the same."""
    w = np.array([10, -20, 1, 2], dtype=np.int8).reshape(2, 1, 1, 2)
    m = load_model_t(_conv("CONV_2D", w, None))
    sg = m.subgraphs[0]
    sg.tensors[0], sg.tensors[1] = sg.tensors[1], sg.tensors[0]
    swap = {0: 1, 1: 0}
    for op in sg.operators:
        op.inputs = [swap.get(int(i), int(i)) for i in op.inputs]
    sg.inputs = [swap.get(int(i), int(i)) for i in sg.inputs]
    model = read_tflite_bytes(serialize_model_t(m))
    assert model.operators[0].inputs[1] == 0
    assert L._weight_info(model, model.operators[0]) == (False, 10.0, 6, [10.0, 1.0])
