"""Integer numerics of TFLite's quantization scheme, in one place on the Python side.

Affine quantization ``q = round(x / s) + z``; real multipliers become an int32 multiplier and a
power-of-two shift (round half away from zero), applied with the saturating rounding doubling
high multiply that the reference kernels use. ``edgeq-rt``'s C ``eq_requantize`` mirrors
``multiply_by_quantized_multiplier`` here, and tests hold the two to each other.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

_QRANGES: dict[str, tuple[int, int]] = {
    "int4": (-8, 7),
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "int32": (INT32_MIN, INT32_MAX),
}


def qrange(dtype: str) -> tuple[int, int]:
    """(min, max) representable by an integer dtype name."""
    return _QRANGES[dtype]


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """TfLiteRound: halves round away from zero (numpy's ``round`` rounds half to even)."""
    a = np.asarray(x, dtype=np.float64)
    return np.sign(a) * np.floor(np.abs(a) + 0.5)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Split a positive real multiplier into (int32 multiplier in [2^30, 2^31), shift).

    ``real ~= multiplier * 2^(shift - 31)``; shift > 0 means a left shift. Same algorithm as
    TFLite's ``QuantizeMultiplier``, including the tiny/huge clamps.
    """
    if real == 0.0:
        return 0, 0
    if real < 0:
        raise ValueError("quantize_multiplier expects a non-negative multiplier")
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return q_fixed, shift


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values (vectorized, int64 math)."""
    a64 = np.asarray(a, dtype=np.int64)
    b64 = np.asarray(b, dtype=np.int64)
    overflow = (a64 == INT32_MIN) & (b64 == INT32_MIN)
    ab = a64 * b64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    # C++ integer division truncates toward zero
    res = np.where(total >= 0, total >> 31, -((-total) >> 31))
    return np.where(overflow, INT32_MAX, res).astype(np.int64)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: arithmetic shift right, rounding half away from zero."""
    x64 = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0).astype(np.int64)
    return (x64 >> e) + (remainder > threshold).astype(np.int64)


def multiply_by_quantized_multiplier(
    x: np.ndarray,
    multiplier: np.ndarray | int,
    shift: np.ndarray | int,
    *,
    single_rounding: bool = False,
) -> np.ndarray:
    """Requantize int32 accumulators: ``x * multiplier * 2^(shift-31)`` with TFLite rounding.

    Default is TFLM's double rounding (doubling high multiply, then rounding shift);
    ``single_rounding`` is TFLITE_SINGLE_ROUNDING (LiteRT 2.3's FULLY_CONNECTED).
    """
    x64 = np.asarray(x, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if single_rounding:
        total_shift = 31 - s
        rnd = np.int64(1) << (total_shift - 1)
        return (x64 * m + rnd) >> total_shift
    left = np.where(s > 0, s, 0)
    right = np.where(s > 0, 0, -s)
    shifted = x64 * (np.int64(1) << left)
    shifted = np.clip(shifted, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, m), right)


def quantize(
    x: np.ndarray, scale: float | np.ndarray, zero_point: int | np.ndarray, dtype: str
) -> np.ndarray:
    """Affine quantization ``clamp(round(x / s) + z)`` into ``dtype`` (TFLite rounding)."""
    lo, hi = qrange(dtype)
    q = round_half_away(np.asarray(x, dtype=np.float64) / np.asarray(scale, dtype=np.float64))
    q = np.clip(q + np.asarray(zero_point, dtype=np.float64), lo, hi)
    np_dtype = np.int8 if dtype == "int4" else np.dtype(dtype)
    return q.astype(np_dtype)


def dequantize(
    q: np.ndarray, scale: float | np.ndarray, zero_point: int | np.ndarray
) -> np.ndarray:
    return (
        np.asarray(q, dtype=np.float64) - np.asarray(zero_point, dtype=np.float64)
    ) * np.asarray(scale, dtype=np.float64)


FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def fused_activation_range(activation: str | None, scale: float, zero_point: int,
                           dtype: str) -> tuple[int, int]:
    """TFLM's CalculateActivationRangeQuantized: a fused activation's clamp on the output grid.

    ``zero_point + round(f / scale)`` in float32, halves away from zero, clipped to int32 (where
    TFLM refuses the model, the clamp saturates instead), then intersected with ``dtype``'s
    range. Every lowering that clamps its output uses this one function. Raises ``ValueError``
    for an activation TFLM cannot fuse; callers name the op in their own error.
    """
    qmin, qmax = qrange(dtype)
    s = np.float32(scale)

    def q(f: float) -> int:
        v = float(round_half_away(np.float32(f) / s))
        return int(zero_point) + int(np.clip(v, -(2.0**31), 2.0**31 - 1))

    if activation in ("NONE", "", None):
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, q(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(f"fused activation {activation} is not supported")


def affine_params(rmin: float, rmax: float, dtype: str = "int8") -> tuple[float, int]:
    """Scale and zero point covering [rmin, rmax] (widened to include 0, as TFLite requires)."""
    lo, hi = qrange(dtype)
    rmin, rmax = min(float(rmin), 0.0), max(float(rmax), 0.0)
    if rmax == rmin:
        return 1.0, 0
    scale = (rmax - rmin) / (hi - lo)
    zp = int(np.clip(round_half_away(lo - rmin / scale), lo, hi))
    return scale, zp


def symmetric_scale(absmax: float | np.ndarray, bits: int = 8) -> np.ndarray:
    """Scale of a symmetric signed grid ``[-(2^(b-1)-1), 2^(b-1)-1]`` covering ``absmax``."""
    qmax = (1 << (bits - 1)) - 1
    a = np.asarray(absmax, dtype=np.float64)
    return np.where(a > 0, a / qmax, 1.0)


def fake_quantize_uniform(x: np.ndarray, bits: int, lo: float, hi: float) -> np.ndarray:
    """Quantize-dequantize on a ``2^bits``-level uniform grid spanning [lo, hi]."""
    levels = (1 << bits) - 1
    step = (hi - lo) / levels
    q = np.clip(round_half_away((np.asarray(x, dtype=np.float64) - lo) / step), 0, levels)
    return q * step + lo


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB; inf when identical."""
    ref = np.asarray(reference, dtype=np.float64)
    noise = ref - np.asarray(test, dtype=np.float64)
    p_noise = float(np.mean(noise**2))
    p_signal = float(np.mean(ref**2))
    if p_noise == 0.0:
        return math.inf
    if p_signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(p_signal / p_noise)


def sqnr_theory_db(bits: int) -> float:
    """SQNR of a uniform full-scale signal on a b-bit uniform quantizer: 20·log10(2^b) ≈ 6.02·b."""
    return 20.0 * math.log10(2.0**bits)


# --- model I/O: float samples <-> the .tflite's integer input/output ---------------------------


def quantize_inputs(x: np.ndarray, tensor: Any) -> np.ndarray:
    """Float (normalized) inputs -> the ``.tflite`` input dtype with its scale/zero point."""
    from edgeq.errors import QuantizeError

    if tensor.dtype == "float32":
        return x.astype(np.float32)
    if tensor.dtype not in _QRANGES:
        raise QuantizeError(f"model input '{tensor.name}' is {tensor.dtype}; edgeq feeds int8, "
                            "uint8, int16 or float32 inputs")
    if tensor.quant is None:
        raise QuantizeError(f"model input '{tensor.name}' is {tensor.dtype} without quantization")
    q = quantize(x, float(tensor.quant.scale[0]), int(tensor.quant.zero_point[0]), tensor.dtype)
    return q.astype(np.dtype(tensor.dtype))


def dequantize_outputs(y: np.ndarray, tensor: Any) -> np.ndarray:
    """Raw ``.tflite`` outputs -> float32 (float outputs pass through)."""
    if tensor.dtype not in ("int8", "uint8", "int16", "int32", "float32", "float16"):
        from edgeq.errors import QuantizeError

        raise QuantizeError(f"model output '{tensor.name}' is {tensor.dtype}; edgeq reads "
                            "integer or float outputs")
    if tensor.quant is None or tensor.dtype.startswith("float"):
        return y.astype(np.float32)
    return dequantize(y, tensor.quant.scale[0], tensor.quant.zero_point[0]).astype(np.float32)


GENERATED = "random"  # --data value: generated inputs instead of a labelled dataset


def generated_test_inputs(tflite: str | os.PathLike[str], limit: int,
                          seed: int = 0) -> np.ndarray:
    """The first input's vectors of ``generated_test_vectors``."""
    return generated_test_vectors(tflite, limit, seed)[0]


def generated_test_vectors(tflite: str | os.PathLike[str], limit: int,
                           seed: int = 0) -> list[np.ndarray]:
    """``limit`` inputs spanning each integer input's whole range, for bit-exactness checks
    without data: the minimum, the maximum and the zero point everywhere, then uniform
    random values (seeded: the same vectors on every run). One array per model input."""
    from edgeq.errors import DataError
    from edgeq.tflite import read_tflite

    rng = np.random.default_rng(seed)
    out = []
    for in_t in read_tflite(tflite).input_tensors:
        if in_t.dtype not in ("int8", "int16"):
            raise DataError(f"{tflite}: generated inputs need an integer model input, not "
                            f"{in_t.dtype}; pass --data DATASET")
        info = np.iinfo(np.dtype(in_t.dtype))
        shape = tuple(int(d) for d in in_t.shape[1:])
        zp = int(in_t.quant.zero_point[0]) if in_t.quant is not None else 0
        x = rng.integers(info.min, info.max, size=(limit, *shape), endpoint=True)
        for k, v in enumerate((info.min, info.max, zp)[:limit]):
            x[k] = v
        out.append(x.astype(np.dtype(in_t.dtype)))
    return out


def quantized_test_inputs(tflite: str | os.PathLike[str], data: str | None,
                          limit: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The first input's vectors of ``quantized_test_vectors`` and the labels."""
    xs, y = quantized_test_vectors(tflite, data, limit)
    return xs[0], y


def quantized_test_vectors(tflite: str | os.PathLike[str], data: str | None,
                           limit: int) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The first ``limit`` test samples of ``data`` (or the sidecar's dataset), quantized for
    each model input (one array per input): the test vectors for on-device validation and
    benchmarks, and their labels (or None)."""
    from edgeq.data import Normalization, load_dataset, prepare_input_list
    from edgeq.errors import DataError
    from edgeq.models import load_model
    from edgeq.tflite import read_tflite

    loaded = load_model(tflite)
    info = read_tflite(tflite)
    spec = data or loaded.meta.get("dataset")
    if not spec:
        raise DataError(f"{tflite}: no dataset known for this model; pass --data")
    shapes = [(None, *t.shape[1:]) for t in info.input_tensors]
    ds = load_dataset(spec, input_shape=tuple(shapes[0][1:]))
    xs = prepare_input_list(ds.test_inputs(limit), shapes, Normalization.from_meta(loaded.meta),
                            source=f"dataset '{ds.name}'")
    y = None if ds.y_test is None else np.asarray(ds.y_test[:limit])
    return [quantize_inputs(x, t) for x, t in zip(xs, info.input_tensors, strict=True)], y
