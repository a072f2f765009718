/* DEQUANTIZE: int8/int16 -> float32 for float-I/O models. Bit-exact with TFLM's reference
 * Dequantize: the product scale * (q - zero_point) is formed in double, then rounded to float. */
#include "eq_kernels_conv.h"

eq_status eq_dequantize_f32(const eq_dequantize_params *p, const void *input, float *output)
{
    if (p == NULL || input == NULL || output == NULL ||
        (p->in_dtype != EQ_INT8 && p->in_dtype != EQ_INT16)) {
        return EQ_ERR_ARG;
    }
    const double scale = (double)p->scale;
    for (int32_t i = 0; i < p->count; ++i) {
        const int32_t q = p->in_dtype == EQ_INT8 ? ((const int8_t *)input)[i]
                                                 : ((const int16_t *)input)[i];
        output[i] = (float)(scale * (double)(q - p->zero_point));
    }
    return EQ_OK;
}
