"""Choosing activation ranges from histograms, and putting exactly those ranges into the .tflite.

The converter's own PTQ uses min-max ranges, so one outlier activation wastes most of the int8
grid. Here the converter only *calibrates* (``_experimental_calibrate_only``): it returns a float
model whose activation tensors carry ``QuantizationParameters.min/max``. We run that float model
over the representative set, histogram every such tensor, let a calibrator pick ``[lo, hi]``,
write the ranges into the flatbuffer and finish with the MLIR quantizer, which turns min/max into
scale/zero point without looking at data again. :func:`check_ranges` proves it did.

Weights are not touched: the quantizer keeps them symmetric min-max, per channel unless asked.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.errors import QuantizeError, first_line
from edgeq.tfenv import quiet_native_output

CALIBRATORS = ("minmax", "percentile", "kl", "mse", "auto")
# what ``auto`` chooses from, per tensor
AUTO_CANDIDATES = ("minmax", "percentile", "kl", "mse")
AUTO_SAMPLES = 64
DEFAULT_PERCENTILE = 99.99
DEFAULT_BINS = 2048
INT8_LEVELS = 256
# KL may clip at most this fraction of a tensor's values. Histogram divergences are blind to
# distance: tall spikes (BN'd constants) make any grid look lossy, and the search then trades
# the strongest activations for resolution. Measured collapses clipped 1-30 %; a lone outlier
# (what KL is for) is far below this.
KL_MAX_CLIPPED = 1e-3
# Ops whose int8 output parameters are fixed by the kernels; calibration cannot change them.
FIXED_RANGE_OPS = frozenset({"SOFTMAX", "LOGISTIC", "TANH", "LOG_SOFTMAX"})


@dataclass(frozen=True)
class CalibrationMethod:
    """A calibrator name plus its parameter (``percentile:99.9`` -> percentile 99.9)."""

    name: str
    percentile: float = DEFAULT_PERCENTILE

    @classmethod
    def parse(cls, spec: str) -> CalibrationMethod:
        name, _, arg = spec.strip().lower().partition(":")
        if name not in CALIBRATORS:
            raise QuantizeError(
                f"unknown calibration '{spec}'; use one of minmax, percentile[:P], kl, mse, auto"
            )
        if name != "percentile":
            if arg:
                raise QuantizeError(f"calibration '{name}' takes no parameter; use '{name}'")
            return cls(name)
        if not arg:
            return cls(name)
        try:
            p = float(arg)
        except ValueError:
            raise QuantizeError(
                f"percentile '{arg}' is not a number; use e.g. percentile:99.99"
            ) from None
        if not (50.0 <= p <= 100.0) or math.isnan(p):
            # below 50 the two tails of signed data cross: the range would end below its start
            raise QuantizeError(
                f"percentile {arg} is outside [50, 100]; use e.g. percentile:99.99"
            )
        return cls(name, p)

    def __str__(self) -> str:
        return f"percentile:{self.percentile:g}" if self.name == "percentile" else self.name


@dataclass
class TensorStats:
    """Histogram of one activation tensor over the representative set.

    Exact zeros are counted apart: zero is always on the int8 grid (the zero point), so they carry
    no rounding or clipping error, and leaving them in would put a spike (ReLU outputs) into the
    first bin that skews KL towards narrow ranges.
    """

    index: int
    name: str
    min: float
    max: float
    counts: np.ndarray  # nonzero values per bin
    edges: np.ndarray  # len(counts) + 1 edges spanning [min(min, 0), max(max, 0)]
    zeros: int = 0

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.zeros

    @property
    def signed(self) -> bool:
        return self.min < 0.0 < self.max

    @property
    def bin_width(self) -> float:
        return float(self.edges[1] - self.edges[0])

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "min": self.min, "max": self.max,
                "zeros": self.zeros, "count": self.total}


@dataclass
class Calibration:
    """What calibration chose, per tensor name, next to the min-max ranges it started from."""

    method: str
    ranges: dict[str, tuple[float, float]]
    minmax: dict[str, tuple[float, float]]
    stats: dict[str, TensorStats] = field(repr=False, default_factory=dict)
    chosen: dict[str, str] = field(default_factory=dict)  # ``auto``: calibrator kept per tensor

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "tensors": {
                n: {"range": list(self.ranges[n]), "minmax": list(self.minmax[n]),
                    **({"chosen": self.chosen[n]} if n in self.chosen else {})}
                for n in self.ranges
            },
        }


# --- statistics --------------------------------------------------------------------------------


def _samples(representative: Any) -> Callable[[], Iterable[list[np.ndarray]]]:
    """Accept a converter-style callable (yielding ``[x]`` lists) or an array of samples."""
    if callable(representative):
        return representative
    arr = np.asarray(representative, dtype=np.float32)
    if arr.ndim == 0 or len(arr) == 0:
        raise QuantizeError("calibration set is empty; give a dataset with samples")
    return lambda: ([s[np.newaxis, ...]] for s in arr)


def calibrate_only(keras_model: Any, representative: Any) -> bytes:
    """Float .tflite whose activation tensors carry the converter's min/max (not yet quantized)."""
    from edgeq.tfenv import import_tf

    tf = import_tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _samples(representative)
    converter._experimental_calibrate_only = True
    try:
        with quiet_native_output(fds=(1, 2)):  # MLIR prints its settings on fd 1
            return bytes(converter.convert())
    except Exception as exc:
        msg = first_line(exc, 160)
        raise QuantizeError(f"calibration run of the converter failed: {msg}") from None


def _raw_minmax(calibrated: bytes) -> dict[int, str]:
    """Tensors whose QuantizationParameters hold min/max (read via the object API)."""
    from edgeq.tflite import load_model_t

    sg = load_model_t(calibrated).subgraphs[0]
    out: dict[int, str] = {}
    for i, t in enumerate(sg.tensors):
        q = t.quantization
        if q is not None and q.min is not None and len(q.min) == 1:
            out[i] = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
    return out


def _run_all(calibrated: bytes, representative: Any, tensors: list[int]) -> Iterator[list[Any]]:
    """For each sample, the float values of ``tensors`` (reference kernels, all tensors kept)."""
    from edgeq.oracles import litert_ref_interpreter

    interp = litert_ref_interpreter(calibrated)
    details = interp.get_input_details()
    for sample in _samples(representative)():
        for d, x in zip(details, sample, strict=True):
            interp.set_tensor(d["index"], np.asarray(x, dtype=np.float32).reshape(d["shape"]))
        interp.invoke()
        yield [interp.get_tensor(i) for i in tensors]


def collect_statistics(
    calibrated: bytes, representative: Any, bins: int = DEFAULT_BINS
) -> dict[str, TensorStats]:
    """Two passes over the representative set: exact min/max, then fixed-range histograms."""
    names = _raw_minmax(calibrated)
    index = sorted(names)
    lo = np.full(len(index), np.inf)
    hi = np.full(len(index), -np.inf)
    n_samples = 0
    for values in _run_all(calibrated, representative, index):
        n_samples += 1
        for k, v in enumerate(values):
            if v.size:
                lo[k] = min(lo[k], float(v.min()))
                hi[k] = max(hi[k], float(v.max()))
    if n_samples == 0:
        raise QuantizeError("calibration set is empty; give a dataset with samples")
    edges = [np.linspace(min(a, 0.0), max(b, 0.0), bins + 1) for a, b in zip(lo, hi, strict=True)]
    counts = [np.zeros(bins, dtype=np.int64) for _ in index]
    zeros = [0] * len(index)
    for values in _run_all(calibrated, representative, index):
        for k, v in enumerate(values):
            flat = v.reshape(-1).astype(np.float64)
            nz = flat[flat != 0.0]
            zeros[k] += flat.size - nz.size
            if nz.size and edges[k][-1] > edges[k][0]:
                counts[k] += np.histogram(nz, bins=edges[k])[0]
    stats: dict[str, TensorStats] = {}
    for k, i in enumerate(index):
        stats[names[i]] = TensorStats(
            index=i, name=names[i], min=float(lo[k]), max=float(hi[k]),
            counts=counts[k], edges=edges[k], zeros=zeros[k],
        )
    return stats


def stats_from_values(values: np.ndarray, name: str = "t", bins: int = DEFAULT_BINS) -> TensorStats:
    """Statistics of an in-memory array (what :func:`collect_statistics` builds per tensor)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if flat.size == 0:
        raise QuantizeError(f"tensor '{name}' has no values to calibrate on")
    lo, hi = float(flat.min()), float(flat.max())
    edges = np.linspace(min(lo, 0.0), max(hi, 0.0), bins + 1)
    nz = flat[flat != 0.0]
    counts = np.histogram(nz, bins=edges)[0] if edges[-1] > edges[0] else np.zeros(bins, np.int64)
    return TensorStats(index=-1, name=name, min=lo, max=hi, counts=counts, edges=edges,
                       zeros=int(flat.size - nz.size))


# --- calibrators -------------------------------------------------------------------------------


def calibrate_minmax(s: TensorStats) -> tuple[float, float]:
    return s.min, s.max


def _quantile_edge(s: TensorStats, q: float, upper: bool) -> float:
    """Histogram quantile (zeros included at 0); the whole bin it falls in is kept."""
    counts = s.counts.astype(np.float64).copy()
    if s.zeros:
        counts[min(int(np.searchsorted(s.edges, 0.0, side="right")) - 1, len(counts) - 1)] += s.zeros
    cdf = np.cumsum(counts) / max(counts.sum(), 1.0)
    k = int(np.searchsorted(cdf, q, side="left"))
    k = min(max(k, 0), len(counts) - 1)
    return float(s.edges[k + 1] if upper else s.edges[k])


def calibrate_percentile(s: TensorStats, percentile: float = DEFAULT_PERCENTILE) -> tuple[float, float]:
    """Clip at the percentile: upper tail only for one-signed data, both tails for signed data."""
    if not (50.0 <= percentile <= 100.0):
        raise QuantizeError(f"percentile {percentile} is outside [50, 100]; use e.g. 99.99")
    if percentile == 100.0 or s.total == 0:
        return s.min, s.max
    tail = 1.0 - percentile / 100.0
    lo, hi = s.min, s.max
    if s.max > 0.0:
        hi = min(s.max, _quantile_edge(s, 1.0 - tail, upper=True))
    if s.min < 0.0:
        lo = max(s.min, _quantile_edge(s, tail, upper=False))
    return lo, hi


def _kl_full(counts: np.ndarray, edges: np.ndarray, a: int, b: int, levels: int) -> float:
    """KL(P || Q) between a histogram and its int8 image for the window ``[edges[a], edges[b])``.

    TensorRT compares the *window* (outliers piled into its edge bins) with its merged copy, so
    clipping is charged only through two edge bins. Over the whole support instead: P is the
    histogram as observed; Q is what int8 makes of it — mass inside the window merged per grid
    level (levels aligned with the real asymmetric grid, holding zero) and spread back over P's
    nonzero bins of that level, clipped mass moved onto the edge level. Clipped bins keep only a
    tiny floor in Q, so every clipped value is paid for where it actually was.
    """
    centers = 0.5 * (edges[:-1] + edges[1:])
    lo, hi = min(float(edges[a]), 0.0), max(float(edges[b]), 0.0)
    if hi <= lo:
        return math.inf
    step = (hi - lo) / (levels - 1)
    level = np.clip(np.rint((centers - lo) / step), 0, levels - 1).astype(np.int64)
    p = counts.astype(np.float64)
    nonzero = p > 0
    mass = np.bincount(level, weights=p, minlength=levels)
    inside = np.zeros(len(p), dtype=bool)
    inside[a:b] = True
    # bins outside the window land on the edge levels, but Q only covers the window's bins
    support_in = np.bincount(level[inside], weights=nonzero[inside].astype(np.float64),
                             minlength=levels)
    q = np.where(inside & nonzero, mass[level] / np.maximum(support_in[level], 1.0), 0.0)
    total = p.sum()
    if total == 0 or q.sum() == 0:
        return math.inf
    pn = p / total
    qn = q / q.sum()
    floor = 1e-9
    m = pn > 0
    return float(np.sum(pn[m] * np.log(pn[m] / np.maximum(qn[m], floor))))


def calibrate_kl(s: TensorStats, levels: int = INT8_LEVELS, sweeps: int = 2) -> tuple[float, float]:
    """Entropy calibration (TensorRT's idea) made safe for asymmetric int8.

    TensorRT searches one threshold ``t`` for ``[-t, t]`` on a histogram of ``|x|`` and compares
    only the window with its int8 image, outliers piled into the edge bins, so clipping costs
    little; on tensors with tall spikes at non-zero values (a first conv + BN on images with a
    zero background) that picked the narrowest window and clipped several percent — the
    measured collapse. Here the divergence is taken over the whole support
    (:func:`_kl_full`), so each clipped value is charged where it was; windows clipping more
    than :data:`KL_MAX_CLIPPED` of the values are not candidates; and the asymmetric window
    ``[lo, hi]`` (holding zero) is searched by coordinate descent on ``hi`` then ``lo``.
    """
    n = len(s.counts)
    if s.counts.sum() == 0 or s.max == s.min:
        return s.min, s.max
    zero = int(np.clip(np.searchsorted(s.edges, 0.0), 0, n))
    step = max(1, n // 512)
    cum = np.concatenate([[0], np.cumsum(s.counts)])
    budget = KL_MAX_CLIPPED * s.total
    a, b = 0, n

    def cost(ca: int, cb: int) -> float:
        return _kl_full(s.counts, s.edges, ca, cb, levels)

    def clipped(ca: int, cb: int) -> float:
        return float(cum[ca] + cum[n] - cum[cb])

    for _ in range(sweeps):
        if s.max > 0.0:
            cands = [c for c in sorted(set(range(max(zero, 1), n, step)) | {n})
                     if clipped(a, c) <= budget or c == n]
            b = min(cands, key=lambda c: (cost(a, c), -c))
        if s.min < 0.0:
            cands = [c for c in sorted(set(range(0, zero + 1, step)) | {0})
                     if clipped(c, b) <= budget or c == 0]
            a = min(cands, key=lambda c: (cost(c, b), c))
        if s.min >= 0.0 or s.max <= 0.0:
            break
    lo = s.min if a == 0 else min(float(s.edges[a]), 0.0)
    hi = s.max if b == n else max(float(s.edges[b]), 0.0)
    return lo, hi


def _mse_table(s: TensorStats, levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected squared error for every window [edges[a], edges[b]] holding zero.

    Values inside the window get rounding noise ``step^2 / 12``; values outside are clipped to the
    window edge (error measured from bin centres). Exact zeros cost nothing on any grid.
    """
    c = s.counts.astype(np.float64)
    centers = 0.5 * (s.edges[:-1] + s.edges[1:])
    n = len(c)
    zero = int(np.clip(np.searchsorted(s.edges, 0.0), 0, n))
    a_idx = np.arange(0, zero + 1)
    b_idx = np.arange(max(zero, 1), n + 1)
    cnt = np.concatenate([[0.0], np.cumsum(c)])
    s1 = np.concatenate([[0.0], np.cumsum(c * centers)])
    s2 = np.concatenate([[0.0], np.cumsum(c * centers**2)])
    lo_e = s.edges[a_idx]
    hi_e = s.edges[b_idx]
    # clipped below: bins [0, a) moved to lo_e; clipped above: bins [b, n) moved to hi_e
    below = s2[a_idx] - 2 * lo_e * s1[a_idx] + lo_e**2 * cnt[a_idx]
    above = (s2[n] - s2[b_idx]) - 2 * hi_e * (s1[n] - s1[b_idx]) + hi_e**2 * (cnt[n] - cnt[b_idx])
    inside = cnt[b_idx][None, :] - cnt[a_idx][:, None]
    step = (hi_e[None, :] - lo_e[:, None]) / (levels - 1)
    mse = below[:, None] + above[None, :] + inside * step**2 / 12.0
    return mse, a_idx, b_idx


def calibrate_mse(s: TensorStats, levels: int = INT8_LEVELS) -> tuple[float, float]:
    """The window minimizing expected quantization MSE (rounding + clipping), searched exactly."""
    n = len(s.counts)
    if s.counts.sum() == 0 or s.max == s.min:
        return s.min, s.max
    mse, a_idx, b_idx = _mse_table(s, levels)
    # ties resolve to the widest window (last b, first a)
    flat = np.argmin(mse[:, ::-1])
    ia, ib_rev = np.unravel_index(flat, mse.shape)
    a = int(a_idx[ia])
    b = int(b_idx[::-1][ib_rev])
    lo = s.min if a == 0 else min(float(s.edges[a]), 0.0)
    hi = s.max if b == n else max(float(s.edges[b]), 0.0)
    return lo, hi


def choose_range(s: TensorStats, method: CalibrationMethod) -> tuple[float, float]:
    if method.name == "auto":
        raise QuantizeError("'auto' chooses per tensor by measuring the model; use calibrate()")
    if method.name == "minmax":
        return calibrate_minmax(s)
    if method.name == "percentile":
        return calibrate_percentile(s, method.percentile)
    if method.name == "kl":
        return calibrate_kl(s)
    return calibrate_mse(s)


# --- writing ranges and quantizing -------------------------------------------------------------


def apply_ranges(calibrated: bytes, ranges: dict[str, tuple[float, float]]) -> bytes:
    """Write ``[lo, hi]`` into the min/max of the named activation tensors."""
    from edgeq.tflite import load_model_t, serialize_model_t

    model_t = load_model_t(calibrated)
    sg = model_t.subgraphs[0]
    for t in sg.tensors:
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        if name in ranges and t.quantization is not None and t.quantization.min is not None:
            lo, hi = ranges[name]
            t.quantization.min = np.array([lo], dtype=np.float32)
            t.quantization.max = np.array([hi], dtype=np.float32)
    return serialize_model_t(model_t)


_IO_TYPES = ("int8", "uint8", "float32", "int16")


def quantize_calibrated(calibrated: bytes, io_dtype: str = "int8", per_channel: bool = True) -> bytes:
    """Run the MLIR quantizer on a calibrated float model: min/max -> scale/zero point."""
    from edgeq.tfenv import import_tf

    if io_dtype not in _IO_TYPES:
        raise QuantizeError(f"I/O type '{io_dtype}' is not supported; use int8, uint8 or float32")
    tf = import_tf()
    from tensorflow.lite.python.convert import mlir_quantize

    dt = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32, "int16": tf.int16}[io_dtype]
    try:
        with quiet_native_output(fds=(1, 2)):  # MLIR prints its settings on fd 1
            out = mlir_quantize(
                calibrated,
                disable_per_channel=not per_channel,
                fully_quantize=True,
                input_data_type=dt,
                output_data_type=dt,
            )
    except Exception as exc:
        msg = first_line(exc, 160)
        raise QuantizeError(f"MLIR quantizer failed on the calibrated model: {msg}") from None
    return bytes(out)


def check_ranges(
    tflite: bytes, ranges: dict[str, tuple[float, float]], rel_tol: float = 1e-3
) -> dict[str, tuple[float, float]]:
    """Tensors whose int8 scale is NOT ``(hi - lo) / 255`` of the chosen range: name -> (want, got).

    Empty means the quantizer used exactly the ranges we chose. Outputs of fixed-range ops
    (softmax, logistic, tanh) are skipped: their parameters are defined by the kernels.
    """
    from edgeq.tflite import read_tflite_bytes

    model = read_tflite_bytes(tflite)
    fixed = {
        o for op in model.operators if op.opcode in FIXED_RANGE_OPS for o in op.outputs
    }
    bad: dict[str, tuple[float, float]] = {}
    for t in model.tensors:
        if t.name not in ranges or t.is_constant or t.quant is None or t.index in fixed:
            continue
        if t.dtype not in ("int8", "uint8"):
            continue
        lo, hi = ranges[t.name]
        want = (max(hi, 0.0) - min(lo, 0.0)) / 255.0
        got = float(t.quant.scale[0])
        if want > 0 and abs(got - want) > rel_tol * want:
            bad[t.name] = (want, got)
    return bad


def unify_same_scale_ops(calibrated: bytes, ranges: dict[str, tuple[float, float]]) -> None:
    """Ops that move values without arithmetic (max-pool, reshape, ...) share one int8 scale.

    The quantizer would force that anyway; doing it here makes the chosen range of the *input*
    win (the one the producing op saw) and keeps :func:`check_ranges` exact.
    """
    from edgeq.tflite import read_tflite_bytes

    same = {"MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE",
            "GATHER", "STRIDED_SLICE", "SLICE", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "PAD"}
    model = read_tflite_bytes(calibrated)
    for op in model.operators:
        if not op.inputs or not op.outputs:
            continue
        dst = model.tensors[op.outputs[0]].name
        if op.opcode in same:
            src = model.tensors[op.inputs[0]].name
            if src in ranges and dst in ranges:
                ranges[dst] = ranges[src]
        elif op.opcode == "CONCATENATION":
            names = [model.tensors[i].name for i in op.inputs if i >= 0] + [dst]
            if all(n in ranges for n in names):
                union = (min(ranges[n][0] for n in names), max(ranges[n][1] for n in names))
                for n in names:
                    ranges[n] = union


def calibrate(
    calibrated: bytes,
    representative: Any,
    method: CalibrationMethod,
    bins: int = DEFAULT_BINS,
    *,
    per_channel: bool = True,
) -> Calibration:
    """Histogram every activation tensor and let ``method`` choose its range."""
    stats = collect_statistics(calibrated, representative, bins=bins)
    minmax = {name: (s.min, s.max) for name, s in stats.items()}
    if method.name == "auto":
        ranges, chosen = search_ranges(calibrated, representative, stats, per_channel=per_channel)
        return Calibration(method=str(method), ranges=ranges, minmax=minmax, stats=stats,
                           chosen=chosen)
    ranges = {name: choose_range(s, method) for name, s in stats.items()}
    unify_same_scale_ops(calibrated, ranges)
    for name in _fixed_range_tensors(calibrated):  # the kernels fix these; do not claim a range
        ranges.pop(name, None)
    return Calibration(method=str(method), ranges=ranges, minmax=minmax, stats=stats)


def _int8_output_error(tflite: bytes, xs: list[np.ndarray], reference: np.ndarray) -> float:
    """Mean squared error of the dequantized int8 model output against the float output."""
    from edgeq.oracles import litert_ref_interpreter

    interp = litert_ref_interpreter(tflite)
    din = interp.get_input_details()[0]
    dout = interp.get_output_details()[0]
    s_in, z_in = din["quantization"]
    s_out, z_out = dout["quantization"]
    outs = []
    for x in xs:
        v = np.asarray(x, dtype=np.float32).reshape(din["shape"])
        if np.dtype(din["dtype"]) != np.float32:
            info = np.iinfo(din["dtype"])
            v = np.clip(np.rint(v / s_in) + z_in, info.min, info.max).astype(din["dtype"])
        interp.set_tensor(din["index"], v)
        interp.invoke()
        o = interp.get_tensor(dout["index"]).astype(np.float64)
        outs.append((o - z_out) * s_out if np.dtype(dout["dtype"]) != np.float32 else o)
    return float(np.mean((np.stack(outs).reshape(reference.shape) - reference) ** 2))


def search_ranges(
    calibrated: bytes,
    representative: Any,
    stats: dict[str, TensorStats],
    *,
    per_channel: bool = True,
    samples: int = AUTO_SAMPLES,
) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """``auto``: per tensor, the candidate range that gives the smallest measured model error.

    Every tensor starts at min-max (the converter's choice). Then, in graph order, each tensor
    tries the ranges minmax/percentile/KL/MSE would give it; the int8 model is rebuilt and run
    on the first ``samples`` calibration samples, and the candidate with the lowest mean squared
    output error against the float model is kept. A change is kept only if it measurably helps,
    so ``auto`` is never worse than min-max on the samples it measured.
    """
    xs = [s[0] for s, _ in zip(_samples(representative)(), range(samples), strict=False)]
    from edgeq.oracles import litert_ref_interpreter

    fl = litert_ref_interpreter(calibrated)
    fin, fout = fl.get_input_details()[0], fl.get_output_details()[0]
    ref = []
    for x in xs:
        fl.set_tensor(fin["index"], np.asarray(x, dtype=np.float32).reshape(fin["shape"]))
        fl.invoke()
        ref.append(fl.get_tensor(fout["index"]).astype(np.float64))
    reference = np.stack(ref)

    ranges = {name: calibrate_minmax(st) for name, st in stats.items()}
    chosen = {name: "minmax" for name in stats}

    def error(r: dict[str, tuple[float, float]]) -> float:
        r = dict(r)
        unify_same_scale_ops(calibrated, r)
        tfl = quantize_calibrated(apply_ranges(calibrated, r), "int8", per_channel)
        return _int8_output_error(tfl, xs, reference)

    best = error(ranges)
    fixed = _fixed_range_tensors(calibrated)
    for name in sorted(stats, key=lambda n: stats[n].index):
        if name in fixed:
            continue
        tried = {ranges[name]}
        for cand in AUTO_CANDIDATES:
            r = choose_range(stats[name], CalibrationMethod(cand))
            if any(abs(r[0] - t[0]) + abs(r[1] - t[1]) <= 1e-6 * (abs(r[1]) + 1) for t in tried):
                continue
            tried.add(r)
            trial = {**ranges, name: r}
            e = error(trial)
            if e < best * (1.0 - 1e-3):
                best, ranges, chosen[name] = e, trial, cand
    unify_same_scale_ops(calibrated, ranges)
    for name in fixed:
        ranges.pop(name, None)
        chosen.pop(name, None)
    return ranges, chosen


def _fixed_range_tensors(calibrated: bytes) -> set[str]:
    """Names of tensors whose int8 parameters the kernels fix (softmax output, ...)."""
    from edgeq.tflite import read_tflite_bytes

    model = read_tflite_bytes(calibrated)
    return {model.tensors[o].name for op in model.operators if op.opcode in FIXED_RANGE_OPS
            for o in op.outputs}


def convert_calibrated(
    keras_model: Any,
    representative: Any,
    method: CalibrationMethod | str = "minmax",
    *,
    io_dtype: str = "int8",
    per_channel: bool = True,
    bins: int = DEFAULT_BINS,
) -> tuple[bytes, Calibration]:
    """Full-int8 .tflite whose activation ranges are the calibrator's, verified after quantizing."""
    if isinstance(method, str):
        method = CalibrationMethod.parse(method)
    calibrated = calibrate_only(keras_model, representative)
    cal = calibrate(calibrated, representative, method, bins=bins, per_channel=per_channel)
    tflite = quantize_calibrated(apply_ranges(calibrated, cal.ranges), io_dtype, per_channel)
    bad = check_ranges(tflite, cal.ranges)
    if bad:
        name, (want, got) = next(iter(bad.items()))
        raise QuantizeError(
            f"the quantizer changed the calibrated range of '{name}' (scale {got:.3g}, "
            f"expected {want:.3g}); report this model, or use --calibration minmax"
        )
    return tflite, cal


class CalibrationHook:
    """``range_hook`` for :func:`edgeq.quantize.ptq.convert_ptq`: calibrated bytes -> edited bytes.

    Builds its representative samples from the raw dataset exactly as ``quantize_model`` does
    (same seed and count, the model's normalization, shaped for the calibrated model's input),
    chooses the ranges, and verifies *before* anything is written that the quantizer keeps them.
    """

    def __init__(
        self,
        method: CalibrationMethod,
        x_raw: np.ndarray,
        normalization: Any,
        *,
        num_samples: int = 200,
        seed: int = 0,
        per_channel: bool = True,
    ) -> None:
        self.method = method
        self.x_raw = x_raw
        self.normalization = normalization
        self.num_samples = num_samples
        self.seed = seed
        self.per_channel = per_channel
        self.result: Calibration | None = None

    def __call__(self, calibrated: bytes) -> bytes:
        from edgeq.data import representative_dataset
        from edgeq.tflite import read_tflite_bytes

        shape = read_tflite_bytes(calibrated).input_tensors[0].shape
        rep = representative_dataset(
            self.x_raw, input_shape=(None, *shape[1:]), normalization=self.normalization,
            num_samples=self.num_samples, seed=self.seed,
        )
        self.result = calibrate(calibrated, rep, self.method, per_channel=self.per_channel)
        edited = apply_ranges(calibrated, self.result.ranges)
        bad = check_ranges(quantize_calibrated(edited, "int8", self.per_channel), self.result.ranges)
        if bad:
            name = next(iter(bad))
            raise QuantizeError(
                f"the quantizer would change the calibrated range of '{name}'; "
                "use --calibration minmax for this model"
            )
        return edited

    def summary(self) -> dict[str, Any]:
        if self.result is None:
            return {"method": str(self.method)}
        narrowed = [
            n for n, (lo, hi) in self.result.ranges.items()
            if (hi - lo) < (self.result.minmax[n][1] - self.result.minmax[n][0]) * (1 - 1e-6)
        ]
        return {"method": str(self.method), "calibrated": len(self.result.ranges),
                "narrowed": len(narrowed), **self.result.as_dict()}


def calibration_hook(
    model_path: str | os.PathLike[str],
    method: str,
    data: str | None,
    *,
    num_samples: int = 200,
    seed: int = 0,
    per_channel: bool = True,
) -> CalibrationHook | None:
    """The hook for ``edgeq quantize --calibration``; ``None`` for plain min-max (converter PTQ)."""
    m = CalibrationMethod.parse(method)
    if m.name == "minmax":
        return None
    from edgeq.data import Normalization, load_dataset
    from edgeq.models import read_sidecar

    meta = read_sidecar(model_path)
    spec = data or meta.get("dataset")
    if not spec:
        raise QuantizeError(f"{model_path}: no calibration data; pass --data (e.g. --data digits)")
    ds = load_dataset(spec)
    return CalibrationHook(m, ds.x_train, Normalization.from_meta(meta),
                           num_samples=num_samples, seed=seed, per_channel=per_channel)
