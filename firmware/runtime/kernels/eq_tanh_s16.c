/* TANH, int16 (TFLM's reference): the sigmoid table read with 8 fractional bits (tanh(x) =
 * 2 sigmoid(2x) - 1), mirrored for negative inputs, rounded back to Q0.15. */
#include "eq_kernels_math.h"

eq_status eq_tanh_s16(const eq_sigmoid_s16_params *p, const int16_t *input, int16_t *output)
{
    const int32_t round = p != 0 && p->input_left_shift > 0 ? 1 << (p->input_left_shift - 1) : 0;
    int32_t i;
    if (p == 0 || input == 0 || output == 0 || p->sigmoid_table == 0 || p->input_left_shift < 0) {
        return EQ_ERR_ARG;
    }
    for (i = 0; i < p->count; ++i) {
        const int32_t x = ((int32_t)input[i] * p->input_multiplier + round) >> p->input_left_shift;
        const uint32_t ax = x < 0 ? (uint32_t)0 - (uint32_t)x : (uint32_t)x;
        const uint32_t uh = ax >> 8;
        int32_t result;
        if (uh >= 255U) {
            result = (int32_t)(UINT32_C(0xFFFF) << 8);
        } else {
            const uint32_t ua = p->sigmoid_table[uh];
            const uint32_t ub = p->sigmoid_table[uh + 1U];
            result = (int32_t)((ua << 8) + (ax & 0xFFU) * (ub - ua));
        }
        result = x >= 0 ? result - (1 << 23) + (1 << 7) : -result + (1 << 23) + (1 << 7) - 1;
        output[i] = (int16_t)(result >> 8);
    }
    return EQ_OK;
}
