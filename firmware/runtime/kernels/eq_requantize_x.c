/* QUANTIZE between integer types: requantization between int8, int16 and int32, bit-exact
 * with TFLM's Requantize (input zero point, multiplier, output zero point); uint8 is
 * accepted on either side (uint8-I/O models). */
#include "eq_quantize_impl.h"

eq_status eq_requantize_x(const eq_requantize_params *p, const void *input, void *output)
{
    if (p == NULL || input == NULL || output == NULL || !eq_is_int_type(p->in_dtype) ||
        !eq_is_int_type(p->out_dtype)) {
        return EQ_ERR_ARG;
    }
    const int32_t lo = eq_dtype_min(p->out_dtype);
    const int32_t hi = eq_dtype_max(p->out_dtype);
    for (int32_t i = 0; i < p->count; ++i) {
        int32_t x;
        if (p->in_dtype == EQ_INT8) {
            x = ((const int8_t *)input)[i];
        } else if (p->in_dtype == EQ_UINT8) {
            x = ((const uint8_t *)input)[i];
        } else if (p->in_dtype == EQ_INT16) {
            x = ((const int16_t *)input)[i];
        } else {
            x = ((const int32_t *)input)[i];
        }
        const int32_t y =
            eq_requantize_double(x - p->input_zero_point, p->multiplier, p->shift) + p->output_zero_point;
        eq_store_int(output, p->out_dtype, i, eq_clamp_i32(y, lo, hi));
    }
    return EQ_OK;
}
