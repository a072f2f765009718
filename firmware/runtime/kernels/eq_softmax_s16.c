/* SOFTMAX int16 -> int16 (output scale 1/32768, zero point 0): TFLM's reference with two
 * interpolated 513-entry lookup tables generated ahead of time. The output buffer holds the
 * exp() values between the two passes, as in TFLM. */
#include "eq_kernels_elementwise.h"
#include "eq_fixedpoint.h"

/* Linear interpolation in a 513-entry table over the int16 range. */
static int16_t lut_lookup(int16_t value, const int16_t *lut)
{
    const uint16_t index = (uint16_t)(256 + (value >> 7));
    const int16_t offset = (int16_t)(value & 0x7f);
    const int16_t base = lut[index];
    const int16_t slope = (int16_t)(lut[index + 1] - lut[index]);
    const int32_t delta = (slope * offset + 64) >> 7;
    return (int16_t)(base + delta);
}

eq_status eq_softmax_s16(const eq_softmax_s16_params *p, const int16_t *input, int16_t *output)
{
    const int16_t *recip_lut;
    int32_t r;
    if (p == 0 || input == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
#if defined(EDGEQ_RT_SINGLE_ROUNDING)
    recip_lut = p->litert_one_over_one_plus_x_lut;
#else
    recip_lut = p->one_over_one_plus_x_lut;
#endif
    if (recip_lut == 0 || p->exp_lut == 0) {
        return EQ_ERR_ARG;
    }
    for (r = 0; r < p->outer; ++r) {
        const int16_t *in = input + r * p->depth;
        int16_t *out = output + r * p->depth;
        int16_t max_in_row = -32768;
        int32_t sum_of_exps = 0;
        int32_t headroom_plus_one;
        int32_t shifted_sum;
        int32_t sym;
        int16_t reciprocal;
        int32_t right_shift;
        int64_t round;
        int32_t c;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            const int32_t scaled =
                eq_requantize_double(diff, p->input_multiplier, p->input_left_shift) + 32767;
            out[c] = lut_lookup((int16_t)eq_clamp_i32(scaled, -32768, 32767), p->exp_lut);
            sum_of_exps += out[c];
        }
        headroom_plus_one = eq_clz32((uint32_t)sum_of_exps);
        shifted_sum =
            (int32_t)((((int64_t)sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        sym = shifted_sum - ((1 << 15) + (1 << 16));
        reciprocal = lut_lookup((int16_t)eq_clamp_i32(sym, -32768, 32767), recip_lut);
        right_shift = 31 - headroom_plus_one;
        round = (int64_t)1 << (right_shift - 1);
        for (c = 0; c < p->depth; ++c) {
            const int32_t result =
                (int32_t)(((int64_t)out[c] * (int64_t)reciprocal + round) >> right_shift);
            out[c] = (int16_t)eq_clamp_i32(result, 0, 32767);
        }
    }
    return EQ_OK;
}
