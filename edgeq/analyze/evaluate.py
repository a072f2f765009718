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
    """``fn(outputs, y, inputs) -> value`` on float (dequantized) outputs; ``higher_is_better``."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray | None, np.ndarray], float]
    higher_is_better: bool = True
    percent: bool = False


def _top1(outputs: np.ndarray, y: np.ndarray | None, _inputs: np.ndarray) -> float:
    if y is None:
        raise AnalyzeError(
            "top-1 accuracy needs labels; the dataset has none: pass a labelled dataset, or for "
            "an autoencoder set \"task\": \"reconstruction\" in the model's sidecar (or "
            "`edgeq evaluate MODEL --metric mse`)"
        )
    pred = np.argmax(outputs.reshape(len(outputs), -1), axis=1)
    return float(np.mean(pred == np.asarray(y).reshape(-1)))


def _reconstruction_mse(outputs: np.ndarray, _y: np.ndarray | None, inputs: np.ndarray) -> float:
    return float(
        np.mean((outputs.reshape(len(outputs), -1) - inputs.reshape(len(inputs), -1)) ** 2)
    )


METRICS: dict[str, Metric] = {
    "top1": Metric("top-1 accuracy", _top1, True, True),
    "mse": Metric("reconstruction MSE", _reconstruction_mse, False, False),
}
TASK_METRIC = {"classification": "top1", "autoencoder": "mse", "reconstruction": "mse"}


def metric_for(task: str, name: str | None) -> Metric:
    key = name or TASK_METRIC.get(task, "top1")
    if key not in METRICS:
        raise AnalyzeError(f"unknown metric '{key}'; choose one of {', '.join(METRICS)}")
    return METRICS[key]


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
    """Evaluate a quantized ``.tflite`` (and optionally its float model) on the test split."""
    from edgeq.data import Normalization, load_dataset, prepare_inputs
    from edgeq.models import load_model, predict_keras
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
    if len(info.inputs) != 1 or len(info.outputs) != 1:
        raise AnalyzeError(
            f"{qpath}: evaluate handles single-input, single-output models "
            f"({len(info.inputs)} inputs, {len(info.outputs)} outputs)"
        )
    in_t, out_t = info.input_tensors[0], info.output_tensors[0]
    spec = data or meta.get("dataset")
    if not spec:
        raise AnalyzeError(f"{qpath}: no dataset known for this model; pass --data")
    in_shape: tuple[int | None, ...] = (None, *in_t.shape[1:])
    ds = load_dataset(spec, input_shape=tuple(in_shape[1:]))
    x_raw, y = ds.x_test, ds.y_test
    if limit is not None and limit < 1:
        raise AnalyzeError(f"--limit must be a positive number of samples, got {limit}")
    if limit is not None:
        x_raw, y = x_raw[:limit], (None if y is None else y[:limit])
    task = str(meta.get("task", "classification"))
    m = metric_for(task, metric)
    if m is METRICS["top1"] and y is not None:
        from edgeq.data.checks import check_labels

        classes = int(np.prod(out_t.shape[1:])) if len(out_t.shape) > 1 else 1
        check_labels(np.asarray(y), f"dataset '{ds.name}' test labels",
                     classes if classes > 1 else None)
    x = prepare_inputs(
        x_raw, in_shape, Normalization.from_meta(meta), source=f"dataset '{ds.name}'"
    )
    log.debug("evaluating %s on %d samples", qpath, len(x))
    x_q = quantize_inputs(x, in_t)

    from edgeq.quantize.ptq import detect_mode

    report: dict[str, Any] = {
        "model": str(qpath),
        "quantization": detect_mode(tflite_bytes),
        "float_model": str(fmodel.path) if fmodel else None,
        "dataset": {"name": ds.name, "split": "test", "samples": int(len(x))},
        "metric": {"name": m.name, "key": metric or TASK_METRIC.get(task, "top1")},
    }
    if fmodel is not None:
        if tuple(fmodel.input_shape[1:]) != tuple(in_shape[1:]):
            raise AnalyzeError(
                f"float model input {fmodel.input_shape[1:]} differs from the quantized "
                f"model input {in_shape[1:]}; pass the float model this .tflite came from"
            )
        float_out = predict_keras(fmodel.model, x)
        report["float"] = {"value": m.fn(float_out, y, x)}
    tflm_raw = _checked_output(run_tflm(tflite_bytes, x_q, progress=progress)[0], len(x_q),
                               "TFLite Micro")
    report["tflm"] = {"value": m.fn(dequantize_outputs(tflm_raw, out_t), y, x)}
    try:
        ref_raw = _checked_output(run_litert_ref(tflite_bytes, x_q, progress=progress)[0],
                                  len(x_q), "LiteRT")
    except AnalyzeError as exc:
        report["litert_ref"] = {"error": str(exc)}
        report["agreement"] = {"verdict": "not compared (LiteRT refused the model)"}
    else:
        report["litert_ref"] = {"value": m.fn(dequantize_outputs(ref_raw, out_t), y, x)}
        report["agreement"] = _agreement(
            tflite_bytes, info, x_q, tflm_raw, ref_raw, classification=m is METRICS["top1"]
        )
    if fmodel is not None:
        delta = report["tflm"]["value"] - report["float"]["value"]
        report["delta"] = delta
    ok, reason = tflm_supports(tflite_bytes)
    counts = Counter(op.opcode for op in info.operators)
    report["ops"] = {name: counts[name] for name in info.op_names}
    report["tflm_supported"] = ok
    if not ok:
        report["tflm_unsupported_reason"] = reason
    report["arena_bytes"] = tflm_min_arena(tflite_bytes) if arena and ok else None
    report["model_bytes"] = info.size_bytes
    report["weight_bytes"] = info.weight_bytes()
    report["input"] = _io_desc(in_t)
    report["output"] = _io_desc(out_t)
    report["percent_metric"] = m.percent
    return report


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


def _agreement(
    tflite_bytes: bytes,
    info: Any,
    x_q: np.ndarray,
    tflm_raw: np.ndarray,
    ref_raw: np.ndarray,
    classification: bool,
) -> dict[str, Any]:
    agree = compare_outputs(tflm_raw, ref_raw)
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
    io = r["input"]
    rows.append(
        ("input", f"{io['dtype']} {tuple(io['shape'])} scale {io['scale']} zp {io['zero_point']}")
    )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
