/* RSQRT, int16 activations: a negative input (below the zero point) returns EQ_ERR_ARG,
 * as TFLM's kernel fails on it. */
#include "eq_rsqrt_impl.h"

eq_status eq_rsqrt_s16(const eq_rsqrt_params *p, const int16_t *input, int16_t *output)
{
    int32_t i;
    if (p == 0 || input == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    for (i = 0; i < p->count; ++i) {
        const int32_t value = (int32_t)input[i] - p->input_offset;
        if (value < 0) {
            return EQ_ERR_ARG;
        }
        output[i] = (int16_t)eq_rsqrt_elem(p, value, -32768, 32767);
    }
    return EQ_OK;
}
