/* LOGISTIC, int16 (TFLM's reference): table interpolation over |x| with 9 fractional bits,
 * mirrored for negative inputs, rounded back to Q0.15. */
#include "eq_kernels_math.h"

eq_status eq_logistic_s16(const eq_sigmoid_s16_params *p, const int16_t *input, int16_t *output)
{
    const int32_t round = p != 0 && p->input_left_shift > 0 ? 1 << (p->input_left_shift - 1) : 0;
    int32_t i;
    if (p == 0 || input == 0 || output == 0 || p->sigmoid_table == 0 || p->input_left_shift < 0) {
        return EQ_ERR_ARG;
    }
    for (i = 0; i < p->count; ++i) {
        const int32_t x = ((int32_t)input[i] * p->input_multiplier + round) >> p->input_left_shift;
        const uint32_t ax = x < 0 ? (uint32_t)0 - (uint32_t)x : (uint32_t)x;
        const uint32_t uh = ax >> 9;
        uint32_t result;
        if (uh >= 255U) {
            result = UINT32_C(0x7FFF) << 10;
        } else {
            const uint32_t ua = p->sigmoid_table[uh];
            const uint32_t ub = p->sigmoid_table[uh + 1U];
            result = (ua << 9) + (ax & 0x1FFU) * (ub - ua);
        }
        result = x >= 0 ? result + (1U << 9) : (1U << 25) - result + (1U << 9) - 1U;
        output[i] = (int16_t)(int32_t)(result >> 10);
    }
    return EQ_OK;
}
