"""Where an int8 model loses precision: per-layer SQNR, ranges, saturation, weight spread.

Both models run on the reference kernels with every intermediate tensor kept: the float model as
a float ``.tflite`` (same ops as the int8 one, so tensors pair one to one) and the int8 model, whose
intermediates are dequantized. Errors therefore *accumulate* through the int8 graph, as they do
on a device. Model-level figures (accuracy, softmax KL, top-1 agreement, output SQNR) come from
the same run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.errors import AnalyzeError, first_line
from edgeq.quantize import numerics

WEIGHTED_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0, "TRANSPOSE_CONV": 0}
SKIP_OPS = {"QUANTIZE", "DEQUANTIZE"}
HIST_VALUES = 20000  # float values kept per tensor for histograms


@dataclass
class LayerStats:
    """One op's output tensor in the int8 model against the same tensor in the float model."""

    op_index: int
    op: str
    tensor: str
    shape: list[int]
    sqnr_db: float
    scale: float
    zero_point: int
    range_used: tuple[float, float]
    range_observed: tuple[float, float]
    clipped_fraction: float
    range_bulk: tuple[float, float] = (0.0, 0.0)  # 0.1 / 99.9 percentiles of the float values
    weight_per_channel: bool | None = None
    weight_spread: float | None = None  # max/min of per-channel |w| max: the per-tensor danger sign
    weight_bits: int | None = None  # distinct levels actually used, as bits
    weight_channel_absmax: list[float] = field(default_factory=list, repr=False)
    dtype: str = "int8"
    input_sqnr_db: float = math.inf  # SQNR of the activation this op reads (errors so far)
    keras_layer: str | None = None  # the Keras layer the op came from (edgeq.tflite.layer_names)

    @property
    def own_drop_db(self) -> float:
        """SQNR lost across this op (input minus output); ``inf`` when its input was exact."""
        if self.sqnr_db == math.inf:
            return 0.0
        return self.input_sqnr_db - self.sqnr_db

    @property
    def own_sqnr_db(self) -> float:
        """The SQNR this op would have on an exact input: the noise it *adds*, not inherits.

        Noise-to-signal ratios add (independent errors, unit gain), so the op's own share is
        ``NSR_out - NSR_in``; an op that removes noise (ReLU, pooling) gets ``inf``.
        """
        own = _nsr(self.sqnr_db) - _nsr(self.input_sqnr_db)
        return math.inf if own <= 0 else -10.0 * math.log10(own)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sqnr_db"] = _finite(self.sqnr_db)
        d["input_sqnr_db"] = _finite(self.input_sqnr_db)
        d["own_drop_db"] = _finite(self.own_drop_db)
        d["own_sqnr_db"] = _finite(self.own_sqnr_db)
        return d


@dataclass
class ModelStats:
    samples: int
    float_accuracy: float | None
    int8_accuracy: float | None
    top1_agreement: float | None
    kl_softmax: float | None
    output_sqnr_db: float


@dataclass
class Analysis:
    layers: list[LayerStats]
    model: ModelStats
    sanity: list[dict[str, float]]
    histograms: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    suggestions: list[str] = field(default_factory=list)

    def worst(self, n: int = 3) -> list[LayerStats]:
        return sorted(self.layers, key=lambda s: s.sqnr_db)[:n]

    def as_dict(self) -> dict[str, Any]:
        m = asdict(self.model)
        m["output_sqnr_db"] = _finite(self.model.output_sqnr_db)
        return {
            "layers": [s.as_dict() for s in self.layers],
            "model": m,
            "sanity_6db": self.sanity,
            "suggestions": self.suggestions,
        }


def _nsr(sqnr_db: float) -> float:
    return 0.0 if sqnr_db == math.inf else math.inf if sqnr_db == -math.inf else 10 ** (-sqnr_db / 10)


def _finite(v: float) -> float | str:
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")


# --- the 6.02·b sanity line ----------------------------------------------------------------------


def sanity_6db(bits: tuple[int, ...] = (4, 8, 16), n: int = 200_000, seed: int = 0) -> list[dict[str, float]]:
    """SQNR of a full-scale uniform signal through edgeq's quantizer vs 20·log10(2^b) ≈ 6.02·b."""
    rng = np.random.default_rng(seed)
    out = []
    for b in bits:
        dtype = {4: "int4", 8: "int8", 16: "int16"}[b]
        lo, hi = numerics.qrange(dtype)
        scale = 2.0 / (1 << b)
        # full scale: exactly the span the grid covers, [lo - 1/2, hi + 1/2] steps
        x = rng.uniform((lo - 0.5) * scale, (hi + 0.5) * scale, n)
        q = numerics.dequantize(numerics.quantize(x, scale, 0, dtype), scale, 0)
        measured = numerics.sqnr_db(x, q)
        theory = numerics.sqnr_theory_db(b)
        out.append({"bits": b, "sqnr_db": measured, "theory_db": theory,
                    "delta_db": measured - theory})
    return out


# --- float reference -----------------------------------------------------------------------------


def float_tflite(model: Any) -> bytes:
    """A float ``.tflite`` of a Keras model (tf-keras or Keras 3), for tensor-by-tensor reference."""
    from edgeq.tfenv import import_tf

    if isinstance(model, bytes | bytearray):
        return bytes(model)
    tf = import_tf()
    try:
        if type(model).__module__.startswith("tf_keras"):
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
        else:
            spec = [tf.TensorSpec([1, *t.shape[1:]], tf.float32) for t in model.inputs]
            fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False))
            concrete = fn.get_concrete_function(*spec)
            # the tf.function as trackable, so variables are frozen into constants
            converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
        return bytes(converter.convert())
    except Exception as exc:
        msg = first_line(exc, 160)
        raise AnalyzeError(f"could not convert the float model for reference: {msg}") from None


def _compute_ops(model: Any) -> list[Any]:
    return [op for op in model.operators if op.opcode not in SKIP_OPS]


def pair_tensors(int8_model: Any, float_model: Any) -> list[tuple[Any, int]]:
    """(int8 op, float tensor index) for each compute op's output.

    Tensor names first (same converter, same names); else the op sequences must match.
    """
    float_names = {t.name: t.index for t in float_model.tensors if not t.is_constant}
    ops = _compute_ops(int8_model)
    by_name = [(op, float_names.get(int8_model.tensors[op.outputs[0]].name)) for op in ops]
    if all(i is not None for _, i in by_name):
        return [(op, int(i)) for op, i in by_name]
    # otherwise walk both graphs in order, pairing ops of the same kind and output shape
    fops = _compute_ops(float_model)
    pairs: list[tuple[Any, int]] = []
    k = 0
    for op in ops:
        sig = (op.opcode, int8_model.tensors[op.outputs[0]].shape)
        for j in range(k, len(fops)):
            if (fops[j].opcode, float_model.tensors[fops[j].outputs[0]].shape) == sig:
                pairs.append((op, fops[j].outputs[0]))
                k = j + 1
                break
    if len(pairs) < max(1, (len(ops) + 1) // 2) or pairs[-1][0] is not ops[-1]:
        raise AnalyzeError(
            "the float model's ops do not line up with the quantized model's; "
            "pass the float model this .tflite was converted from"
        )
    return pairs


# --- the analysis --------------------------------------------------------------------------------


def _quantize_input(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dt = np.dtype(detail["dtype"])
    if dt == np.float32:
        return x.astype(np.float32)
    scale, zp = detail["quantization"]
    return numerics.quantize(x, scale, zp, dt.name)


def _dequant(v: np.ndarray, t: Any) -> np.ndarray:
    if t.quant is None or v.dtype == np.float32:
        return v.astype(np.float64)
    return numerics.dequantize(v, float(t.quant.scale[0]), int(t.quant.zero_point[0]))


def _weight_info(model: Any, op: Any) -> tuple[bool | None, float | None, int | None, list[float]]:
    axis = WEIGHTED_OPS.get(op.opcode)
    if axis is None or len(op.inputs) < 2 or op.inputs[1] < 0:
        return None, None, None, []
    w = model.tensors[op.inputs[1]]
    if w.data is None or w.quant is None:
        return None, None, None, []
    q = w.data.astype(np.float64)
    per_channel = w.quant.scale.size > 1
    ax = w.quant.axis if per_channel else axis
    scale = w.quant.scale.astype(np.float64)
    shape = [1] * q.ndim
    shape[ax] = -1
    real = q * (scale.reshape(shape) if per_channel else scale[0])
    red = tuple(i for i in range(q.ndim) if i != ax)
    absmax = np.max(np.abs(real), axis=red)
    nz = absmax[absmax > 0]
    spread = float(nz.max() / nz.min()) if nz.size else None
    # bits the symmetric grid actually spans: 2·max|q| + 1 levels (127 -> 8 bits, 7 -> 4 bits)
    bits = max(1, math.ceil(math.log2(2 * float(np.max(np.abs(q))) + 2)))
    return per_channel, spread, bits, [float(a) for a in absmax]


def _probabilities(y: np.ndarray) -> np.ndarray:
    y = y.reshape(len(y), -1).astype(np.float64)
    if np.all(y >= 0) and np.allclose(y.sum(axis=1), 1.0, atol=2e-2):
        return y / y.sum(axis=1, keepdims=True)
    e = np.exp(y - y.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _run_pairs(q_bytes: bytes, f_bytes: bytes, x: np.ndarray, pair_ids: list[tuple[int, int]],
               used: list[tuple[float, float, float, float]],
               in_ids: list[tuple[int, int] | None]) -> dict[str, Any]:
    """Both models on the reference kernels, sample by sample (runs in the oracle worker)."""
    from edgeq.oracles import litert_ref_interpreter
    from edgeq.tflite import read_tflite_bytes

    q_model = read_tflite_bytes(q_bytes)
    qi = litert_ref_interpreter(q_bytes)
    fi = litert_ref_interpreter(f_bytes)
    q_in = qi.get_input_details()[0]
    f_in = fi.get_input_details()[0]
    want = tuple(int(d) for d in f_in["shape"][1:])
    if tuple(x.shape[1:]) != want:
        if int(np.prod(x.shape[1:])) != int(np.prod(want)):
            raise AnalyzeError(f"samples have shape {x.shape[1:]} but the model input is {want}; "
                               "use the dataset the model was trained on")
        x = x.reshape((len(x), *want))
    n = len(pair_ids)
    sig = np.zeros(n)
    noise = np.zeros(n)
    obs_lo = np.full(n, np.inf)
    obs_hi = np.full(n, -np.inf)
    clipped = np.zeros(n)
    count = np.zeros(n)
    hist: list[list[np.ndarray]] = [[] for _ in range(n)]
    kept = np.zeros(n, dtype=np.int64)
    in_sig = np.zeros(n)
    in_noise = np.zeros(n)
    f_outs, q_outs = [], []
    for k in range(len(x)):
        xs = x[k : k + 1]
        fi.set_tensor(f_in["index"], xs.reshape(f_in["shape"]))
        qi.set_tensor(q_in["index"], _quantize_input(xs, q_in).reshape(q_in["shape"]))
        fi.invoke()
        qi.invoke()
        for j, (q_idx, fidx) in enumerate(pair_ids):
            fv = fi.get_tensor(fidx).astype(np.float64).reshape(-1)
            t = q_model.tensors[q_idx]
            qv = _dequant(qi.get_tensor(t.index), t).reshape(-1)
            if fv.size != qv.size:
                raise AnalyzeError(f"tensor '{t.name}' has {qv.size} values in the int8 model but "
                                   f"{fv.size} in the float model; pass the matching float model")
            if in_ids[j] is not None:
                q_in_idx, f_in_idx = in_ids[j]
                qt = q_model.tensors[q_in_idx]
                fin_v = fi.get_tensor(f_in_idx).astype(np.float64).reshape(-1)
                qin_v = _dequant(qi.get_tensor(qt.index), qt).reshape(-1)
                if fin_v.size == qin_v.size:
                    in_sig[j] += float(np.sum(fin_v**2))
                    in_noise[j] += float(np.sum((fin_v - qin_v) ** 2))
            sig[j] += float(np.sum(fv**2))
            noise[j] += float(np.sum((fv - qv) ** 2))
            obs_lo[j] = min(obs_lo[j], float(fv.min()))
            obs_hi[j] = max(obs_hi[j], float(fv.max()))
            clipped[j] += int(np.sum((fv < used[j][2]) | (fv > used[j][3])))
            count[j] += fv.size
            if kept[j] < HIST_VALUES:
                hist[j].append(fv[: HIST_VALUES - kept[j]].astype(np.float32))
                kept[j] += min(fv.size, HIST_VALUES - kept[j])
        f_outs.append([fi.get_tensor(d["index"]).copy() for d in fi.get_output_details()])
        q_outs.append([_dequant(qi.get_tensor(d["index"]), q_model.tensors[d["index"]])
                       for d in qi.get_output_details()])
    return {"sig": sig, "noise": noise, "obs_lo": obs_lo, "obs_hi": obs_hi, "clipped": clipped,
            "count": count, "hist": hist, "f_outs": f_outs, "q_outs": q_outs, "x": x,
            "in_sig": in_sig, "in_noise": in_noise}


def analyze(
    int8_model: bytes | str | Path,
    float_model: Any,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    max_samples: int = 500,
) -> Analysis:
    """Compare the int8 model with its float source on ``x`` (float inputs the float model takes)."""
    from edgeq.oracles import isolated
    from edgeq.tflite import read_tflite_bytes

    q_bytes = int8_model if isinstance(int8_model, bytes) else Path(int8_model).read_bytes()
    q_source = "the model" if isinstance(int8_model, bytes) else str(int8_model)
    q_model = read_tflite_bytes(q_bytes, source=q_source)
    if not any(t.dtype in ("int8", "int16", "uint8") and not t.is_constant for t in q_model.tensors):
        raise AnalyzeError("the model to analyze has no quantized activations; pass an int8 .tflite")
    f_bytes = float_tflite(float_model)
    f_model = read_tflite_bytes(f_bytes, source="<float>")
    q_out = [tuple(t.shape[1:]) for t in q_model.output_tensors]
    f_out = [tuple(t.shape[1:]) for t in f_model.output_tensors]
    if q_out != f_out:
        raise AnalyzeError(
            f"the float model outputs {f_out} but the quantized model outputs {q_out}; "
            "pass the float model this .tflite was made from"
        )
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        raise AnalyzeError("no samples to analyze; give a dataset with test samples")
    if max_samples and len(x) > max_samples:
        x = x[:max_samples]
        y = None if y is None else y[:max_samples]
    pairs = pair_tensors(q_model, f_model)

    # the activation each op reads: another op's output (paired) or the model input
    q2f = {op.outputs[0]: fidx for op, fidx in pairs}
    q2f[q_model.inputs[0]] = f_model.inputs[0]
    for op in q_model.operators:  # float I/O: the QUANTIZE of the input carries the same values
        if op.opcode == "QUANTIZE" and op.inputs and op.inputs[0] in q2f:
            q2f[op.outputs[0]] = q2f[op.inputs[0]]
    in_pair = [next((i for i in op.inputs if i in q2f), None) for op, _ in pairs]
    in_ids = [None if i is None else (i, q2f[i]) for i in in_pair]
    used = []
    for op, _ in pairs:
        t = q_model.tensors[op.outputs[0]]
        if t.quant is None:
            used.append((0.0, 1.0, -math.inf, math.inf))
            continue
        s, z = float(t.quant.scale[0]), int(t.quant.zero_point[0])
        lo_q, hi_q = numerics.qrange(t.dtype) if t.dtype in ("int8", "int16", "uint8") else (-128, 127)
        used.append((s, z, (lo_q - z - 0.5) * s, (hi_q - z + 0.5) * s))
    pair_ids = [(op.outputs[0], fidx) for op, fidx in pairs]
    run = isolated(_run_pairs, q_bytes, f_bytes, x, pair_ids, used, in_ids, source=q_source)
    sig, noise, obs_lo, obs_hi = run["sig"], run["noise"], run["obs_lo"], run["obs_hi"]
    clipped, count, hist = run["clipped"], run["count"], run["hist"]
    f_outs, q_outs, x = run["f_outs"], run["q_outs"], run["x"]
    in_sig, in_noise = run["in_sig"], run["in_noise"]

    from edgeq.quantize.ptq import is_keras3_model
    from edgeq.tflite.layer_names import model_layer_names, op_layer_name

    known, keras3 = model_layer_names(float_model), is_keras3_model(float_model)
    layers: list[LayerStats] = []
    histograms: dict[str, np.ndarray] = {}
    for j, (op, _) in enumerate(pairs):
        t = q_model.tensors[op.outputs[0]]
        s, z, lo_u, hi_u = used[j]
        per_ch, spread, wbits, absmax = _weight_info(q_model, op)
        sq = _sqnr(sig[j], noise[j])
        layers.append(LayerStats(
            op_index=op.index, op=op.opcode, tensor=t.name, shape=list(t.shape), sqnr_db=sq,
            scale=s, zero_point=z, range_used=(lo_u + 0.5 * s, hi_u - 0.5 * s),
            range_observed=(float(obs_lo[j]), float(obs_hi[j])),
            clipped_fraction=float(clipped[j] / max(count[j], 1)),
            weight_per_channel=per_ch, weight_spread=spread, weight_bits=wbits,
            weight_channel_absmax=absmax,
            dtype=t.dtype,
            input_sqnr_db=_sqnr(in_sig[j], in_noise[j]) if in_pair[j] is not None else math.inf,
            keras_layer=op_layer_name(q_model, op.index, known, keras3),
        ))
        histograms[t.name] = np.concatenate(hist[j]) if hist[j] else np.zeros(0, np.float32)
        if histograms[t.name].size:
            lo_b, hi_b = np.percentile(histograms[t.name], [0.1, 99.9])
            layers[-1].range_bulk = (float(lo_b), float(hi_b))

    f_out = np.concatenate([o[0] for o in f_outs]).reshape(len(x), -1).astype(np.float64)
    q_out = np.concatenate([o[0] for o in q_outs]).reshape(len(x), -1)
    out_sqnr = numerics.sqnr_db(f_out, q_out)
    classify = f_out.shape[1] > 1
    f_acc = q_acc = agree = kl = None
    if classify:
        fa, qa = f_out.argmax(1), q_out.argmax(1)
        agree = float(np.mean(fa == qa))
        p, q = _probabilities(f_out), _probabilities(q_out)
        kl = _mean_kl(p, q)
        if y is not None:
            yy = np.asarray(y).reshape(-1)
            f_acc, q_acc = float(np.mean(fa == yy)), float(np.mean(qa == yy))
    model = ModelStats(samples=len(x), float_accuracy=f_acc, int8_accuracy=q_acc,
                       top1_agreement=agree, kl_softmax=kl, output_sqnr_db=out_sqnr)
    return Analysis(layers=layers, model=model, sanity=sanity_6db(), histograms=histograms)


def _mean_kl(p: np.ndarray, q: np.ndarray, floor: float = 1e-6) -> float:
    """Mean KL(p||q) over samples; probabilities floored at 1e-6 (int8 softmax rounds small ones
    to exactly 0, which would make KL infinite for a difference nobody can act on)."""
    p = np.maximum(p, floor)
    q = np.maximum(q, floor)
    p /= p.sum(axis=1, keepdims=True)
    q /= q.sum(axis=1, keepdims=True)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def _sqnr(signal: float, noise: float) -> float:
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


# --- what to try -----------------------------------------------------------------------------------


NOISE_PT = 0.2  # accuracy changes below this many points are run-to-run noise on 1,000 samples


def blame(analysis: Analysis, n: int = 3) -> list[LayerStats]:
    """The ``n`` layers that *add* the most error, worst first (own SQNR, then clipping).

    Accumulated SQNR names every layer downstream of the culprit; the noise a layer adds on
    top of its input (:attr:`LayerStats.own_sqnr_db`) names the culprit itself.
    """
    from edgeq.quantize.calibration import FIXED_RANGE_OPS

    cands = [s for s in analysis.layers if s.op not in FIXED_RANGE_OPS]
    return sorted(cands, key=lambda s: (s.own_sqnr_db, -s.clipped_fraction))[:n]


def lost_nothing(analysis: Analysis) -> bool:
    m = analysis.model
    if m.float_accuracy is not None and m.int8_accuracy is not None:
        return 100 * (m.float_accuracy - m.int8_accuracy) <= NOISE_PT
    return m.top1_agreement is not None and m.top1_agreement >= 0.995


def suggest(analysis: Analysis, n: int = 3, *, calibration: str | None = None) -> list[str]:
    """Name the layers that add the most error and what to try for each — only what is not in use.

    ``calibration`` is the calibrator the model was made with (from its manifest), so it is
    never suggested again. A model that lost nothing (accuracy within noise, or top-1 agreement
    >= 99.5 % without labels) gets "nothing to do".
    """
    m = analysis.model
    if lost_nothing(analysis):
        if m.float_accuracy is not None and m.int8_accuracy is not None:
            why = (f"int8 {100 * m.int8_accuracy:.1f} % vs float {100 * m.float_accuracy:.1f} % "
                   f"on {m.samples} samples")
        else:
            why = f"top-1 agreement with float {100 * (m.top1_agreement or 0):.1f} %"
        return [f"nothing to do: the model lost nothing beyond noise ({why})"]
    int16 = any(s.dtype == "int16" for s in analysis.layers)
    in_use = (calibration or "minmax").split(":")[0]
    tips: list[str] = []
    for s in blame(analysis, n):
        if s.own_sqnr_db >= 40.0 and s.clipped_fraction <= 1e-3:
            continue
        own = "exact" if s.own_sqnr_db == math.inf else f"{s.own_sqnr_db:.1f} dB"
        where = (f"Keras layer '{s.keras_layer}' (op {s.op_index} {s.op}"
                 if s.keras_layer else f"op {s.op_index} {s.op} ('{s.tensor}'")
        name = f"{where}, own {own}, accumulated {s.sqnr_db:.1f} dB)"
        if s.weight_bits is not None and s.weight_bits < 8:
            tips.append(f"{name}: weights use only {s.weight_bits} bits; requantize them at 8 bits")
        elif s.weight_spread is not None and s.weight_spread > 10 and not s.weight_per_channel:
            tips.append(f"{name}: channel weight ranges differ {s.weight_spread:.0f}x under "
                        "per-tensor scales; quantize per-channel, or --equalize")
        elif s.clipped_fraction > 1e-3:
            fix = ("calibrate on more samples (--samples), or --calibration auto"
                   if in_use == "minmax" else "use --calibration minmax or auto"
                   if in_use != "auto" else "use --calibration minmax")
            tips.append(f"{name}: {100 * s.clipped_fraction:.2f}% of values clipped; {fix}")
        elif _utilization(s) < 0.25 and in_use == "minmax":
            tips.append(f"{name}: values use {100 * _utilization(s):.0f}% of the int8 range "
                        "(outliers widen it); try --calibration auto (or percentile, mse)")
        elif not int16:
            tips.append(f"{name}: try int16 activations for this layer (edgeq mixed --int16), "
                        "or QAT (edgeq train-qat)")
        else:
            tips.append(f"{name}: try QAT (edgeq train-qat)")
    if not tips:
        tips.append("no single layer stands out; try QAT (edgeq train-qat)")
    return tips


def _utilization(s: LayerStats) -> float:
    span_used = s.range_used[1] - s.range_used[0]
    span_obs = min(s.range_bulk[1], s.range_used[1]) - max(s.range_bulk[0], s.range_used[0])
    return max(span_obs, 0.0) / span_used if span_used > 0 else 1.0


def analyze_files(
    model_path: str,
    float_path: str,
    *,
    data: str | None = None,
    limit: int = 500,
    with_suggestions: bool = False,
    calibration: str | None = None,
) -> Analysis:
    """The file-level job behind ``edgeq analyze``: load both models and the test split."""
    from edgeq.data import Normalization, load_dataset, prepare_inputs
    from edgeq.errors import DataError
    from edgeq.models import load_model, read_sidecar

    if Path(model_path).suffix.lower() != ".tflite":
        raise AnalyzeError(f"{model_path}: analyze takes the quantized .tflite first; "
                           "pass MODEL.tflite --float FLOAT_MODEL")
    if limit <= 0:
        raise AnalyzeError(f"--limit must be positive, got {limit}")
    loaded = load_model(float_path)
    if loaded.kind == "tflite":
        raise AnalyzeError(f"{float_path}: --float must be the float Keras model (.keras/.h5), "
                           "not a .tflite")
    meta = loaded.meta or read_sidecar(model_path)
    spec = data or meta.get("dataset")
    if not spec:
        raise DataError(f"{float_path}: no dataset; pass --data (e.g. --data digits)")
    ds = load_dataset(spec, input_shape=tuple(loaded.input_shape[1:]))
    x = prepare_inputs(ds.x_test[:limit], loaded.input_shape, Normalization.from_meta(meta),
                       source=f"dataset '{ds.name}'")
    y = None if ds.y_test is None else ds.y_test[:limit]
    a = analyze(Path(model_path).read_bytes(), loaded.model, x, y, max_samples=limit)
    if with_suggestions:
        a.suggestions = suggest(a, calibration=calibration or _manifest_calibration(model_path))
    return a


def manifest_section(model_path: str) -> dict[str, Any]:
    """The ``quantize`` section of ``<model>.json`` written by ``edgeq quantize`` ({} if none)."""
    import json

    try:
        doc = json.loads(Path(model_path).with_suffix(".json").read_text())
        section = doc.get("quantize") if isinstance(doc, dict) else None
        return section if isinstance(section, dict) else {}
    except (OSError, ValueError):
        return {}


def _manifest_calibration(model_path: str) -> str | None:
    """The calibrator written into ``<model>.json`` by ``edgeq quantize``, if there is one."""
    cal = manifest_section(model_path).get("calibration") or {}
    return str(cal["method"]) if isinstance(cal, dict) and "method" in cal else None
