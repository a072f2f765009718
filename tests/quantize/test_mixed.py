"""Mixed precision: the exact budget solver, the sensitivity analysis and a built int4/int8 model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgeq.errors import QuantizeError
from edgeq.quantize.mixed import Choice, LayerOptions, brute_force, solve_budget
from edgeq.quantize.sensitivity import INT8, Precision, WeightLayer, mean_kl

W4 = Precision(4, 8)
A16 = Precision(8, 16)


def _layer(i: int, weights: int, biases: int = 4, elems: int = 64) -> WeightLayer:
    return WeightLayer(i, "CONV_2D", f"t{i}", f"l{i}", weights, biases, elems, elems)


def _options(sizes: list[int], losses: list[float]) -> list[LayerOptions]:
    out = []
    for i, (n, loss) in enumerate(zip(sizes, losses, strict=True)):
        layer = _layer(i, n)
        out.append(LayerOptions(layer, [
            Choice(INT8, layer.weight_bytes(INT8), layer.ram_bytes(INT8), 0.0),
            Choice(W4, layer.weight_bytes(W4), layer.ram_bytes(W4), loss),
        ]))
    return out


def test_weight_bytes_pack_int4_and_count_bias() -> None:
    layer = _layer(0, 9, biases=3)
    assert layer.weight_bytes(INT8) == 9 + 12
    assert layer.weight_bytes(W4) == 5 + 12  # 9 nibbles -> 5 bytes
    assert layer.weight_bytes(A16) == 9 + 24  # int16x8 bias is int64


def test_solver_matches_brute_force_and_never_exceeds_budget() -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(1, 7))
        sizes = [int(s) for s in rng.integers(8, 400, size=n)]
        losses = [float(v) for v in rng.uniform(-0.01, 1.0, size=n)]
        opts = _options(sizes, losses)
        lo = sum(min(c.weight_bytes for c in o.choices) for o in opts)
        hi = sum(max(c.weight_bytes for c in o.choices) for o in opts)
        budget = int(rng.integers(lo, hi + 1))
        sol = solve_budget(opts, budget)
        assert sol.weight_bytes <= budget
        assert sol.weight_bytes == sum(
            o.layer.weight_bytes(sol.picks[o.layer.name]) for o in opts
        )
        assert sol.predicted_loss == pytest.approx(brute_force(opts, budget), abs=1e-9)


def _upgradable(opts: list[LayerOptions], sol, budget: int) -> list[str]:  # noqa: ANN001
    """Layers left below int8 although moving just that one to int8 still fits the budget."""
    out = []
    for o in opts:
        pick = sol.picks[o.layer.name]
        extra = o.layer.weight_bytes(INT8) - o.layer.weight_bytes(pick)
        if pick.weight_bits < 8 and sol.weight_bytes + extra <= budget:
            out.append(o.layer.short_name)
    return out


def test_solver_fills_the_budget_when_int4_measured_free() -> None:
    # the quality benchmark's CNN: the classifier's int4 loss measured slightly *negative* on the
    # held-out split, and the solver took int4 there with room for int8 (0.54x of a 0.6x budget)
    sizes = [288, 288, 2048, 36864, 640]
    opts = _options(sizes, [0.0136, 0.0294, 0.0827, 0.0007, -0.0002])
    int8_total = sum(o.choices[0].weight_bytes for o in opts)
    budget = int(0.6 * int8_total)
    sol = solve_budget(opts, budget)
    assert sol.labels == {"l0": "w8a8", "l1": "w8a8", "l2": "w8a8", "l3": "w4a8", "l4": "w8a8"}
    assert _upgradable(opts, sol, budget) == []
    # a zero-loss int4 choice is not free either
    zero = _options([100, 200], [0.0, 0.0])
    assert set(solve_budget(zero, 10_000).labels.values()) == {"w8a8"}


def test_solver_never_leaves_an_affordable_int8_upgrade() -> None:
    rng = np.random.default_rng(2)
    for _ in range(60):
        n = int(rng.integers(1, 7))
        sizes = [int(s) for s in rng.integers(8, 400, size=n)]
        losses = [float(v) for v in rng.uniform(-0.05, 0.05, size=n)]
        opts = _options(sizes, losses)
        lo = sum(o.choices[1].weight_bytes for o in opts)
        hi = sum(o.choices[0].weight_bytes for o in opts)
        budget = int(rng.integers(lo, hi + 1))
        sol = solve_budget(opts, budget)
        assert _upgradable(opts, sol, budget) == [], (sizes, losses, budget, sol.labels)


def test_solver_three_choices_exact() -> None:
    layers = [_layer(i, n) for i, n in enumerate((300, 50, 120, 700))]
    rng = np.random.default_rng(1)
    opts = [
        LayerOptions(layer, [
            Choice(p, layer.weight_bytes(p), layer.ram_bytes(p), float(loss))
            for p, loss in zip((INT8, W4, A16), (0.0, rng.uniform(0, 1), rng.uniform(-0.2, 0)),
                               strict=True)
        ])
        for layer in layers
    ]
    for budget in (700, 900, 1200, 1400, 2000):
        sol = solve_budget(opts, budget)
        best = min(
            sum(c.loss for c in combo)
            for combo in itertools.product(*[o.choices for o in opts])
            if sum(c.weight_bytes for c in combo) <= budget
        )
        assert sol.predicted_loss == pytest.approx(best)
        assert sol.weight_bytes <= budget


def test_loose_budget_keeps_int8_and_tight_budget_uses_int4() -> None:
    opts = _options([100, 200], [0.5, 0.1])
    assert set(solve_budget(opts, 10_000).labels.values()) == {"w8a8"}
    tight = solve_budget(opts, opts[0].choices[0].weight_bytes + opts[1].choices[1].weight_bytes)
    assert tight.labels == {"l0": "w8a8", "l1": "w4a8"}  # the less sensitive layer goes to int4


def test_infeasible_budget_names_minimum_size() -> None:
    opts = _options([100, 200], [0.5, 0.1])
    minimum = sum(o.choices[1].weight_bytes for o in opts)
    with pytest.raises(QuantizeError, match=f"needs {minimum} bytes"):
        solve_budget(opts, minimum - 1)
    assert solve_budget(opts, minimum).weight_bytes == minimum


def test_ram_budget_filters_int16_and_reports_minimum() -> None:
    layer = _layer(0, 64, elems=1000)
    opts = [LayerOptions(layer, [
        Choice(INT8, layer.weight_bytes(INT8), layer.ram_bytes(INT8), 0.0),
        Choice(A16, layer.weight_bytes(A16), layer.ram_bytes(A16), -1.0),
    ])]
    assert solve_budget(opts, 10_000).labels["l0"] == "w8a16"
    assert solve_budget(opts, 10_000, ram_budget_bytes=2000).labels["l0"] == "w8a8"
    with pytest.raises(QuantizeError, match="budget-ram-kb"):
        solve_budget(opts, 10_000, ram_budget_bytes=1999)


def test_mean_kl_zero_for_identical_and_positive_otherwise() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert mean_kl(p, p) == pytest.approx(0.0, abs=1e-12)
    assert mean_kl(p, p[:, ::-1]) > 0.1


# --- end to end on a tiny trained model ---------------------------------------------------------


@pytest.fixture(scope="module")
def digits_setup():  # noqa: ANN201
    from edgeq.data import Normalization, load_dataset, prepare_inputs
    from edgeq.models.builders import digits_cnn
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    ds = load_dataset("digits")
    model = digits_cnn(seed=0)
    norm = Normalization(mean=(0.0,), std=(16.0,))
    x_train = prepare_inputs(ds.x_train, model.input_shape, norm)
    x_test = prepare_inputs(ds.x_test, model.input_shape, norm)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x_train, ds.y_train, epochs=8, batch_size=32, verbose=0)
    return model, x_train, ds.y_train, x_test[:300], ds.y_test[:300]


@pytest.mark.slow
def test_sensitivity_and_mixed_model_runs_within_budget(digits_setup) -> None:  # noqa: ANN001
    from edgeq.oracles import run_litert_ref
    from edgeq.quantize.mixed import mixed_precision
    from edgeq.quantize.sensitivity import layer_sensitivity
    from edgeq.tflite import read_tflite_bytes

    model, x_train, y_train, x_test, y_test = digits_setup
    report = layer_sensitivity(model, x_train[:100], x_test, y_test, variants=("w4",))
    by_layer = {r.layer: r for r in report.rows}
    # int4 depthwise: written by edgeq (the quantizer has none), measured like the others
    assert by_layer["dw2"].accuracy is not None and by_layer["dw2"].kl is not None
    assert by_layer["pw2"].accuracy is not None and by_layer["logits"].kl is not None
    assert report.baseline.accuracy > 60.0

    with pytest.raises(QuantizeError, match="smallest possible mix needs"):
        # digits_cnn's int32 biases keep it above 0.57x of int8 even with every layer int4
        mixed_precision(model, x_train[:100], x_test, y_test, budget_fraction=0.5, report=report)
    result = mixed_precision(model, x_train[:100], x_test, y_test, budget_fraction=0.7,
                             train=(x_train, y_train), finetune_epochs=2, report=report)
    s = result.summary()
    assert s["weight_bytes"] <= s["budget_bytes"] <= 0.7 * s["int8_weight_bytes"]
    # the file really holds int4 weights: its constant bytes are near the planned bytes
    assert result.tflite_weight_bytes <= s["budget_bytes"] + 64
    m = read_tflite_bytes(result.model)
    types = {m.tensors[op.inputs[1]].dtype for op in m.operators
             if op.opcode in ("CONV_2D", "FULLY_CONNECTED")}
    assert "int4" in types
    # the accuracy is measured from the model's own outputs on LiteRT reference kernels
    it = m.input_tensors[0]
    q = np.clip(np.round(x_test / it.quant.scale[0]) + it.quant.zero_point[0], -128, 127)
    out = run_litert_ref(result.model, q.astype(np.int8))[0].reshape(len(x_test), -1)
    acc = 100.0 * np.mean(np.argmax(out, axis=1) == y_test)
    assert acc == pytest.approx(result.evaluation.accuracy, abs=1.0)
    assert result.evaluation.accuracy > report.baseline.accuracy - 5.0
    # the fair reference: all-int8 after the same fine-tuning epochs
    assert result.int8_finetuned is not None
    assert result.evaluation.accuracy > result.int8_finetuned.accuracy - 5.0


@pytest.mark.slow
@pytest.mark.slow
def test_fine_tuning_that_hurts_on_held_out_data_is_not_kept(digits_setup) -> None:  # noqa: ANN001
    from edgeq.quantize.mixed import build_mixed, mixed_precision
    from edgeq.quantize.sensitivity import evaluate, float_tflite, layer_sensitivity
    from edgeq.quantize.sensitivity import model_probabilities as probs

    model, x_train, y_train, x_test, y_test = digits_setup
    held = (x_train[:300], y_train[:300])
    report = layer_sensitivity(model, x_train[:100], *held, variants=("w4",))
    # every training label "0": fine-tuning on them (labels, not the float model's outputs)
    # wrecks the model, which held-out data shows
    bad = np.zeros_like(y_train[300:])
    r = mixed_precision(model, x_train[:100], x_test, y_test, budget_fraction=0.7,
                        train=(x_train[300:], bad), finetune_epochs=3, report=report,
                        sensitivity_data=held, distill=False)
    plain = build_mixed(model, r.solution, x_train[:100])
    ref = probs(float_tflite(model), x_test)
    assert not r.finetuned
    assert r.model == plain
    assert r.evaluation.accuracy == evaluate(plain, x_test, y_test, ref).accuracy
    # it did hurt: all-int8 after the same fine-tuning is far below all-int8 without it
    assert r.int8_finetuned is not None and r.int8_finetuned.accuracy < r.int8.accuracy - 10.0
    # distillation (the default) trains towards the float model and never reads those labels
    d = mixed_precision(model, x_train[:100], x_test, y_test, budget_fraction=0.7,
                        train=(x_train[300:], bad), finetune_epochs=3, report=report,
                        sensitivity_data=held)
    assert d.int8_finetuned is not None and d.int8_finetuned.accuracy >= r.int8.accuracy - 2.0


def test_sensitivity_is_measured_on_held_out_data_not_the_test_split(digits_setup) -> None:  # noqa: ANN001
    from edgeq.quantize.mixed import mixed_precision
    from edgeq.tflite import read_tflite_bytes

    model, x_train, y_train, x_test, y_test = digits_setup
    held_x, held_y = x_train[-150:], y_train[-150:]
    # labels of the "test" split scrambled: any decision made on it would see ~10 % accuracy
    scrambled = np.random.default_rng(0).permutation(y_test)
    assert np.mean(scrambled == y_test) < 0.3
    # 0.6x of int8 is below what the quantizer alone can build (0.68x with int8 depthwise):
    # feasible only with edgeq's int4 depthwise filters
    r = mixed_precision(model, x_train[:100], x_test, scrambled, budget_fraction=0.6,
                        finetune_epochs=0, sensitivity_data=(held_x, held_y))
    assert r.solution.labels["dw2"] == "w4a8"
    m = read_tflite_bytes(r.model)
    assert {m.tensors[op.inputs[1]].dtype for op in m.operators
            if op.opcode == "DEPTHWISE_CONV_2D"} == {"int4"}
    assert r.report is not None and r.report.split == "held-out training"
    assert r.report.baseline.accuracy > 80.0  # measured on the held-out labels
    assert r.report.float_accuracy > 80.0
    # the result and its baselines are all measured on the split given as evaluation data
    assert r.evaluation.accuracy < 30.0 and r.int8.accuracy < 30.0 and r.float_accuracy < 30.0
    s = r.summary()
    assert s["sensitivity_split"] == "held-out training" and "min-max" in s["int8_baseline"]


def test_held_out_split_is_disjoint_and_seeded() -> None:
    from edgeq.quantize.trainset import TrainSetup

    x = np.arange(200, dtype=np.float32).reshape(200, 1)
    setup = TrainSetup(None, "m", x, np.arange(200) % 10, x[:5], np.arange(5))
    (fx, fy), (hx, hy) = setup.split_held_out(0.1)
    assert len(hx) == 20 and len(fx) == 180
    assert not set(fx.ravel()) & set(hx.ravel())
    assert sorted(np.concatenate([fx, hx]).ravel()) == list(range(200))
    assert np.array_equal(hy, np.asarray(hx.ravel(), dtype=int) % 10)  # labels travel along
    assert np.array_equal(setup.split_held_out(0.1)[1][0], hx)


def test_int16_layer_is_joined_by_quantize_ops(digits_setup) -> None:  # noqa: ANN001
    """An a16 choice builds an int16x8 layer between int8 neighbours that LiteRT runs."""
    from edgeq.quantize.sensitivity import (
        Precision,
        evaluate,
        float_tflite,
        model_probabilities,
        quantize_with_plan,
        weight_layers,
    )
    from edgeq.tflite import read_tflite_bytes

    model, x_train, _, x_test, y_test = digits_setup
    fmodel = float_tflite(model)
    pw = next(layer for layer in weight_layers(fmodel, model) if layer.keras_name == "pw2")
    data = quantize_with_plan(fmodel, {pw.name: Precision(8, 16)}, x_train[:50])
    m = read_tflite_bytes(data)
    assert "QUANTIZE" in m.op_names
    conv = [op for op in m.operators if op.opcode == "CONV_2D"]
    assert {m.tensors[op.inputs[0]].dtype for op in conv} == {"int8", "int16"}
    ev = evaluate(data, x_test, y_test, model_probabilities(fmodel, x_test))
    assert ev.accuracy > 60.0


def test_pareto_plot_written(tmp_path) -> None:  # noqa: ANN001
    from edgeq.quantize.mixed import ParetoPoint, plot_pareto

    pts = [ParetoPoint(0.6, 1000, 990, 90.0, 0.1), ParetoPoint(0.8, 1300, 1290, 92.0, 0.05)]
    out = tmp_path / "p.png"
    plot_pareto(pts, 92.5, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_float_fallback_layer_stays_float(digits_setup) -> None:  # noqa: ANN001
    """The phone-target fallback: one layer left float32 between (de)quantize ops."""
    from edgeq.quantize.sensitivity import (
        Precision,
        float_tflite,
        model_probabilities,
        quantize_with_plan,
        weight_layers,
    )
    from edgeq.tflite import read_tflite_bytes

    model, x_train, _, x_test, y_test = digits_setup
    fmodel = float_tflite(model)
    fc = next(layer for layer in weight_layers(fmodel, model) if layer.opcode == "FULLY_CONNECTED")
    data = quantize_with_plan(fmodel, {fc.name: Precision(32, 32)}, x_train[:50])
    m = read_tflite_bytes(data)
    op = next(op for op in m.operators if op.opcode == "FULLY_CONNECTED")
    assert m.tensors[op.inputs[1]].dtype == "float32"
    assert "DEQUANTIZE" in m.op_names
    probs = model_probabilities(data, x_test)
    assert 100.0 * np.mean(np.argmax(probs, axis=1) == y_test) > 60.0


def test_fine_tune_is_kept_only_when_it_clearly_wins() -> None:
    from edgeq.quantize.mixed import clearly_better

    def hits(wins: int, losses: int, both_wrong: int = 5, n: int = 450) -> tuple:
        """A and B right on the same samples except ``wins`` (only A) and ``losses`` (only B)."""
        a, b = np.ones(n, dtype=bool), np.ones(n, dtype=bool)
        a[:both_wrong] = b[:both_wrong] = False
        b[both_wrong:both_wrong + wins] = False
        a[both_wrong + wins:both_wrong + wins + losses] = False
        return a, b

    # one or two samples better out of 450 (0.2-0.4 pt): noise, not a reason to change
    assert not clearly_better(*hits(1, 0)) and not clearly_better(*hits(2, 0))
    assert not clearly_better(*hits(0, 0)) and not clearly_better(*hits(5, 5))
    assert clearly_better(*hits(10, 2))  # 8 > 2 sqrt(12) = 6.9
    assert not clearly_better(*hits(2, 10))
    assert clearly_better(*hits(5, 0)) and not clearly_better(*hits(4, 0))  # 5 > 4.47; 4 = 4
