/* Fixed-point requantization shared by every kernel: one path, two rounding modes.
 *
 * Default: TFLite Micro's double rounding (saturating rounding doubling high multiply, then a
 * rounding right shift). With EDGEQ_RT_SINGLE_ROUNDING: one 64-bit multiply and one rounding
 * shift, as LiteRT 2.3's reference FULLY_CONNECTED (TFLITE_SINGLE_ROUNDING). Mirrors
 * edgeq.quantize.numerics.multiply_by_quantized_multiplier. */
#ifndef EQ_MATH_H
#define EQ_MATH_H

#include <stdint.h>

/* Branch hint: the common case first and in line (plain condition without GCC/Clang). */
#if defined(__GNUC__)
#define EQ_LIKELY(c) __builtin_expect(!!(c), 1)
#else
#define EQ_LIKELY(c) (c)
#endif

/* A few-instruction helper in line even where the compiler weighs size (-Os, the size build):
 * a call would cost more than the helper's own instructions. */
#if defined(__GNUC__)
#define EQ_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define EQ_ALWAYS_INLINE static inline
#endif

/* gemmlowp's SaturatingRoundingDoublingHighMul: (a * b + nudge) / 2^31 truncated, nudge = 2^30
 * for a * b >= 0 and 1 - 2^30 otherwise. For a negative product, truncating (t) toward zero is
 * flooring t + 2^31 - 1 = a * b + 2^30, so both signs are floor((a * b + 2^30) / 2^31): one
 * 32x32->64 multiply (SMULL on Cortex-M3/M4/M33), a 64-bit add and a constant shift. Only
 * INT32_MIN * INT32_MIN saturates; a requantization multiplier is never INT32_MIN. */
static inline int32_t eq_rounding_doubling_high_mul_nosat(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b + (INT64_C(1) << 30)) >> 31);
}

static inline int32_t eq_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return eq_rounding_doubling_high_mul_nosat(a, b);
}

/* gemmlowp's RoundingDivideByPOT (round half away from zero), exponent in [0, 31]. The threshold
 * (mask >> 1) + (x < 0) is written as (mask >> 1) - (x >> 31): no branch, no overflow. */
static inline int32_t eq_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1U);
    const int32_t threshold = (mask >> 1) - (x >> 31);
    return (x >> exponent) + ((x & mask) > threshold ? 1 : 0);
}

/* TFLM's double rounding for a right shift e = -shift >= 2, both roundings in one 64-bit sum.
 * With h = floor((x*m + 2^30) / 2^31) (the rounding doubling high multiply) and
 * c = 2^(e-1) - [h < 0], the rounding divide floor((h + c) / 2^e) equals
 * floor((x*m + 2^30 + c * 2^31) / 2^(31+e)) (nested floors of divisions compose), i.e. the
 * high word of x*m + K shifted right by e - 1. [h < 0] may be read as [x < 0] (m >= 0): when
 * they differ, h == 0 and both c give 0. K's low word is 2^30 + 2^31 [x < 0], its high word
 * k_hi - [x < 0] with k_hi = 2^(e-2): one SMLAL and one shift. k_hi and rshift = e - 1 may be
 * precomputed per channel (edgeq.codegen.ops_conv.fast_requant). */
EQ_ALWAYS_INLINE int32_t eq_requantize_double_pre(int32_t x, int32_t multiplier, int32_t k_hi,
                                                  int32_t rshift)
{
    const uint32_t sign = (uint32_t)x & UINT32_C(0x80000000);
    const uint32_t hi = (uint32_t)k_hi - (sign >> 31);
    const int64_t k = (int64_t)(((uint64_t)hi << 32) | (UINT32_C(0x40000000) | sign));
    return (int32_t)(((int64_t)x * (int64_t)multiplier + k) >> 32) >> rshift;
}

/* TFLM's MultiplyByQuantizedMultiplier (double rounding). A left shift (shift > 0, rare:
 * effective scale >= 1) saturates x * 2^shift to int32 first. multiplier >= 0. */
static inline int32_t eq_requantize_double(int32_t x, int32_t multiplier, int32_t shift)
{
    if (EQ_LIKELY(shift <= -2)) {
        return eq_requantize_double_pre(x, multiplier, INT32_C(1) << (-shift - 2), -shift - 1);
    }
    if (shift > 0) {
        const int64_t wide = (int64_t)x * (int64_t)(INT32_C(1) << shift);
        x = wide > INT32_MAX ? INT32_MAX : (wide < INT32_MIN ? INT32_MIN : (int32_t)wide);
        return eq_rounding_doubling_high_mul_nosat(x, multiplier);
    }
    return eq_rounding_divide_by_pot(eq_rounding_doubling_high_mul_nosat(x, multiplier), -shift);
}

static inline int32_t eq_requantize_single(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t total_shift = 31 - shift;
    const int64_t round = (int64_t)1 << (total_shift - 1);
    return (int32_t)(((int64_t)x * multiplier + round) >> total_shift);
}

/* The requantization every kernel calls. */
static inline int32_t eq_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
#if defined(EDGEQ_RT_SINGLE_ROUNDING)
    return eq_requantize_single(x, multiplier, shift);
#else
    return eq_requantize_double(x, multiplier, shift);
#endif
}

/* Requantization of an int64 accumulator (int16x8 kernels with int64 bias). TFLM and LiteRT use
 * the same formula in both rounding modes: the multiplier reduced to 16 bits, one rounding shift.
 * Valid for |x| < 2^47 and shift in [-31, 7], as the reference kernels assume. */
static inline int32_t eq_requantize_i64(int64_t x, int32_t multiplier, int32_t shift)
{
    const int32_t reduced = multiplier < 0x7FFF0000 ? ((multiplier + (1 << 15)) >> 16) : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    const int64_t round = (int64_t)1 << (total_shift - 1);
    return (int32_t)((x * (int64_t)reduced + round) >> total_shift);
}

static inline int32_t eq_clamp_i32(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

#endif /* EQ_MATH_H */
