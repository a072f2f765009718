/* RELU / RELU6 / RELU_N1_TO_1 with requantization (TFLM's ReluQuantized), int8 and int16. */
#include "eq_kernels_elementwise.h"
#include "eq_math.h"

static int32_t relu_elem(const eq_relu_params *p, int32_t x)
{
    const int32_t v = p->output_offset + eq_requantize_double(x - p->input_offset,
                                                              p->output_multiplier,
                                                              p->output_shift);
    return eq_clamp_i32(v, p->act_min, p->act_max);
}

eq_status eq_relu_s8(const eq_relu_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (p == 0 || input == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    for (i = 0; i < p->count; ++i) {
        output[i] = (int8_t)relu_elem(p, input[i]);
    }
    return EQ_OK;
}

eq_status eq_relu_s16(const eq_relu_params *p, const int16_t *input, int16_t *output)
{
    int32_t i;
    if (p == 0 || input == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    for (i = 0; i < p->count; ++i) {
        output[i] = (int16_t)relu_elem(p, input[i]);
    }
    return EQ_OK;
}
