/* RSQRT of one integer value (TFLM's elementwise.cc RsqrtEvalQuantized, int8 and int16):
 * 1/sqrt by gemmlowp's Newton-Raphson iteration (GetInvSqrtQuantizedMultiplierExp), then
 * requantized. Shared by eq_rsqrt_s8 and eq_rsqrt_s16. */
#ifndef EQ_RSQRT_IMPL_H
#define EQ_RSQRT_IMPL_H

#include "eq_fixedpoint.h"
#include "eq_kernels_math.h"

#define EQ_RSQRT_SHIFT 20 /* keeps the intermediate value an integer */

/* 1/sqrt(input) as a Q0.31 multiplier and a (left) shift, input > 1. */
static inline void eq_inv_sqrt(int32_t input, int32_t *multiplier, int32_t *shift)
{
    int32_t out_shift = 11;
    int32_t pairs;
    int32_t half_input;
    int32_t x = INT32_C(1) << 28; /* 1.0 in Q3.28 */
    int32_t i;
    while (input >= (INT32_C(1) << 29)) {
        input /= 4;
        ++out_shift;
    }
    pairs = (eq_clz32((uint32_t)input) - 1) / 2 - 1;
    out_shift -= pairs;
    input <<= 2 * pairs;
    half_input = eq_fp_sat_rounding_mul_pot(input >> 1, -1);
    for (i = 0; i < 5; ++i) {
        /* x^3 is Q9 -> Q3; (1.5 x - x^3 / 2 * input) is Q6 -> Q3 */
        const int32_t x3 = eq_fp_sat_rounding_mul_pot(eq_fp_mul(eq_fp_mul(x, x), x), 6);
        const int32_t t = eq_fp_sub(eq_fp_mul((INT32_C(1) << 28) + (INT32_C(1) << 27), x),
                                    eq_fp_mul(half_input, x3));
        x = eq_fp_sat_rounding_mul_pot(t, 3);
    }
    x = eq_fp_mul(x, 1518500250); /* sqrt(2) / 2 in Q0.31 */
    if (out_shift < 0) {
        x = (int32_t)((uint32_t)x << -out_shift);
        out_shift = 0;
    }
    *multiplier = x;
    *shift = -out_shift;
}

/* value = input - zero point >= 0; the output clamped to [qmin, qmax]. */
static inline int32_t eq_rsqrt_elem(const eq_rsqrt_params *p, int32_t value, int32_t qmin,
                                    int32_t qmax)
{
    int32_t m = INT32_MAX;
    int32_t s = 0;
    int32_t data;
    if (value == 0) {
        return qmax; /* TFLM: a value close to 0 gives the largest output */
    }
    if (value > 1) {
        eq_inv_sqrt(value, &m, &s);
    }
    data = eq_requantize_double(1, m, s + EQ_RSQRT_SHIFT);
    return eq_clamp_i32(eq_requantize_double(data, p->multiplier, p->shift - EQ_RSQRT_SHIFT) +
                            p->output_offset,
                        qmin, qmax);
}

#endif /* EQ_RSQRT_IMPL_H */
