"""Mixed precision under a flash (and RAM) budget: exact choice, then a built, measured model.

The seed formulation is ``min L(W_q)  s.t.  sum_i M_i * b_i <= B``. ``L`` is approximated as the
sum of the per-layer losses that :mod:`edgeq.quantize.sensitivity` *measured* (output KL increase
by default, or accuracy loss), and the choice is solved exactly: a dynamic program over the layers
that keeps, for every reachable byte count, only the Pareto-optimal (bytes, loss) partial
assignments. With a handful of layers and two or three options each this is instant and exact
(no greedy ratio heuristics). The RAM budget is a *max* constraint: each option's activation
bytes (see ``WeightLayer.ram_bytes``) must fit on its own, which filters options before the DP.

Then the model is built (int4 layers first fine-tuned on their grid with a straight-through
estimator so that ai-edge-quantizer's int4 rounding is lossless) and its accuracy is measured on
LiteRT reference kernels -- the predicted loss is never reported as the result.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgeq.errors import QuantizeError
from edgeq.quantize.distill import distillation_set, loss_for_targets
from edgeq.quantize.sensitivity import (
    INT8,
    VARIANT_PRECISION,
    Evaluation,
    Precision,
    SensitivityReport,
    WeightLayer,
    clearly_better,
    evaluate,
    float_tflite,
    model_probabilities,
    quantize_with_plan,
    weight_layers,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Choice:
    precision: Precision
    weight_bytes: int
    ram_bytes: int
    loss: float


@dataclass
class LayerOptions:
    layer: WeightLayer
    choices: list[Choice]


@dataclass
class Solution:
    """One precision per layer; ``weight_bytes`` <= the budget by construction."""

    picks: dict[str, Precision]  # WeightLayer.name -> precision
    labels: dict[str, str]  # short layer name -> precision label
    weight_bytes: int
    predicted_loss: float
    budget_bytes: int
    ram_bytes: int


def options_from_report(
    report: SensitivityReport, *, objective: str = "kl", int16: bool = False
) -> list[LayerOptions]:
    """Per-layer choices (w8a8 always; w4a8 where measured; w8a16 when ``int16``)."""
    if objective not in ("kl", "accuracy"):
        raise QuantizeError(f"unknown objective '{objective}'; use 'kl' or 'accuracy'")
    out = []
    for layer in report.layers:
        choices = [Choice(INT8, layer.weight_bytes(INT8), layer.ram_bytes(INT8), 0.0)]
        for variant in ("w4", "a16") if int16 else ("w4",):
            loss = report.loss(layer.short_name, variant, objective)
            if loss is None:
                continue
            prec = VARIANT_PRECISION[variant]
            choices.append(Choice(prec, layer.weight_bytes(prec), layer.ram_bytes(prec), loss))
        out.append(LayerOptions(layer, choices))
    return out


def size_only_options(layers: Sequence[WeightLayer], *, int16: bool = False) -> list[LayerOptions]:
    """Every precision a layer could take, with zero loss: for feasibility checks."""
    precs = [INT8, VARIANT_PRECISION["w4"]] + ([VARIANT_PRECISION["a16"]] if int16 else [])
    return [
        LayerOptions(layer, [Choice(p, layer.weight_bytes(p), layer.ram_bytes(p), 0.0)
                             for p in precs if layer.supports(p)])
        for layer in layers
    ]


def solve_budget(
    options: Sequence[LayerOptions], budget_bytes: int, *, ram_budget_bytes: int | None = None
) -> Solution:
    """Exact minimum-loss assignment with total weight bytes <= ``budget_bytes``.

    Raises ``QuantizeError`` naming the smallest achievable size (or RAM) when nothing fits.
    """
    if not options:
        raise QuantizeError("no layers to choose precisions for")
    feasible: list[list[Choice]] = []
    for opt in options:
        fits = [_never_free(c) for c in opt.choices
                if ram_budget_bytes is None or c.ram_bytes <= ram_budget_bytes]
        if not fits:
            need = max(min(c.ram_bytes for c in o.choices) for o in options)
            raise QuantizeError(
                f"RAM budget {_kb(ram_budget_bytes or 0)} is too small: layer "
                f"'{opt.layer.short_name}' needs at least {_kb(need)} of activations in any "
                f"precision; raise --budget-ram-kb to at least {math.ceil(need / 1024)}"
            )
        feasible.append(fits)
    min_bytes = sum(min(c.weight_bytes for c in cs) for cs in feasible)
    if min_bytes > budget_bytes:
        raise QuantizeError(
            f"weight budget {_kb(budget_bytes)} is infeasible: the smallest possible mix needs "
            f"{min_bytes} bytes ({_kb(min_bytes)}); raise the budget to at least {min_bytes} "
            f"bytes (--budget-kb {math.ceil(min_bytes / 1024 * 1000) / 1000:g})"
        )
    # states: bytes -> (loss, picks); only Pareto-optimal states survive each layer
    states: dict[int, tuple[float, tuple[int, ...]]] = {0: (0.0, ())}
    for cs in feasible:
        nxt: dict[int, tuple[float, tuple[int, ...]]] = {}
        for used, (loss, picks) in states.items():
            for k, c in enumerate(cs):
                total = used + c.weight_bytes
                if total > budget_bytes:
                    continue
                cand = (loss + c.loss, picks + (k,))
                if total not in nxt or _better(cand, nxt[total]):
                    nxt[total] = cand
        states = _pareto(nxt)
    best_bytes, (best_loss, best_picks) = min(
        states.items(), key=lambda kv: (round(kv[1][0], 12), kv[0], kv[1][1])
    )
    picks = {o.layer.name: cs[k].precision
             for o, cs, k in zip(options, feasible, best_picks, strict=True)}
    labels = {o.layer.short_name: cs[k].precision.label
              for o, cs, k in zip(options, feasible, best_picks, strict=True)}
    ram = max(cs[k].ram_bytes for cs, k in zip(feasible, best_picks, strict=True))
    return Solution(picks, labels, best_bytes, best_loss, budget_bytes, ram)


# a fewer-bit choice never really beats int8: a measured loss at or below zero is noise of the
# held-out split. Counting it as free made the solver take int4 where the budget had room for int8
# (0.54x used of a 0.6x budget on the quality benchmark's CNN), so it costs at least this much.
MIN_LOWER_PRECISION_LOSS = 1e-9


def _never_free(c: Choice) -> Choice:
    if c.precision.weight_bits < 8 and c.loss < MIN_LOWER_PRECISION_LOSS:
        return replace(c, loss=MIN_LOWER_PRECISION_LOSS)
    return c


def _better(a: tuple[float, tuple[int, ...]], b: tuple[float, tuple[int, ...]]) -> bool:
    """Lower loss wins; ties go to the lexicographically smaller pick list (higher precision)."""
    return (round(a[0], 12), a[1]) < (round(b[0], 12), b[1])


def _pareto(states: dict[int, tuple[float, tuple[int, ...]]]) -> dict[int, tuple[float, Any]]:
    kept: dict[int, tuple[float, Any]] = {}
    best = math.inf
    for used in sorted(states):
        loss = states[used][0]
        if loss < best - 1e-15:
            kept[used] = states[used]
            best = loss
    return kept


def brute_force(options: Sequence[LayerOptions], budget_bytes: int) -> float | None:
    """Minimum loss by enumeration (for tests of the DP on small instances); None if infeasible."""
    import itertools

    best: float | None = None
    for combo in itertools.product(*[[_never_free(c) for c in o.choices] for o in options]):
        if sum(c.weight_bytes for c in combo) <= budget_bytes:
            loss = sum(c.loss for c in combo)
            best = loss if best is None else min(best, loss)
    return best


def _kb(n: int) -> str:
    return f"{n / 1024:.2f} KB"


ROUNDINGS = ("adaround", "nearest")


def int8_weight_bytes(layers: Sequence[WeightLayer]) -> int:
    return sum(layer.weight_bytes(INT8) for layer in layers)


# --- building and measuring -------------------------------------------------------------------


@dataclass
class MixedResult:
    solution: Solution
    model: bytes  # the built .tflite
    evaluation: Evaluation
    int8: Evaluation
    float_accuracy: float
    int8_weight_bytes: int
    tflite_weight_bytes: int  # constant-buffer bytes measured in the built file
    finetuned: bool
    report: SensitivityReport | None = None
    int8_finetuned: Evaluation | None = None  # all-int8 after the same fine-tuning
    rounding: str = "adaround"
    sensitivity_split: str = "test"  # where per-layer sensitivities were measured

    def summary(self) -> dict[str, Any]:
        return {
            "budget_bytes": self.solution.budget_bytes,
            "weight_bytes": self.solution.weight_bytes,
            "int8_weight_bytes": self.int8_weight_bytes,
            "ratio_to_int8": self.solution.weight_bytes / self.int8_weight_bytes,
            "tflite_bytes": len(self.model),
            "tflite_weight_bytes": self.tflite_weight_bytes,
            "precisions": self.solution.labels,
            "predicted_loss": self.solution.predicted_loss,
            "accuracy": self.evaluation.accuracy / 100.0,
            "kl": self.evaluation.kl,
            "int8_accuracy": self.int8.accuracy / 100.0,
            "int8_baseline": INT8_BASELINE,
            "sensitivity_split": self.sensitivity_split,
            "float_accuracy": self.float_accuracy / 100.0,
            "ram_bytes": self.solution.ram_bytes,
            "finetuned": self.finetuned,
            "rounding": self.rounding,
            "int8_finetuned_accuracy": (self.int8_finetuned.accuracy / 100.0
                                        if self.int8_finetuned is not None else None),
        }


# how the all-int8 model mixed compares against is made (edgeq quantize's default is the same
# calibration through the TFLite converter, so the two baselines can differ by a sample or two)
INT8_BASELINE = "min-max calibration, per-channel weights, via ai-edge-quantizer"


def clone_keras(model: Any) -> Any:
    """A copy with the same weights, so fine-tuning never touches the caller's model."""
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def build_mixed(
    keras_model: Any,
    solution: Solution,
    calibration: np.ndarray,
    *,
    train: tuple[np.ndarray, np.ndarray] | None = None,
    finetune_epochs: int = 3,
    learning_rate: float = 5e-4,
    seed: int = 0,
    rounding: str = "adaround",
    distill: bool = True,
) -> bytes:
    """The .tflite for ``solution``; int4 layers fine-tuned on the int4 grid when ``train``
    (towards the float model's probabilities with ``distill``, :mod:`edgeq.quantize.distill`),
    then (``rounding="adaround"``) their rounding learned on the calibration samples."""
    from edgeq.quantize.ste import finetune_on_grid

    model = keras_model
    layers = {layer.name: layer for layer in weight_layers(float_tflite(keras_model), keras_model)}
    grids = {layers[n].keras_name: "int4" for n, p in solution.picks.items()
             if p.weight_bits == 4 and layers[n].keras_name}
    # fine-tune even with no int4 layer, so every budget (and the all-int8 reference) gets the
    # same extra training and accuracies stay comparable across the Pareto sweep
    if train is not None and finetune_epochs > 0:
        model = clone_keras(keras_model)
        x_ft, y_ft = train
        if distill:
            # towards the float model, not the labels: a plain fine-tune undoes the model's own
            # recipe (see mixed_precision); models without a softmax output train on labels
            try:
                x_ft, y_ft = distillation_set(keras_model, x_ft, y_ft, seed=seed)
            except QuantizeError as exc:
                log.info("fine-tuning on labels: %s", exc)
        finetune_on_grid(model, grids, x_ft, y_ft, epochs=finetune_epochs,
                         learning_rate=learning_rate, seed=seed, loss=loss_for_targets(y_ft))
    if rounding not in ROUNDINGS:
        raise QuantizeError(f"unknown rounding '{rounding}'; use {' or '.join(ROUNDINGS)}")
    if rounding == "adaround" and grids:
        from edgeq.quantize.adaround import adaround_model

        if model is keras_model:
            model = clone_keras(keras_model)
        adaround_model(model, sorted(grids), calibration, bits=4)
    fmodel = float_tflite(model)
    names = {layer.op_index: layer.name for layer in weight_layers(fmodel, model)}
    # op output names can change after re-conversion; map by op position
    plan = {names[layers[n].op_index]: p for n, p in solution.picks.items() if p != INT8}
    return quantize_with_plan(fmodel, plan, calibration)


def measured_weight_bytes(model: bytes) -> int:
    """Bytes of every constant buffer in the .tflite (int4 counted packed)."""
    from edgeq.tflite import load_model_t

    model_t = load_model_t(model)
    total = 0
    for sg in model_t.subgraphs:
        for t in sg.tensors:
            buf = model_t.buffers[t.buffer] if t.buffer < len(model_t.buffers) else None
            if buf is None:
                continue
            if buf.data is not None and len(buf.data):
                total += len(buf.data)
            elif getattr(buf, "size", 0):
                total += int(buf.size)
    return total


def sensitivity_report(
    keras_model: Any,
    calibration: np.ndarray,
    eval_data: tuple[np.ndarray, np.ndarray],
    sensitivity_data: tuple[np.ndarray, np.ndarray] | None,
    *,
    variants: tuple[str, ...],
    float_model: bytes | None = None,
) -> SensitivityReport:
    """Per-layer sensitivities on the held-out split when there is one, else on ``eval_data``."""
    from edgeq.quantize.sensitivity import layer_sensitivity

    xs, ys = sensitivity_data if sensitivity_data is not None else eval_data
    report = layer_sensitivity(keras_model, calibration, xs, ys, variants=variants,
                               float_model=float_model)
    if sensitivity_data is not None:
        report.split = "held-out training"
    return report


def mixed_precision(
    keras_model: Any,
    calibration: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    *,
    budget_bytes: int | None = None,
    budget_fraction: float | None = None,
    ram_budget_bytes: int | None = None,
    int16: bool = False,
    objective: str = "kl",
    train: tuple[np.ndarray, np.ndarray] | None = None,
    finetune_epochs: int = 3,
    report: SensitivityReport | None = None,
    rounding: str = "adaround",
    sensitivity_data: tuple[np.ndarray, np.ndarray] | None = None,
    distill: bool = True,
) -> MixedResult:
    """Sensitivity -> exact solve -> build -> measure, for one budget.

    Give ``budget_bytes`` or ``budget_fraction`` (of the all-int8 weight bytes). Per-layer
    sensitivities are measured on ``sensitivity_data`` (a split held out of training) when
    given, so the solver never sees ``x_eval``/``y_eval``, where the result is measured.
    """
    if (budget_bytes is None) == (budget_fraction is None):
        raise QuantizeError("give exactly one of a byte budget or a fraction of the int8 size")
    fmodel = float_tflite(keras_model)
    layers = report.layers if report is not None else weight_layers(fmodel, keras_model)
    int8_bytes = int8_weight_bytes(layers)
    if budget_bytes is None:
        assert budget_fraction is not None
        budget_bytes = int(math.floor(budget_fraction * int8_bytes))
    # an infeasible budget fails here, before minutes of sensitivity measurements
    solve_budget(size_only_options(layers, int16=int16), budget_bytes,
                 ram_budget_bytes=ram_budget_bytes)
    if report is None:
        report = sensitivity_report(keras_model, calibration, (x_eval, y_eval), sensitivity_data,
                                    variants=("w4", "a16") if int16 else ("w4",),
                                    float_model=fmodel)
    options = options_from_report(report, objective=objective, int16=int16)
    solution = solve_budget(options, budget_bytes, ram_budget_bytes=ram_budget_bytes)
    model = build_mixed(keras_model, solution, calibration, train=train,
                        finetune_epochs=finetune_epochs, rounding=rounding, distill=distill)
    tried = train is not None and finetune_epochs > 0
    finetuned = tried
    if tried and sensitivity_data is not None:
        # fine-tuning on the plain training split can undo a careful recipe (augmentation,
        # label smoothing): on the quality benchmark's CNN it cost 0.6 pt at 0.6x where the
        # same plan without it lost nothing. Keep it only if held-out data says it helps.
        plain = build_mixed(keras_model, solution, calibration, rounding=rounding)
        xs, ys = sensitivity_data
        right = [np.argmax(model_probabilities(m, xs), axis=1) == ys for m in (model, plain)]
        if not clearly_better(right[0], right[1]):
            model, finetuned = plain, False
    reference = model_probabilities(fmodel, x_eval)
    ev = evaluate(model, x_eval, y_eval, reference)
    float_acc = 100.0 * float(np.mean(np.argmax(reference, axis=1) == y_eval))
    # the all-int8 baseline on the same split as the result (the report's may be another split)
    int8_base = (report.baseline if report.split == "test"
                 else evaluate(quantize_with_plan(fmodel, {}, calibration), x_eval, y_eval,
                               reference))
    int8_ft = None
    if tried:
        all_int8 = Solution({n: INT8 for n in solution.picks}, {}, 0, 0.0, 0, 0)
        int8_ft = evaluate(build_mixed(keras_model, all_int8, calibration, train=train,
                                       finetune_epochs=finetune_epochs, distill=distill),
                           x_eval, y_eval, reference)
    return MixedResult(
        solution=solution,
        model=model,
        evaluation=ev,
        int8=int8_base,
        float_accuracy=float_acc,
        int8_weight_bytes=int8_bytes,
        tflite_weight_bytes=measured_weight_bytes(model),
        finetuned=finetuned,
        report=report,
        int8_finetuned=int8_ft,
        rounding=rounding,
        sensitivity_split=report.split,
    )


@dataclass
class ParetoPoint:
    fraction: float
    budget_bytes: int
    weight_bytes: int
    accuracy: float
    kl: float
    precisions: dict[str, str] = field(default_factory=dict)


def pareto_sweep(
    keras_model: Any,
    calibration: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    fractions: Sequence[float],
    *,
    train: tuple[np.ndarray, np.ndarray] | None = None,
    finetune_epochs: int = 3,
    objective: str = "kl",
    report: SensitivityReport | None = None,
    rounding: str = "adaround",
    sensitivity_data: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[list[ParetoPoint], SensitivityReport]:
    """Measured (size, accuracy) for each budget fraction; infeasible budgets are skipped.

    Each point is built as :func:`mixed_precision` builds one (same rounding, the fine-tune
    kept only if ``sensitivity_data`` says it helps), so the curve shows what ``edgeq mixed``
    would write at that budget.
    """
    if report is None:
        report = sensitivity_report(keras_model, calibration, (x_eval, y_eval), sensitivity_data,
                                    variants=("w4",))
    points = []
    for f in fractions:
        try:
            r = mixed_precision(keras_model, calibration, x_eval, y_eval, budget_fraction=f,
                                train=train, finetune_epochs=finetune_epochs,
                                objective=objective, report=report, rounding=rounding,
                                sensitivity_data=sensitivity_data)
        except QuantizeError:
            continue
        points.append(ParetoPoint(f, r.solution.budget_bytes, r.solution.weight_bytes,
                                  r.evaluation.accuracy, r.evaluation.kl, r.solution.labels))
    return points, report


def plot_pareto(points: Sequence[ParetoPoint], int8_accuracy: float, path: str) -> None:
    """Size vs accuracy PNG (written atomically)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgeq.fileio import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([p.weight_bytes for p in points], [p.accuracy for p in points], "o-", label="mixed")
    ax.axhline(int8_accuracy, color="gray", linestyle="--", label="all int8")
    ax.set_xlabel("weight bytes")
    ax.set_ylabel("accuracy (%)")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def mixed_to_file(
    model_path: str,
    output: str,
    *,
    data: str | None = None,
    budget_kb: float | None = None,
    budget_fraction: float | None = None,
    ram_budget_kb: float | None = None,
    int16: bool = False,
    objective: str = "kl",
    finetune_epochs: int = 3,
    calibration_samples: int = 200,
    pareto_png: str | None = None,
    rounding: str = "adaround",
) -> dict[str, Any]:
    """The ``edgeq mixed`` command: solve, build, measure, write the .tflite and a JSON report."""
    from pathlib import Path

    from edgeq.fileio import atomic_write_bytes, atomic_write_json
    from edgeq.quantize.trainset import load_setup

    if (budget_kb is None) == (budget_fraction is None):
        raise QuantizeError("give exactly one of --budget-kb or --budget-fraction")
    if budget_kb is not None and budget_kb <= 0:
        raise QuantizeError(f"--budget-kb must be positive, got {budget_kb}")
    setup = load_setup(model_path, data)
    fit, held_out = setup.split_held_out()
    calib = fit[0][np.random.default_rng(0).permutation(len(fit[0]))[:calibration_samples]]
    result = mixed_precision(
        setup.model, calib, setup.x_test, setup.y_test, sensitivity_data=held_out,
        budget_bytes=int(budget_kb * 1024) if budget_kb is not None else None,
        budget_fraction=budget_fraction,
        ram_budget_bytes=int(ram_budget_kb * 1024) if ram_budget_kb is not None else None,
        int16=int16, objective=objective, train=fit,
        finetune_epochs=finetune_epochs, rounding=rounding,
    )
    report = result.report
    out = Path(output)
    summary = result.summary()
    summary["output"] = str(out)
    summary["sensitivity"] = [sensitivity_row_json(row) for row in report.as_dict()["rows"]]
    if pareto_png:
        points, _ = pareto_sweep(setup.model, calib, setup.x_test, setup.y_test,
                                 (0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
                                 train=fit, finetune_epochs=finetune_epochs, objective=objective,
                                 report=report, rounding=rounding, sensitivity_data=held_out)
        plot_pareto(points, result.int8.accuracy, pareto_png)
        summary["pareto"] = [{**vars(p), "accuracy": p.accuracy / 100.0} for p in points]
        summary["pareto_png"] = pareto_png
    atomic_write_bytes(out, result.model)
    atomic_write_json(out.with_suffix(".json"), summary)
    return summary


def sensitivity_row_json(row: dict[str, Any]) -> dict[str, Any]:
    """A sensitivity row in the JSON vocabulary: accuracy as a fraction, its loss in points."""
    out = {k: v for k, v in row.items() if k not in ("accuracy", "accuracy_loss")}
    out["accuracy"] = None if row["accuracy"] is None else row["accuracy"] / 100.0
    out["accuracy_loss_pt"] = row["accuracy_loss"]
    return out


def render_mixed(s: dict[str, Any]) -> str:
    lines = [
        f"wrote {s['output']} ({s['tflite_bytes']:,} bytes)",
        f"weights {s['weight_bytes']:,} B <= budget {s['budget_bytes']:,} B "
        f"({s['ratio_to_int8']:.2f}x of all-int8 {s['int8_weight_bytes']:,} B); "
        f"measured in file: {s['tflite_weight_bytes']:,} B",
        f"accuracy {100 * s['accuracy']:.2f} % with {s.get('rounding', 'nearest')} int4 rounding "
        f"(all-int8 {s.get('int8_baseline', INT8_BASELINE)} {100 * s['int8_accuracy']:.2f} %"
        + (f", all-int8 after the same fine-tuning {100 * s['int8_finetuned_accuracy']:.2f} %"
           if s.get("int8_finetuned_accuracy") is not None else "")
        + f", float {100 * s['float_accuracy']:.2f} %), output KL {s['kl']:.4f}",
        *(["fine-tuning not kept: the plan without it scored no worse on held-out data"]
          if s.get("int8_finetuned_accuracy") is not None and not s["finetuned"] else []),
        "layers: " + ", ".join(f"{k}={v}" for k, v in s["precisions"].items()),
        f"layer sensitivities measured on the {s.get('sensitivity_split', 'test')} split",
    ]
    for p in s.get("pareto", []):
        lines.append(f"  pareto {p['fraction']:.2f}x: {p['weight_bytes']:,} B  "
                     f"{100 * p['accuracy']:.2f} %")
    return "\n".join(lines)
