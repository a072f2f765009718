/* LEAKY_RELU, int8 and int16: TFLM's QuantizeLeakyRelu (two requantizations, picked by sign). */
#include "eq_kernels_elementwise.h"
#include "eq_math.h"

static int32_t leaky_elem(const eq_leaky_relu_params *p, int32_t x)
{
#if defined(EDGEQ_RT_SINGLE_ROUNDING)
    const eq_leaky_relu_multipliers *m = &p->litert;
#else
    const eq_leaky_relu_multipliers *m = &p->tflm;
#endif
    const int32_t v = x - p->input_offset;
    if (v >= 0) {
        return p->output_offset +
               eq_requantize_double(v, m->multiplier_identity, m->shift_identity);
    }
    return p->output_offset + eq_requantize_double(v, m->multiplier_alpha, m->shift_alpha);
}

eq_status eq_leaky_relu_s8(const eq_leaky_relu_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (p == 0 || input == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    for (i = 0; i < p->count; ++i) {
        output[i] = (int8_t)eq_clamp_i32(leaky_elem(p, input[i]), -128, 127);
    }
    return EQ_OK;
}

eq_status eq_leaky_relu_s16(const eq_leaky_relu_params *p, const int16_t *input,
                            int16_t *output)
{
    int32_t i;
    if (p == 0 || input == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    for (i = 0; i < p->count; ++i) {
        output[i] = (int16_t)eq_clamp_i32(leaky_elem(p, input[i]), -32768, 32767);
    }
    return EQ_OK;
}
