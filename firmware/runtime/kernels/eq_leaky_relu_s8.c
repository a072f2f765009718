/* LEAKY_RELU, int8 and int16: TFLM's QuantizeLeakyRelu (two requantizations, picked by sign). */
#include "eq_leaky_relu_impl.h"

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
