"""Accuracy of a float model and its quantized ``.tflite``, and whether the two oracles agree.

The quantized model runs on TFLite Micro's reference kernels (what the firmware computes) and on
LiteRT's reference kernels (a second opinion). LiteRT 2.3's FULLY_CONNECTED rounds once where
TFLM rounds twice, so outputs downstream of an FC may differ by one step; rather than trusting
that explanation, the report re-runs both interpreters with the FC inputs exposed as outputs and
checks they are byte-identical there, so any difference is proven to start inside an FC.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.errors import AnalyzeError
from edgeq.quantize.numerics import dequantize_outputs, quantize_inputs

log = logging.getLogger(__name__)

FC = "FULLY_CONNECTED"


@dataclass(frozen=True)
class Metric:
    """``fn(outputs, y, inputs) -> value`` on float (dequantized) outputs; ``higher_is_better``.

    ``needs_labels``: the metric compares with the dataset's labels/targets ``y``."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray | None, np.ndarray], float]
    higher_is_better: bool = True
    percent: bool = False
    needs_labels: bool = False


def _top1(outputs: np.ndarray, y: np.ndarray | None, _inputs: np.ndarray) -> float:
    if y is None:
        raise AnalyzeError(
            "top-1 accuracy needs labels; the dataset has none: pass a labelled dataset, or for "
            "an autoencoder set \"task\": \"reconstruction\" in the model's sidecar (or "
            "`edgeq evaluate MODEL --metric mse`), or \"task\": \"none\" to check agreement only"
        )
    pred = np.argmax(outputs.reshape(len(outputs), -1), axis=1)
    return float(np.mean(pred == np.asarray(y).reshape(-1)))


def _flat(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(len(a), -1)


def _targets(outputs: np.ndarray, y: np.ndarray | None, what: str) -> np.ndarray:
    """Regression targets shaped like the outputs, or a one-line error naming both shapes."""
    if y is None:
        raise AnalyzeError(f"{what} needs targets; the dataset has no 'y': save the targets as "
                           "'y' in the .npz, or set \"task\": \"none\" in the sidecar")
    t = _flat(y)
    if t.shape != _flat(outputs).shape:
        raise AnalyzeError(f"targets have {t.shape[1]} values per sample but the model output "
                           f"has {_flat(outputs).shape[1]}; save one target per output value")
    return t


def _reconstruction_mse(outputs: np.ndarray, _y: np.ndarray | None, inputs: np.ndarray) -> float:
    return float(np.mean((_flat(outputs) - _flat(inputs)) ** 2))


def _regression_mse(outputs: np.ndarray, y: np.ndarray | None, _inputs: np.ndarray) -> float:
    return float(np.mean((_flat(outputs) - _targets(outputs, y, "MSE")) ** 2))


def _regression_mae(outputs: np.ndarray, y: np.ndarray | None, _inputs: np.ndarray) -> float:
    return float(np.mean(np.abs(_flat(outputs) - _targets(outputs, y, "MAE"))))


def _reconstruction_mae(outputs: np.ndarray, _y: np.ndarray | None, inputs: np.ndarray) -> float:
    return float(np.mean(np.abs(_flat(outputs) - _flat(inputs))))


def _masks(outputs: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Predicted and true class per pixel: argmax over the output's last (class) axis."""
    if y is None:
        raise AnalyzeError("segmentation metrics need label masks; save them as 'y' (one class "
                           "index per pixel), or set \"task\": \"none\" in the sidecar")
    classes = int(outputs.shape[-1])
    pred = np.argmax(outputs, axis=-1).reshape(len(outputs), -1)
    true = np.asarray(y).reshape(len(y), -1)
    if true.shape != pred.shape:
        raise AnalyzeError(f"label masks have {true.shape[1]} pixels per sample but the model "
                           f"output has {pred.shape[1]} (shape {tuple(outputs.shape[1:])}); save "
                           "one class index per output pixel")
    return pred, true.astype(np.int64), classes


def _pixel_accuracy(outputs: np.ndarray, y: np.ndarray | None, _inputs: np.ndarray) -> float:
    pred, true, _ = _masks(outputs, y)
    return float(np.mean(pred == true))


def _mean_iou(outputs: np.ndarray, y: np.ndarray | None, _inputs: np.ndarray) -> float:
    """Mean over the classes present in the labels or the prediction of |P & T| / |P | T|."""
    pred, true, classes = _masks(outputs, y)
    ious = []
    for c in range(max(classes, int(true.max()) + 1 if true.size else 0)):
        p, t = pred == c, true == c
        union = np.logical_or(p, t).sum()
        if union:
            ious.append(np.logical_and(p, t).sum() / union)
    return float(np.mean(ious)) if ious else 0.0


def anomaly_scores(outputs: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """One score per sample: the output itself when it is one value, else the reconstruction
    error (mean squared difference to the input, an autoencoder's anomaly score)."""
    flat = _flat(outputs)
    if flat.shape[1] == 1:
        return flat[:, 0]
    if flat.shape[1] != _flat(inputs).shape[1]:
        raise AnalyzeError(f"an anomaly model outputs one score per sample, or a reconstruction "
                           f"of its input; this output has {flat.shape[1]} values and the input "
                           f"{_flat(inputs).shape[1]} - set another task in the sidecar")
    return np.mean((flat - _flat(inputs)) ** 2, axis=1)


def _auc(outputs: np.ndarray, y: np.ndarray | None, inputs: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if y is None:
        raise AnalyzeError("AUC needs labels (1 = anomaly, 0 = normal); save them as 'y', or "
                           "use --metric score")
    labels = np.asarray(y).reshape(-1)
    if set(np.unique(labels).tolist()) - {0, 1} or len(np.unique(labels)) < 2:
        raise AnalyzeError("AUC needs labels 0 (normal) and 1 (anomaly), both present in the "
                           "test split; fix 'y' or use --metric score")
    return float(roc_auc_score(labels, anomaly_scores(outputs, inputs)))


def _mean_score(outputs: np.ndarray, _y: np.ndarray | None, inputs: np.ndarray) -> float:
    return float(np.mean(anomaly_scores(outputs, inputs)))


METRICS: dict[str, Metric] = {
    "top1": Metric("top-1 accuracy", _top1, True, True, needs_labels=True),
    "mse": Metric("reconstruction MSE", _reconstruction_mse, False, False),
    "mae": Metric("reconstruction MAE", _reconstruction_mae, False, False),
    "pixel_accuracy": Metric("pixel accuracy", _pixel_accuracy, True, True, needs_labels=True),
    "miou": Metric("mean IoU", _mean_iou, True, True, needs_labels=True),
    "auc": Metric("anomaly AUC", _auc, True, False, needs_labels=True),
    "score": Metric("mean anomaly score", _mean_score, False, False),
}
# regression compares with the targets y, not with the input
REGRESSION_METRICS: dict[str, Metric] = {
    "mse": Metric("MSE", _regression_mse, False, False, needs_labels=True),
    "mae": Metric("MAE", _regression_mae, False, False, needs_labels=True),
}
TASK_METRIC = {"classification": "top1", "autoencoder": "mse", "reconstruction": "mse",
               "regression": "mse", "segmentation": "miou", "anomaly": "auc"}
NO_METRIC = "none (agreement with the oracle only)"


def metric_key(task: str, name: str | None, has_labels: bool = True) -> str | None:
    """The metric a task is scored with (``None``: task "none", agreement only)."""
    if name is None and task == "none":
        return None
    key = name or TASK_METRIC.get(task, "top1")
    if key == "auc" and name is None and not has_labels:
        return "score"  # unlabelled anomaly data: the mean score, still compared on both
    return key


def metric_for(task: str, name: str | None, has_labels: bool = True) -> Metric | None:
    key = metric_key(task, name, has_labels)
    if key is None:
        return None
    if key not in METRICS:
        raise AnalyzeError(f"unknown metric '{key}'; choose one of {', '.join(METRICS)}")
    if task == "regression" and key in REGRESSION_METRICS:
        return REGRESSION_METRICS[key]
    return METRICS[key]


def output_tasks(meta: dict[str, Any], outputs: int) -> list[str]:
    """One task per model output: a sidecar list as given (missing ones "none"), a single task
    for the first output (the others "none")."""
    from edgeq.models import sidecar_tasks

    tasks = sidecar_tasks(meta)
    if len(tasks) > outputs:
        raise AnalyzeError(f"the sidecar lists {len(tasks)} tasks but the model has {outputs} "
                           "output(s); give one task per output")
    return tasks + ["none"] * (outputs - len(tasks))


def primary_output(tasks: list[str]) -> int:
    """The output the metric (and the labels) belong to: the first with a task other than
    "none" (output 0 when every task is "none")."""
    return next((k for k, t in enumerate(tasks) if t != "none"), 0)


# --- agreement ---------------------------------------------------------------------------------


def compare_outputs(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Element-wise agreement of two output arrays (first axis = samples)."""
    if a.shape != b.shape:
        raise AnalyzeError(
            f"TFLite Micro produced shape {a.shape} where LiteRT produced {b.shape}; the model's "
            "tensor shapes are inconsistent (corrupt file?) - re-export the model"
        )
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    mism = diff != 0
    per_sample = mism.reshape(len(a), -1).any(axis=1) if len(a) else np.zeros(0, bool)
    return {
        "elements": int(a.size),
        "mismatching_elements": int(mism.sum()),
        "mismatching_bytes": int(mism.sum()) * a.dtype.itemsize,
        "samples": int(len(a)),
        "mismatching_samples": int(per_sample.sum()),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "identical": bool(not mism.any()),
    }


def fc_boundary_tensors(info: Any) -> list[int]:
    """Activation inputs of FULLY_CONNECTED ops that are not themselves downstream of an FC."""
    downstream: set[int] = set()
    boundary: list[int] = []
    for op in info.operators:  # operators are stored in execution order
        ins = [i for i in op.inputs if i >= 0 and not info.tensors[i].is_constant]
        if op.opcode == FC:
            for i in ins[:1]:
                if i not in downstream and i not in boundary:
                    boundary.append(i)
        if op.opcode == FC or any(i in downstream for i in ins):
            downstream.update(op.outputs)
    return boundary


def _expose_tensors(tflite_bytes: bytes, tensor_ids: list[int]) -> bytes:
    """A copy of the model whose graph outputs are ``tensor_ids`` (everything else unchanged)."""
    from edgeq.tflite import load_model_t, serialize_model_t

    model_t = load_model_t(tflite_bytes)
    model_t.subgraphs[0].outputs = np.asarray(tensor_ids, dtype=np.int32)
    model_t.signatureDefs = None  # signatures name the old outputs
    return serialize_model_t(model_t)


def explain_fc_differences(tflite_bytes: bytes, info: Any, x_q: np.ndarray) -> dict[str, Any]:
    """Run both oracles with the FC inputs as outputs: identical there => FC caused the rest."""
    from edgeq.oracles import run_litert_ref, run_tflm

    boundary = fc_boundary_tensors(info)
    graph_inputs = set(info.inputs)
    to_run = [t for t in boundary if t not in graph_inputs]
    result: dict[str, Any] = {
        "fc_input_tensors": [info.tensors[t].name for t in boundary],
        "compared_elements": 0,
        "identical_upstream": True,
    }
    if not to_run:
        return result  # every FC reads a graph input: nothing upstream can differ
    probe = _expose_tensors(tflite_bytes, to_run)
    a = run_tflm(probe, x_q)
    b = run_litert_ref(probe, x_q)
    for ta, tb in zip(a, b, strict=True):
        cmp = compare_outputs(ta, tb)
        result["compared_elements"] += cmp["elements"]
        result["identical_upstream"] &= cmp["identical"]
    return result


# --- the report --------------------------------------------------------------------------------


def evaluate(
    quantized: str | os.PathLike[str],
    *,
    float_model: str | os.PathLike[str] | None = None,
    data: str | None = None,
    metric: str | None = None,
    limit: int | None = None,
    arena: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a quantized ``.tflite`` (and optionally its float model) on the test split.

    Every input is fed (a multi-input dataset holds ``x_0``, ``x_1``, ...) and every output is
    compared between the oracles; each output is scored by its task (the sidecar's ``task``, one
    name or one per output), the first scored output gives the headline metric."""
    from edgeq.data import Normalization, load_dataset, prepare_input_list
    from edgeq.models import load_model, predict_keras_all
    from edgeq.oracles import run_litert_ref, run_tflm, tflm_min_arena, tflm_supports
    from edgeq.tflite import read_tflite_bytes

    qpath = Path(quantized)
    if qpath.suffix.lower() != ".tflite":
        raise AnalyzeError(
            f"{qpath}: evaluate takes a quantized .tflite; run 'edgeq quantize' first"
        )
    qmodel = load_model(qpath)
    fmodel = load_model(float_model) if float_model is not None else None
    if fmodel is not None and fmodel.kind == "tflite":
        raise AnalyzeError(f"{fmodel.path}: --float must be a Keras model, not a .tflite")
    meta = {**(fmodel.meta if fmodel else {}), **qmodel.meta}
    tflite_bytes: bytes = qmodel.model
    info = read_tflite_bytes(tflite_bytes, source=str(qpath))
    in_ts, out_ts = info.input_tensors, info.output_tensors
    tasks = output_tasks(meta, len(out_ts))
    main = primary_output(tasks)
    out_t = out_ts[main]
    spec = data or meta.get("dataset")
    if not spec:
        raise AnalyzeError(f"{qpath}: no dataset known for this model; pass --data")
    shapes: list[tuple[int | None, ...]] = [(None, *t.shape[1:]) for t in in_ts]
    ds = load_dataset(spec, input_shape=tuple(shapes[0][1:]))
    if limit is not None and limit < 1:
        raise AnalyzeError(f"--limit must be a positive number of samples, got {limit}")
    x_raw, y = ds.test_inputs(limit), ds.y_test
    if limit is not None and y is not None:
        y = y[:limit]
    metrics = [metric_for(t, metric if k == main else None, y is not None and k == main)
               for k, t in enumerate(tasks)]
    # the labels belong to the first scored output; the others get label-free metrics only
    metrics = [mk if k == main or mk is None or not mk.needs_labels else None
               for k, mk in enumerate(metrics)]
    m = metrics[main]
    if m is not None and m.name == METRICS["top1"].name and y is not None:
        from edgeq.data.checks import check_labels

        classes = int(np.prod(out_t.shape[1:])) if len(out_t.shape) > 1 else 1
        check_labels(np.asarray(y), f"dataset '{ds.name}' test labels",
                     classes if classes > 1 else None)
    xs = prepare_input_list(x_raw, shapes, Normalization.from_meta(meta),
                            source=f"dataset '{ds.name}'")
    log.debug("evaluating %s on %d samples", qpath, len(xs[0]))
    x_q = [quantize_inputs(x, t) for x, t in zip(xs, in_ts, strict=True)]

    def score(k: int, raw: np.ndarray, dequantize: bool = True) -> float | None:
        mk = metrics[k]
        if mk is None:
            return None
        out = dequantize_outputs(raw, out_ts[k]) if dequantize else raw
        return mk.fn(out, y if k == main else None, xs[0])

    from edgeq.quantize.ptq import detect_mode

    n = len(xs[0])
    key = metric_key(tasks[main], metric, y is not None)
    report: dict[str, Any] = {
        "model": str(qpath),
        "quantization": detect_mode(tflite_bytes),
        "float_model": str(fmodel.path) if fmodel else None,
        "dataset": {"name": ds.name, "split": "test", "samples": int(n)},
        "task": tasks[main],
        "metric": {"name": m.name if m is not None else NO_METRIC, "key": key,
                   "output": main},
    }
    float_outs: list[np.ndarray] | None = None
    if fmodel is not None:
        want = [tuple(s[1:]) for s in shapes]
        have = [tuple(s[1:]) for s in (fmodel.input_shapes or (fmodel.input_shape,))]
        if have != want:
            raise AnalyzeError(
                f"float model inputs {have} differ from the quantized model inputs {want}; "
                "pass the float model this .tflite came from"
            )
        float_outs = predict_keras_all(fmodel.model, xs)
        if len(float_outs) != len(out_ts):
            raise AnalyzeError(f"the float model has {len(float_outs)} outputs, the .tflite "
                               f"{len(out_ts)}; pass the float model this .tflite came from")
        report["float"] = {"value": score(main, float_outs[main], dequantize=False)}
    tflm_all = [_checked_output(o, n, "TFLite Micro")
                for o in run_tflm(tflite_bytes, x_q, progress=progress)]
    report["tflm"] = {"value": score(main, tflm_all[main])}
    ref_all: list[np.ndarray] | None = None
    try:
        ref_all = [_checked_output(o, n, "LiteRT")
                   for o in run_litert_ref(tflite_bytes, x_q, progress=progress)]
    except AnalyzeError as exc:
        report["litert_ref"] = {"error": str(exc)}
        report["agreement"] = {"verdict": "not compared (LiteRT refused the model)"}
    else:
        report["litert_ref"] = {"value": score(main, ref_all[main])}
        report["agreement"] = _agreement(
            tflite_bytes, info, x_q, tflm_all, ref_all,
            classification=m is not None and m.name == METRICS["top1"].name, main=main
        )
    report["outputs"] = [
        {"name": t.name, "task": tasks[k], "metric": metrics[k].name if metrics[k] else None,
         "float": score(k, float_outs[k], dequantize=False) if float_outs is not None else None,
         "tflm": score(k, tflm_all[k]),
         "litert_ref": score(k, ref_all[k]) if ref_all is not None else None,
         **_io_desc(t)}
        for k, t in enumerate(out_ts)
    ]
    if fmodel is not None and report["float"]["value"] is not None:
        report["delta"] = report["tflm"]["value"] - report["float"]["value"]
    ok, reason = tflm_supports(tflite_bytes)
    counts = Counter(op.opcode for op in info.operators)
    report["ops"] = {name: counts[name] for name in info.op_names}
    report["tflm_supported"] = ok
    if not ok:
        report["tflm_unsupported_reason"] = reason
    report["arena_bytes"] = tflm_min_arena(tflite_bytes) if arena and ok else None
    report["model_bytes"] = info.size_bytes
    report["weight_bytes"] = info.weight_bytes()
    report["input"] = _io_desc(in_ts[0])
    report["inputs"] = [{"name": t.name, **_io_desc(t)} for t in in_ts]
    report["output"] = _io_desc(out_t)
    report["percent_metric"] = m.percent if m is not None else False
    return report


def score_raw_outputs(tflite: str | os.PathLike[str], outputs: list[np.ndarray],
                      y: np.ndarray | None, x_q: list[np.ndarray]) -> tuple[str, float] | None:
    """The headline metric of the model's task on raw outputs (device or oracle, same samples):
    outputs dequantized, the first input dequantized where the metric compares with it.
    ``None`` for task "none" or a metric that needs labels the data does not have."""
    from edgeq.models import read_sidecar
    from edgeq.tflite import read_tflite

    info = read_tflite(tflite)
    tasks = output_tasks(read_sidecar(tflite), len(info.outputs))
    main = primary_output(tasks)
    m = metric_for(tasks[main], None, y is not None)
    if m is None or (m.needs_labels and y is None):
        return None
    in_t = info.input_tensors[0]
    x = (dequantize_outputs(x_q[0], in_t) if in_t.quant is not None
         else np.asarray(x_q[0], np.float32))
    out = dequantize_outputs(np.asarray(outputs[main]), info.output_tensors[main])
    return m.name, m.fn(out, y, x)


def _checked_output(raw: np.ndarray, samples: int, who: str) -> np.ndarray:
    """One non-empty output per sample, or the model's shapes are broken."""
    if raw.ndim == 0 or raw.shape[0] != samples or raw.size == 0:
        raise AnalyzeError(f"{who} returned an output of shape {raw.shape} for {samples} "
                           "samples; the model's output shape is broken - re-export the model")
    return raw


def _io_desc(t: Any) -> dict[str, Any]:
    return {
        "shape": list(t.shape),
        "dtype": t.dtype,
        "scale": float(t.quant.scale[0]) if t.quant is not None else None,
        "zero_point": int(t.quant.zero_point[0]) if t.quant is not None else None,
    }


def compare_output_lists(a: list[np.ndarray], b: list[np.ndarray]) -> dict[str, Any]:
    """``compare_outputs`` over every model output: totals, and a sample counts as mismatching
    when any of its outputs differs."""
    parts = [compare_outputs(x, y) for x, y in zip(a, b, strict=True)]
    n = len(a[0])
    bad = np.zeros(n, bool)
    for x, y in zip(a, b, strict=True):
        bad |= (x.astype(np.float64) != y.astype(np.float64)).reshape(n, -1).any(axis=1)
    out: dict[str, Any] = {
        "elements": sum(p["elements"] for p in parts),
        "mismatching_elements": sum(p["mismatching_elements"] for p in parts),
        "mismatching_bytes": sum(p["mismatching_bytes"] for p in parts),
        "samples": n,
        "mismatching_samples": int(bad.sum()),
        "max_abs_diff": max(p["max_abs_diff"] for p in parts),
        "identical": all(p["identical"] for p in parts),
    }
    if len(parts) > 1:
        out["per_output"] = parts
    return out


def _agreement(
    tflite_bytes: bytes,
    info: Any,
    x_q: list[np.ndarray],
    tflm_all: list[np.ndarray],
    ref_all: list[np.ndarray],
    classification: bool,
    main: int = 0,
) -> dict[str, Any]:
    agree = compare_output_lists(tflm_all, ref_all)
    tflm_raw, ref_raw = tflm_all[main], ref_all[main]
    step = _float_output_step(info)
    if step is not None:  # float I/O: express the difference in int8 steps before DEQUANTIZE
        agree["max_abs_diff_steps"] = round(agree["max_abs_diff"] / step, 3)
    has_fc = FC in info.op_names
    agree["has_fully_connected"] = has_fc
    if classification and tflm_raw.ndim >= 2 and tflm_raw.shape[-1] > 1:
        pred_a = np.argmax(tflm_raw.reshape(len(tflm_raw), -1), axis=1)
        pred_b = np.argmax(ref_raw.reshape(len(ref_raw), -1), axis=1)
        agree["top1_disagreements"] = int(np.sum(pred_a != pred_b))
    if agree["identical"]:
        agree["verdict"] = "identical"
        agree["explanation"] = "TFLM and LiteRT reference kernels agree on every output byte"
        return agree
    if not has_fc:
        agree["verdict"] = "unexplained"
        agree["explanation"] = (
            "outputs differ and the model has no FULLY_CONNECTED; this is not a known rounding "
            "difference - report it"
        )
        return agree
    upstream = explain_fc_differences(tflite_bytes, info, x_q)
    agree["upstream_of_fc"] = upstream
    if upstream["identical_upstream"]:
        where = (
            f"inputs of FULLY_CONNECTED are byte-identical ({upstream['compared_elements']} "
            "values compared)"
            if upstream["compared_elements"]
            else "the first FULLY_CONNECTED reads the model input directly"
        )
        agree["verdict"] = "explained"
        agree["explanation"] = (
            f"{where}, so the differences start in FULLY_CONNECTED, where LiteRT 2.3 rounds "
            "once and TFLM (default build) rounds twice"
        )
    else:
        agree["verdict"] = "unexplained"
        agree["explanation"] = (
            "outputs already differ upstream of FULLY_CONNECTED; not the known FC rounding "
            "difference - report it"
        )
    return agree


def _float_output_step(info: Any) -> float | None:
    """Quantization step of the tensor a final DEQUANTIZE turns into the float output."""
    out = info.output_tensors[0]
    producer = info.producer(out.index)
    if out.dtype != "float32" or producer is None or producer.opcode != "DEQUANTIZE":
        return None
    q = info.tensors[producer.inputs[0]].quant
    return float(q.scale[0]) if q is not None else None


# --- human rendering ---------------------------------------------------------------------------


_PERCENT_NAMES = {m.name for m in METRICS.values() if m.percent}


def _fmt_value(v: float | None, percent: bool) -> str:
    if v is None:
        return "-"
    return f"{v * 100:.2f} %" if percent else f"{v:.6g}"


def render_report(r: dict[str, Any]) -> str:
    """The table ``edgeq evaluate`` prints."""
    pct = r.get("percent_metric", True)
    mname = r["metric"]["name"]
    ds = r["dataset"]
    rows: list[tuple[str, str]] = [
        ("model", r["model"]),
        ("dataset", f"{ds['name']} ({ds['split']} split, {ds['samples']} samples)"),
    ]
    if "float" in r:
        rows.append((f"float {mname}", _fmt_value(r["float"]["value"], pct)))
    q = r.get("quantization", "int8")
    rows.append((f"{q} {mname} (TFLM ref)", _fmt_value(r["tflm"]["value"], pct)))
    if "error" in r["litert_ref"]:
        rows.append(("LiteRT-ref", f"not run: {r['litert_ref']['error']}"))
    else:
        rows.append((f"{q} {mname} (LiteRT ref)", _fmt_value(r["litert_ref"]["value"], pct)))
    if "delta" in r:
        d = r["delta"]
        rows.append((f"delta ({q} - float)", f"{d * 100:+.2f} points" if pct else f"{d:+.6g}"))
    a = r["agreement"]
    if "elements" in a:
        rows.append(
            (
                "TFLM vs LiteRT-ref",
                f"{a['mismatching_elements']} of {a['elements']} output values differ "
                f"({a['mismatching_samples']} of {a['samples']} samples), "
                f"max |diff| {a['max_abs_diff']:g}"
                + (f" ({a['max_abs_diff_steps']:g} steps)" if "max_abs_diff_steps" in a else ""),
            )
        )
        if "top1_disagreements" in a:
            rows.append(("  top-1 disagreements", str(a["top1_disagreements"])))
        rows.append(("  verdict", f"{a['verdict']}: {a['explanation']}"))
    else:
        rows.append(("TFLM vs LiteRT-ref", a["verdict"]))
    outs = r.get("outputs", [])
    for k, o in enumerate(outs if len(outs) > 1 else []):
        pct_k = o["metric"] in _PERCENT_NAMES
        value = (f"{o['metric']} {_fmt_value(o['tflm'], pct_k)} (TFLM)"
                 if o["metric"] else "agreement only")
        rows.append((f"output {k}", f"{o['name']} {tuple(o['shape'])} {o['task']}: {value}"))
    ops = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in r["ops"].items())
    rows.append(("ops", ops))
    rows.append(
        (
            "TFLM supports all ops",
            "yes" if r["tflm_supported"] else f"no: {r.get('tflm_unsupported_reason')}",
        )
    )
    arena = r["arena_bytes"]
    rows.append(("TFLM arena (min)", f"{arena:,} bytes" if arena is not None else "-"))
    rows.append(("model size", f"{r['model_bytes']:,} bytes ({r['weight_bytes']:,} in constants)"))
    for k, io in enumerate(r.get("inputs") or [r["input"]]):
        rows.append(
            ("input" if len(r.get("inputs") or [1]) == 1 else f"input {k}",
             f"{io['dtype']} {tuple(io['shape'])} scale {io['scale']} zp {io['zero_point']}")
        )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
