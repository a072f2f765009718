/* HARD_SWISH, int8: TFLM's reference, x * relu6(x + 3) / 6 in 16-bit fixed point. */
#include "eq_kernels_elementwise.h"

static int16_t sat_left_shift16(int16_t v, int32_t amount)
{
    const int64_t r = (int64_t)v * ((int64_t)1 << amount);
    return (int16_t)(r > 32767 ? 32767 : (r < -32768 ? -32768 : r));
}

/* gemmlowp's 16-bit SaturatingRoundingDoublingHighMul. */
static int16_t srdhm16(int16_t a, int16_t b)
{
    const int32_t ab = (int32_t)a * (int32_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    if (a == b && a == -32768) {
        return 32767;
    }
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* Doubling high multiply rounding toward zero (ARM SQDMULH). */
static int16_t sdhm16(int16_t a, int16_t b)
{
    const int32_t ab = (int32_t)a * (int32_t)b;
    if (a == b && a == -32768) {
        return 32767;
    }
    return (int16_t)(ab / (1 << 15));
}

static int16_t rounding_divide_by_pot16(int16_t x, int32_t exponent)
{
    const int16_t mask = (int16_t)((1 << exponent) - 1);
    const int16_t remainder = (int16_t)(x & mask);
    const int16_t threshold = (int16_t)((mask >> 1) + (x < 0 ? 1 : 0));
    return (int16_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

eq_status eq_hard_swish_s8(const eq_hard_swish_params *p, const int8_t *input, int8_t *output)
{
    int16_t out_mult;
    int16_t reluish_mult;
    int32_t reluish_exp;
    int32_t i;
    if (p == 0 || input == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    out_mult = (int16_t)p->output_multiplier_fixedpoint_int16;
    reluish_mult = (int16_t)p->reluish_multiplier_fixedpoint_int16;
    reluish_exp = p->reluish_multiplier_exponent;
    for (i = 0; i < p->count; ++i) {
        const int16_t x = (int16_t)(input[i] - p->input_zero_point);
        const int16_t hires = (int16_t)(x * (1 << 7));
        const int16_t preshift_out = srdhm16(hires, out_mult);
        int16_t reluish = hires;
        int16_t preshift;
        int32_t y;
        if (reluish_exp > 0) {
            reluish = sat_left_shift16(reluish, reluish_exp - 1);
        }
        reluish = srdhm16(reluish, reluish_mult);
        if (reluish_exp > 0) {
            reluish = sat_left_shift16(reluish, 1);
        }
        if (reluish_exp < 0) {
            reluish = rounding_divide_by_pot16(reluish, -reluish_exp);
        }
        reluish = (int16_t)((reluish + (1 << 15)) >> 1);
        preshift = sdhm16(reluish, preshift_out);
        /* TFLM adds the zero point in int16 arithmetic (wrapping), then clamps. */
        y = (int16_t)(rounding_divide_by_pot16(preshift, -p->output_multiplier_exponent) +
                      p->output_zero_point);
        y = y > 127 ? 127 : (y < -128 ? -128 : y);
        output[i] = (int8_t)y;
    }
    return EQ_OK;
}
