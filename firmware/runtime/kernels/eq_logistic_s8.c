/* LOGISTIC, int8 (output zero point -128, scale 1/256): TFLM's gemmlowp reference, no LUT. */
#include "eq_fixedpoint.h"
#include "eq_kernels_elementwise.h"

eq_status eq_logistic_s8(const eq_sigmoid_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (p == 0 || input == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    for (i = 0; i < p->count; ++i) {
        const int32_t x = (int32_t)input[i] - p->input_zero_point;
        int32_t y;
        if (x <= -p->input_range_radius) {
            y = -128;
        } else if (x >= p->input_range_radius) {
            y = 127;
        } else {
            const int32_t x_q4 = eq_requantize_double(x, p->input_multiplier, p->input_left_shift);
            const int32_t y_q0 = eq_fp_logistic(x_q4, 4);
            y = eq_clamp_i32(eq_rounding_divide_by_pot(y_q0, 23) - 128, -128, 127);
        }
        output[i] = (int8_t)y;
    }
    return EQ_OK;
}
