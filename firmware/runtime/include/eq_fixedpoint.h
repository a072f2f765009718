/* gemmlowp-style fixed-point functions used by TFLM's integer SOFTMAX, LOGISTIC and TANH.
 *
 * A Qm value is an int32 with m integer bits and 31 - m fractional bits. These follow the
 * scalar semantics of gemmlowp's fixedpoint.h exactly (plain wrapping adds, saturating
 * rounding doubling high multiply, rounding shifts), because bit-exactness with TFLM depends
 * on every rounding step. Built on eq_math.h. */
#ifndef EQ_FIXEDPOINT_H
#define EQ_FIXEDPOINT_H

#include <stdint.h>

#include "eq_math.h"

/* Wrapping int32 arithmetic (gemmlowp's Add/Sub/Neg on raw values) without signed overflow UB. */
static inline int32_t eq_fp_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t eq_fp_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

static inline int32_t eq_fp_mul(int32_t a, int32_t b)
{
    return eq_sat_rounding_doubling_high_mul(a, b);
}

/* x * 2^exponent: saturating for exponent > 0, rounding for exponent < 0. */
static inline int32_t eq_fp_sat_rounding_mul_pot(int32_t x, int32_t exponent)
{
    if (exponent > 0) {
        const int32_t threshold = (int32_t)((UINT32_C(1) << (31 - exponent)) - 1U);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return (int32_t)((uint32_t)x << exponent);
    }
    if (exponent < 0) {
        return eq_rounding_divide_by_pot(x, -exponent);
    }
    return x;
}

/* (a + b) / 2 rounded half away from zero. */
static inline int32_t eq_fp_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out. */
static inline int32_t eq_fp_exp_on_interval_neg_quarter_0(int32_t a)
{
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = eq_fp_add(a, INT32_C(1) << 28);
    const int32_t x2 = eq_fp_mul(x, x);
    const int32_t x3 = eq_fp_mul(x2, x);
    const int32_t x4 = eq_fp_mul(x2, x2);
    const int32_t x4_over_4 = eq_fp_sat_rounding_mul_pot(x4, -2);
    const int32_t poly = eq_fp_sat_rounding_mul_pot(
        eq_fp_add(eq_fp_mul(eq_fp_add(x4_over_4, x3), constant_1_over_3), x2), -1);
    return eq_fp_add(constant_term, eq_fp_mul(constant_term, eq_fp_add(x, poly)));
}

/* exp(a) for a <= 0 given in Q(integer_bits); result Q0.31. */
static inline int32_t eq_fp_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                           39332535,   720401,     242};
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = INT32_C(1) << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = eq_fp_sub(a & mask, one_quarter);
    int32_t result = eq_fp_exp_on_interval_neg_quarter_0(
        eq_fp_sat_rounding_mul_pot(a_mod_quarter_minus_one_quarter, integer_bits));
    const int32_t remainder = eq_fp_sub(a_mod_quarter_minus_one_quarter, a);
    int32_t exponent;
    for (exponent = -2; exponent <= 4; ++exponent) {
        if (integer_bits > exponent) {
            const int32_t shift = fractional_bits + exponent;
            if ((remainder & (int32_t)(UINT32_C(1) << shift)) != 0) {
                result = eq_fp_mul(result, multipliers[exponent + 2]);
            }
        }
    }
    if (integer_bits > 5) {
        const int32_t clamp = -(int32_t)(UINT32_C(1) << (36 - integer_bits));
        if (a < clamp) {
            result = 0;
        }
    }
    if (a == 0) {
        result = INT32_MAX;
    }
    return result;
}

/* Newton-Raphson 1/(1+a) for a in [0, 1), Q0.31 in; returns the Q2.29 estimate. */
static inline int32_t eq_fp_newton_one_over_one_plus_x(int32_t a)
{
    const int32_t half_denominator = eq_fp_rounding_half_sum(a, INT32_MAX);
    const int32_t constant_48_over_17 = 1515870810;
    const int32_t constant_neg_32_over_17 = -1010580540;
    const int32_t f2_one = INT32_C(1) << 29; /* 1.0 in Q2.29 */
    int32_t x =
        eq_fp_add(constant_48_over_17, eq_fp_mul(half_denominator, constant_neg_32_over_17));
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = eq_fp_mul(half_denominator, x);
        const int32_t one_minus = eq_fp_sub(f2_one, half_denominator_times_x);
        x = eq_fp_add(x, eq_fp_sat_rounding_mul_pot(eq_fp_mul(x, one_minus), 2));
    }
    return x;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out. */
static inline int32_t eq_fp_one_over_one_plus_x(int32_t a)
{
    return eq_fp_sat_rounding_mul_pot(eq_fp_newton_one_over_one_plus_x(a), 1);
}

/* (1 - a) / (1 + a) for a in [0, 1), Q0.31 in and out. */
static inline int32_t eq_fp_one_minus_x_over_one_plus_x(int32_t a)
{
    return eq_fp_sat_rounding_mul_pot(
        eq_fp_sub(eq_fp_newton_one_over_one_plus_x(a), INT32_C(1) << 29), 2);
}

/* logistic(a), a in Q(integer_bits); result Q0.31. */
static inline int32_t eq_fp_logistic(int32_t a, int32_t integer_bits)
{
    const int32_t abs_a = a > 0 ? a : eq_fp_sub(0, a);
    const int32_t if_positive =
        eq_fp_one_over_one_plus_x(eq_fp_exp_on_negative_values(eq_fp_sub(0, abs_a), integer_bits));
    if (a == 0) {
        return INT32_C(1) << 30;
    }
    return a > 0 ? if_positive : eq_fp_sub(INT32_MAX, if_positive);
}

/* tanh(a), a in Q(integer_bits); result Q0.31. */
static inline int32_t eq_fp_tanh(int32_t a, int32_t integer_bits)
{
    const int32_t n = a < 0 ? a : eq_fp_sub(0, a);
    const int32_t t =
        eq_fp_one_minus_x_over_one_plus_x(eq_fp_exp_on_negative_values(n, integer_bits + 1));
    if (a == 0) {
        return 0;
    }
    return a < 0 ? eq_fp_sub(0, t) : t;
}

/* Count of leading zero bits of a 32-bit value (32 for 0). */
static inline int32_t eq_clz32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0U) {
        return 32;
    }
    while ((x & UINT32_C(0x80000000)) == 0U) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* 1/x for x in Q(x_integer_bits) > 0: returns Q0.31 of 1/(x / 2^num_bits_over_unit). */
static inline int32_t eq_fp_reciprocal(int32_t x, int32_t x_integer_bits,
                                       int32_t *num_bits_over_unit)
{
    const int32_t headroom_plus_one = eq_clz32((uint32_t)x);
    const int32_t shifted_minus_one =
        (int32_t)(((uint32_t)x << headroom_plus_one) - (UINT32_C(1) << 31));
    *num_bits_over_unit = x_integer_bits - headroom_plus_one;
    return eq_fp_one_over_one_plus_x(shifted_minus_one);
}

#endif /* EQ_FIXEDPOINT_H */
