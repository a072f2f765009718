/* Clamp without rescaling: TFLM's int8 RELU6 (input and output share quantization). */
#include "eq_kernels_elementwise.h"
#include "eq_math.h"

eq_status eq_clamp_s8(const eq_clamp_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (p == 0 || input == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    for (i = 0; i < p->count; ++i) {
        output[i] = (int8_t)eq_clamp_i32(input[i], p->lower, p->upper);
    }
    return EQ_OK;
}
