"""Integer numerics against their mathematical definitions, computed here with exact rationals
(``fractions.Fraction``) and ``decimal`` rounding instead of the bit tricks the code uses.

gemmlowp's SaturatingRoundingDoublingHighMul is ``a*b / 2^31`` rounded half towards +inf
(saturating only for INT32_MIN * INT32_MIN); RoundingDivideByPOT is ``x / 2^e`` rounded half
away from zero; TFLite's affine quantization rounds ``x / s`` half away from zero.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from edgeq.errors import QuantizeError
from edgeq.quantize import numerics as nx

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def _round_half_up(f: Fraction) -> int:
    return math.floor(f + Fraction(1, 2))


def _round_half_away(f: Fraction) -> int:
    return _round_half_up(f) if f >= 0 else -_round_half_up(-f)


def _high_mul(a: int, b: int) -> int:
    if a == b == I32_MIN:
        return I32_MAX
    return _round_half_up(Fraction(a * b, 2**31))


def _int32_samples(n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    edges = [I32_MIN, I32_MIN + 1, -(2**30), -3, -2, -1, 0, 1, 2, 3, 2**30, I32_MAX - 1, I32_MAX]
    return edges + [int(v) for v in rng.integers(I32_MIN, I32_MAX, n, endpoint=True)]


def test_high_mul_is_round_half_up_of_the_exact_product() -> None:
    a = _int32_samples(400, 1)
    b = _int32_samples(400, 2)
    pairs = [(x, y) for x in a[:13] for y in b[:13]] + list(zip(a, b[::-1], strict=True))
    # exact halves: a*b = (2k+1) * 2^30
    pairs += [(2**15 * k, 2**15) for k in (-5, -3, -1, 1, 3, 5)]
    got = nx.saturating_rounding_doubling_high_mul(np.array([p[0] for p in pairs]),
                                                   np.array([p[1] for p in pairs]))
    assert got.tolist() == [_high_mul(x, y) for x, y in pairs]


def test_rounding_divide_by_pot_is_round_half_away_of_the_quotient() -> None:
    xs = _int32_samples(300, 3) + [-6, -5, -4, 4, 5, 6, -12, 12, -20, 20]
    for e in (0, 1, 2, 3, 7, 16, 31):
        got = nx.rounding_divide_by_pot(np.array(xs), e).tolist()
        assert got == [_round_half_away(Fraction(x, 2**e)) for x in xs], e


@pytest.mark.parametrize("shift", [-31, -12, -3, -1, 0, 1, 4])
def test_requantize_is_two_exact_roundings(shift: int) -> None:
    """Double rounding (TFLM): clamp(x * 2^left) through the high multiply, then the rounding
    shift. Single rounding (LiteRT's FULLY_CONNECTED): one round half up of x*m*2^(shift-31)."""
    rng = np.random.default_rng(shift + 40)
    xs = [int(v) for v in rng.integers(-(2**20), 2**20, 200)] + [-1, 0, 1, I32_MIN, I32_MAX]
    for m in (1 << 30, (1 << 31) - 1, 1518500250, 1073741825):
        got = nx.multiply_by_quantized_multiplier(np.array(xs), m, shift).tolist()
        left, right = max(shift, 0), max(-shift, 0)
        want = [_round_half_away(Fraction(_high_mul(min(max(x * 2**left, I32_MIN), I32_MAX), m),
                                          2**right)) for x in xs]
        assert got == want
        if -31 < shift < 1:
            small = [x for x in xs if abs(x) < 2**20]
            got1 = nx.multiply_by_quantized_multiplier(np.array(small), m, shift,
                                                       single_rounding=True).tolist()
            assert got1 == [_round_half_up(Fraction(x * m, 2 ** (31 - shift))) for x in small]


def test_quantize_multiplier_clamps_and_carries() -> None:
    assert nx.quantize_multiplier(2.0**40) == (I32_MAX, 30)
    assert nx.quantize_multiplier(2.0**-40) == (0, 0)
    # 1 - 2^-33 rounds up to 2^31 in Q31: the multiplier halves and the shift carries
    assert nx.quantize_multiplier(1.0 - 2.0**-33) == (1 << 30, 1)
    with pytest.raises(ValueError, match="non-negative"):
        nx.quantize_multiplier(-0.5)
    for real in (0.3, 0.75, 3.1, 1e-5, 1234.5):
        m, s = nx.quantize_multiplier(real)
        mant, exp = math.frexp(real)
        assert s == exp and m == _round_half_away(Fraction(mant) * 2**31)


@pytest.mark.parametrize("dtype, scale, zp", [("int8", 0.05, -7), ("uint8", 0.1, 128),
                                              ("int16", 0.001, 0), ("int4", 0.5, 1)])
def test_quantize_and_model_io_against_decimal_rounding(dtype: str, scale: float,
                                                        zp: int) -> None:
    lo, hi = nx.qrange(dtype)
    x = np.concatenate([np.random.default_rng(5).uniform(-40, 40, 300),
                        np.array([0.5, -0.5, 1.5, -1.5, 2.5]) * scale])
    want = [min(max(int(Decimal(repr(float(v) / scale)).quantize(Decimal(1), ROUND_HALF_UP))
                    + zp, lo), hi) for v in x]
    # Decimal's ROUND_HALF_UP rounds halves away from zero
    assert nx.quantize(x, scale, zp, dtype).tolist() == want
    if dtype == "int4":
        return
    t = SimpleNamespace(name="in", dtype=dtype,
                        quant=SimpleNamespace(scale=np.array([scale]), zero_point=np.array([zp])))
    q = nx.quantize_inputs(x, t)
    assert q.dtype == np.dtype(dtype) and q.tolist() == want
    y = nx.dequantize_outputs(q, t)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, (np.array(want) - zp) * scale, rtol=1e-6)
    f = SimpleNamespace(name="in", dtype="float32", quant=None)
    assert nx.quantize_inputs(x, f).dtype == np.float32
    np.testing.assert_array_equal(nx.dequantize_outputs(x, f), x.astype(np.float32))
    with pytest.raises(QuantizeError, match="model input 'in' is int8 without quantization"):
        nx.quantize_inputs(x, SimpleNamespace(name="in", dtype="int8", quant=None))


def test_affine_symmetric_and_fake_quantize() -> None:
    scale, zp = nx.affine_params(-1.0, 3.0)
    assert scale == pytest.approx(4.0 / 255) and zp == _round_half_away(
        Fraction(-128) + Fraction(1.0) / Fraction(scale))
    assert nx.affine_params(0.5, 2.0) == (pytest.approx(2.0 / 255), -128)  # widened to 0
    assert nx.affine_params(-2.0, -0.5, "uint8") == (pytest.approx(2.0 / 255), 255)
    assert nx.affine_params(0.0, 0.0) == (1.0, 0)
    np.testing.assert_allclose(nx.symmetric_scale(np.array([127.0, 0.0, 7.0]), 8),
                               [1.0, 1.0, 7.0 / 127])
    assert float(nx.symmetric_scale(3.5, 4)) == pytest.approx(0.5)
    x = np.array([-3.0, -1.0, -0.26, 0.0, 0.24, 0.25, 0.9, 5.0])
    # 2 bits over [-1, 1]: levels -1, -1/3, 1/3, 1
    np.testing.assert_allclose(nx.fake_quantize_uniform(x, 2, -1.0, 1.0),
                               [-1, -1, -1 / 3, 1 / 3, 1 / 3, 1 / 3, 1, 1])


# --- boundaries the sweeps above do not reach ---------------------------------------------------


def test_round_half_away_works_in_float64_for_float32_input() -> None:
    # float32(0.49999997) is 0.4999999701976776..., so it rounds to 0; adding 0.5 in float32
    # would land exactly half-way between two float32 values and round up to 1.0
    x = np.float32(0.49999997)
    assert Fraction(float(x)) < Fraction(1, 2)
    assert nx.round_half_away(np.array([x, -x], dtype=np.float32)).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("real, want", [
    (2.0**-32, (1 << 30, -31)),  # frexp exponent -31: still representable
    (2.0**-33, (0, 0)),  # exponent -32: TFLite flushes to zero
    (2.0**29, (1 << 30, 30)),  # exponent 30: the largest left shift kept
    (2.0**30, (I32_MAX, 30)),  # exponent 31: saturates
    (2.0 - 2.0**-32, (1 << 30, 2)),  # the mantissa rounds up to 2^31 and the shift carries
])
def test_quantize_multiplier_shift_limits(real: float, want: tuple[int, int]) -> None:
    """TFLite's QuantizeMultiplier: frexp, Q31 mantissa rounded half away (carry on 2^31),
    shift < -31 -> (0, 0), shift > 30 -> (INT32_MAX, 30); worked by hand for powers of two."""
    m, s = nx.quantize_multiplier(real)
    assert (m, s) == want
    assert type(m) is int and type(s) is int  # rendered into C as integer literals
    if want[0] == 1 << 30:
        assert Fraction(m) * Fraction(2) ** (s - 31) == _round_half_away(
            Fraction(real) * 2 ** (31 - s)) * Fraction(2) ** (s - 31)
    with pytest.raises(ValueError, match=r"^quantize_multiplier expects a non-negative "
                                         r"multiplier$"):
        nx.quantize_multiplier(-real)


def test_int32_arrays_are_widened_before_multiplying() -> None:
    """Accumulators and multipliers arrive as int32 arrays; products must not wrap in int32."""
    a = _int32_samples(200, 11)
    b = _int32_samples(200, 12)[::-1]
    got = nx.saturating_rounding_doubling_high_mul(np.array(a, dtype=np.int32),
                                                   np.array(b, dtype=np.int32))
    assert got.dtype == np.int64
    assert got.tolist() == [_high_mul(x, y) for x, y in zip(a, b, strict=True)]
    xs = [int(v) for v in np.random.default_rng(13).integers(-(2**20), 2**20, 200)]
    ms = [int(v) for v in np.random.default_rng(14).integers(1 << 30, I32_MAX, 200)]
    got1 = nx.multiply_by_quantized_multiplier(np.array(xs, dtype=np.int32),
                                               np.array(ms, dtype=np.int32),
                                               np.array([-7] * 200, dtype=np.int32),
                                               single_rounding=True)
    assert got1.tolist() == [_round_half_up(Fraction(x * m, 2**38)) for x, m in zip(xs, ms,
                                                                                  strict=True)]
    got2 = nx.rounding_divide_by_pot(np.array([-5, 5, 6, -6], dtype=np.int32), 2)
    assert got2.dtype.kind == "i" and got2.tolist() == [-1, 1, 2, -2]


def test_fused_activation_clamp_saturates_at_int32() -> None:
    """A scale so small that 6/s and -1/s leave int32: the clamp saturates at 2^31 - 1 and
    -2^31 before the zero point is added (checked on the int32 grid, where nothing else cuts)."""
    assert nx.fused_activation_range("RELU6", 1e-12, -10, "int32") == (-10, I32_MAX - 10)
    assert nx.fused_activation_range("RELU_N1_TO_1", 1e-12, 10, "int32") == (I32_MIN + 10,
                                                                             I32_MAX)
    for none in ("NONE", "", None):
        assert nx.fused_activation_range(none, 0.1, 3, "int8") == (-128, 127)


def test_scales_and_fake_quantization_stay_in_float64() -> None:
    # float32 statistics (weights, activations) still give float64 scales
    w = np.array([1.0, 0.5, 0.0], dtype=np.float32)
    assert nx.symmetric_scale(w).tolist() == [1.0 / 127, 0.5 / 127, 1.0]  # default 8 bits
    assert float(nx.symmetric_scale(0.5, 8)) == 0.5 / 127
    # 2/255-wide steps over [-1, 1]: 0.1 -> level round(1.1 * 127.5) = 140
    got = nx.fake_quantize_uniform(np.array([np.float32(0.1)]), 8, -1.0, 1.0)
    assert got.dtype == np.float64 and got.tolist() == [140 * (2.0 / 255) - 1.0]
    # float32 inputs just below a half level: (x + 1) * 127.5 is 64.4999..., level 64 (in
    # float32 arithmetic the quotient rounds to 64.5 and then up to 65)
    x = np.float32(-0.49411765)
    level = _round_half_away((Fraction(float(x)) + 1) * Fraction(255, 2))
    assert level == 64
    got = nx.fake_quantize_uniform(np.array([x]), 8, -1.0, 1.0)
    assert got.tolist() == [level * (2.0 / 255) - 1.0]


def test_sqnr_against_exact_powers() -> None:
    # int8 tensors (raw model outputs): 100 - (-100) must not wrap around in int8
    ref = [100, -100, 50, 7]
    test = [-100, 100, 40, 7]
    p_signal = Fraction(sum(r * r for r in ref), len(ref))
    p_noise = Fraction(sum((r - t) ** 2 for r, t in zip(ref, test, strict=True)), len(ref))
    got = nx.sqnr_db(np.array(ref, dtype=np.int8), np.array(test, dtype=np.int8))
    assert got == pytest.approx(10 * math.log10(p_signal / p_noise), abs=1e-9)
    # noise power exactly 1 and signal power exactly 1 are ordinary ratios: 10*log10(4)
    assert nx.sqnr_db([2.0, 2.0], [1.0, 1.0]) == pytest.approx(10 * math.log10(4.0))
    assert nx.sqnr_db([1.0, 1.0], [1.5, 1.5]) == pytest.approx(10 * math.log10(4.0))
    assert nx.sqnr_db([1.0, -2.0], [1.0, -2.0]) == math.inf
    assert nx.sqnr_db([0.0, 0.0], [0.5, 0.0]) == -math.inf


def test_model_io_dtypes_and_refusals() -> None:
    def tensor(dtype: str, quant: bool) -> SimpleNamespace:
        q = SimpleNamespace(scale=np.array([0.5]), zero_point=np.array([3])) if quant else None
        return SimpleNamespace(name="t", dtype=dtype, quant=q)

    y = np.array([3, 5, -1])
    # int32 outputs (e.g. argmax-free logits) and int16 are dequantized; float16 passes
    for dt in ("int32", "int16", "int8"):
        assert nx.dequantize_outputs(y, tensor(dt, True)).tolist() == [0.0, 1.0, -2.0]
    # float outputs pass through even if the converter left quantization parameters on them
    for dt in ("float32", "float16"):
        out = nx.dequantize_outputs(y.astype(dt), tensor(dt, True))
        assert out.dtype == np.float32 and out.tolist() == [3.0, 5.0, -1.0]
    # an integer output without parameters is returned as its raw values
    assert nx.dequantize_outputs(y, tensor("int8", False)).tolist() == [3.0, 5.0, -1.0]
    with pytest.raises(QuantizeError) as exc:
        nx.dequantize_outputs(y, tensor("bool", True))
    assert str(exc.value) == "model output 't' is bool; edgeq reads integer or float outputs"
    with pytest.raises(QuantizeError) as exc:
        nx.quantize_inputs(y, tensor("float64", True))
    assert str(exc.value) == ("model input 't' is float64; edgeq feeds int8, uint8, int16 or "
                              "float32 inputs")


def test_generated_inputs_span_the_integer_input(tmp_path) -> None:  # noqa: ANN001
    from helpers_elementwise import T, build_model

    from edgeq.errors import DataError

    path = tmp_path / "m.tflite"
    path.write_bytes(build_model("RELU", [T((1, 3, 2), "int8", 0.1, 3)],
                                 [T((1, 3, 2), "int8", 0.1, 3)]))
    x = nx.generated_test_inputs(path, 40, seed=1)
    assert x.dtype == np.int8 and x.shape == (40, 3, 2)
    # the minimum, the maximum and the zero point everywhere, then random values
    assert (x[0] == -128).all() and (x[1] == 127).all() and (x[2] == 3).all()
    rest = x[3:].astype(np.int64)
    assert rest.min() >= -128 and rest.max() <= 127 and len(np.unique(rest)) > 100
    np.testing.assert_array_equal(x, nx.generated_test_inputs(path, 40, seed=1))
    np.testing.assert_array_equal(nx.generated_test_inputs(path, 5),
                                  nx.generated_test_inputs(path, 5, seed=0))  # the default
    # the random part covers both ends of the range (endpoint included); without
    # quantization parameters the zero point is 0
    wide = tmp_path / "wide.tflite"
    wide.write_bytes(build_model("RELU", [T((1, 64, 64), "int8", None)],
                                 [T((1, 64, 64), "int8", None)]))
    w = nx.generated_test_inputs(wide, 4).astype(np.int64)
    assert (w[2] == 0).all() and w[3].min() == -128 and w[3].max() == 127
    assert not np.array_equal(x, nx.generated_test_inputs(path, 40, seed=2))
    two = nx.generated_test_inputs(path, 2)
    assert two.shape == (2, 3, 2) and (two[0] == -128).all() and (two[1] == 127).all()
    path16 = tmp_path / "m16.tflite"
    path16.write_bytes(build_model("RELU", [T((1, 4), "int16", 0.1, 0)],
                                   [T((1, 4), "int16", 0.1, 0)]))
    x16 = nx.generated_test_inputs(path16, 3)
    assert x16.dtype == np.int16 and x16[:2].tolist() == [[-32768] * 4, [32767] * 4]
    assert x16[2].tolist() == [0] * 4
    pathf = tmp_path / "f.tflite"
    pathf.write_bytes(build_model("RELU", [T((1, 4), "float32", None)],
                                  [T((1, 4), "float32", None)]))
    with pytest.raises(DataError) as exc:
        nx.generated_test_inputs(pathf, 3)
    assert str(exc.value) == (f"{pathf}: generated inputs need an integer model input, not "
                              "float32; pass --data DATASET")
