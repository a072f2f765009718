/* RELU / RELU6 / RELU_N1_TO_1 with requantization (TFLM's ReluQuantized), int8 and int16. */
#include "eq_relu_impl.h"

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
