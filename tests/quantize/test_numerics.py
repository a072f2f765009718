"""Python requantization numerics against the C runtime's eq_math.h, and the 6.02·b rule."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeq.quantize import numerics as nx

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "real, expected",
    [
        (0.5, (1 << 30, 0)),
        (1.0, (1 << 30, 1)),
        (0.25, (1 << 30, -1)),
        (0.0, (0, 0)),
        (1e-12, (0, 0)),
    ],
)
def test_quantize_multiplier_known_values(real: float, expected: tuple[int, int]) -> None:
    assert nx.quantize_multiplier(real) == expected


def test_quantize_multiplier_reconstructs_the_real() -> None:
    rng = np.random.default_rng(1)
    for real in rng.uniform(1e-6, 8.0, 500):
        m, s = nx.quantize_multiplier(float(real))
        assert (1 << 30) <= m < (1 << 31)
        assert abs(m * 2.0 ** (s - 31) - real) <= real * 2**-30


def test_round_half_away_from_zero() -> None:
    np.testing.assert_array_equal(
        nx.round_half_away(np.array([0.5, -0.5, 1.5, -2.5])), [1, -1, 2, -3]
    )


def test_quantize_dequantize_roundtrip_error_below_half_step() -> None:
    x = np.linspace(-1, 1, 1001)
    scale, zp = nx.affine_params(-1.0, 1.0)
    q = nx.quantize(x, scale, zp, "int8")
    assert q.dtype == np.int8
    assert np.max(np.abs(nx.dequantize(q, scale, zp) - x)) <= scale / 2 + 1e-12


@pytest.mark.parametrize("bits", [4, 8, 16])
def test_sqnr_of_uniform_signal_follows_6_02_b(bits: int) -> None:
    x = np.random.default_rng(0).uniform(-1, 1, 200_000)
    step = 2.0 / 2**bits  # mid-rise grid of 2^b levels over the full scale
    q = (np.floor(x / step) + 0.5) * step
    assert abs(nx.sqnr_db(x, q) - nx.sqnr_theory_db(bits)) < 0.5


def _c_requantize(
    xs: np.ndarray, ms: np.ndarray, ss: np.ndarray, tmp: Path, single: bool
) -> np.ndarray:
    src = tmp / "rq.c"
    src.write_text(
        '#include <stdio.h>\n#include "eq_math.h"\n'
        "int main(void) { long long x, m, s;\n"
        '  while (scanf("%lld %lld %lld", &x, &m, &s) == 3)\n'
        '    printf("%ld\\n", (long)eq_requantize((int32_t)x, (int32_t)m, (int32_t)s));\n'
        "  return 0; }\n"
    )
    exe = tmp / ("rq_single" if single else "rq_double")
    flags = ["-DEDGEQ_RT_SINGLE_ROUNDING"] if single else []
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O2",
            *flags,
            f"-I{REPO / 'firmware/runtime/include'}",
            str(src),
            "-o",
            str(exe),
        ],
        check=True,
    )
    stdin = "\n".join(f"{x} {m} {s}" for x, m, s in zip(xs, ms, ss, strict=True))
    out = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True).stdout
    return np.array([int(v) for v in out.split()], dtype=np.int64)


@pytest.mark.parametrize("single", [False, True])
def test_c_requantize_matches_python(tmp_path: Path, single: bool) -> None:
    rng = np.random.default_rng(7)
    n = 4000
    xs = rng.integers(-(1 << 24), 1 << 24, n)
    xs[:8] = [0, 1, -1, (1 << 31) - 1, -(1 << 31), 12345, -12345, 1 << 20]
    reals = np.exp(rng.uniform(np.log(1e-6), np.log(4.0), n))
    pairs = [nx.quantize_multiplier(float(r)) for r in reals]
    ms = np.array([p[0] for p in pairs])
    ss = np.array([p[1] for p in pairs])
    if single:  # single rounding is only defined for shifts that keep the product in int64
        ss = np.minimum(ss, 0)
    expected = nx.multiply_by_quantized_multiplier(xs, ms, ss, single_rounding=single)
    got = _c_requantize(xs, ms, ss, tmp_path, single)
    np.testing.assert_array_equal(got, expected)


def test_fused_activation_range_on_the_output_grid() -> None:
    from edgeq.quantize.numerics import fused_activation_range

    # RELU6 with the converter's usual output grid [0, 6] -> the whole int8 range
    assert fused_activation_range("RELU6", 6.0 / 255, -128, "int8") == (-128, 127)
    # a grid wider than the clamp: 0 -> zp, 6 -> zp + round(6 / s), worked by hand
    assert fused_activation_range("RELU6", 0.1, -10, "int8") == (-10, 50)
    assert fused_activation_range("RELU", 0.1, -10, "int8") == (-10, 127)
    assert fused_activation_range("RELU_N1_TO_1", 0.25, 0, "int16") == (-4, 4)
    assert fused_activation_range("NONE", 0.1, 3, "int16") == (-32768, 32767)
    # a tiny scale saturates (int32) instead of wrapping, then meets the dtype's range
    assert fused_activation_range("RELU6", 1e-12, 0, "int8") == (0, 127)
    with pytest.raises(ValueError, match="TANH"):
        fused_activation_range("TANH", 0.1, 0, "int8")
