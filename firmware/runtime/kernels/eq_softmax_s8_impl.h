/* Shared by eq_softmax_s8.c and eq_softmax_s8_s16.c: one row of the int8-input softmax. */
#ifndef EQ_SOFTMAX_S8_IMPL_H
#define EQ_SOFTMAX_S8_IMPL_H

#include "eq_fixedpoint.h"
#include "eq_kernels_elementwise.h"

enum { EQ_SCALED_DIFF_INT_BITS = 5, EQ_ACCUM_INT_BITS = 12 };

static inline int32_t scaled_diff(const eq_softmax_params *p, int32_t diff)
{
    /* MultiplyByQuantizedMultiplierGreaterThanOne: left shift, then doubling high multiply. */
    return eq_requantize_double(diff, p->input_multiplier, p->input_left_shift);
}

static inline void softmax_row(const eq_softmax_params *p, const int8_t *in, int32_t out_bits,
                        int32_t out_min, int32_t out_max, int8_t *out8, int16_t *out16)
{
    int32_t max_in_row = -128;
    int32_t sum_of_exps = 0;
    int32_t num_bits_over_unit = 0;
    int32_t shifted_scale;
    int32_t exponent;
    int32_t c;
    for (c = 0; c < p->depth; ++c) {
        max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
    }
    for (c = 0; c < p->depth; ++c) {
        const int32_t diff = (int32_t)in[c] - max_in_row;
        if (diff >= p->diff_min) {
            const int32_t e = eq_fp_exp_on_negative_values(scaled_diff(p, diff),
                                                           EQ_SCALED_DIFF_INT_BITS);
            sum_of_exps = eq_fp_add(sum_of_exps,
                                    eq_fp_sat_rounding_mul_pot(e, -EQ_ACCUM_INT_BITS));
        }
    }
    shifted_scale = eq_fp_reciprocal(sum_of_exps, EQ_ACCUM_INT_BITS, &num_bits_over_unit);
    exponent = num_bits_over_unit + 31 - out_bits;
    for (c = 0; c < p->depth; ++c) {
        const int32_t diff = (int32_t)in[c] - max_in_row;
        int32_t result = out_min;
        if (diff >= p->diff_min) {
            const int32_t e = eq_fp_exp_on_negative_values(scaled_diff(p, diff),
                                                           EQ_SCALED_DIFF_INT_BITS);
            const int32_t unsat =
                eq_rounding_divide_by_pot(eq_fp_mul(shifted_scale, e), exponent);
            result = eq_clamp_i32(unsat + out_min, out_min, out_max);
        }
        if (out8 != 0) {
            out8[c] = (int8_t)result;
        } else {
            out16[c] = (int16_t)result;
        }
    }
}

#endif /* EQ_SOFTMAX_S8_IMPL_H */
