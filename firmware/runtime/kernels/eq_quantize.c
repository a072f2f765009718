/* QUANTIZE: float32 -> int8/int16 (float-I/O models) and integer requantization between int8,
 * int16 and int32. Bit-exact with TFLM's AffineQuantize (division by the scale in double,
 * round half away from zero) and Requantize (input zero point, multiplier, output zero point);
 * uint8 is accepted on either side of a requantization (uint8-I/O models). */
#include <math.h>

#include "eq_kernels_conv.h"
#include "eq_math.h"

static int32_t eq_dtype_min(eq_dtype t)
{
    return t == EQ_INT8 ? -128 : (t == EQ_INT16 ? -32768 : (t == EQ_UINT8 ? 0 : INT32_MIN));
}

static int32_t eq_dtype_max(eq_dtype t)
{
    return t == EQ_INT8 ? 127 : (t == EQ_INT16 ? 32767 : (t == EQ_UINT8 ? 255 : INT32_MAX));
}

static int eq_is_int_type(eq_dtype t)
{
    return t == EQ_INT8 || t == EQ_INT16 || t == EQ_INT32 || t == EQ_UINT8;
}

static void eq_store_int(void *out, eq_dtype t, int32_t i, int32_t v)
{
    if (t == EQ_INT8) {
        ((int8_t *)out)[i] = (int8_t)v;
    } else if (t == EQ_UINT8) {
        ((uint8_t *)out)[i] = (uint8_t)v;
    } else if (t == EQ_INT16) {
        ((int16_t *)out)[i] = (int16_t)v;
    } else {
        ((int32_t *)out)[i] = v;
    }
}

eq_status eq_quantize_f32(const eq_quantize_params *p, const float *input, void *output)
{
    if (p == NULL || input == NULL || output == NULL ||
        (p->out_dtype != EQ_INT8 && p->out_dtype != EQ_INT16)) {
        return EQ_ERR_ARG;
    }
    const double scale = (double)p->scale;
    const double lo = (double)eq_dtype_min(p->out_dtype) - (double)p->zero_point;
    const double hi = (double)eq_dtype_max(p->out_dtype) - (double)p->zero_point;
    for (int32_t i = 0; i < p->count; ++i) {
        /* Clamp before the int conversion: out-of-range casts are undefined in C. The clamp
         * bounds are integers, so clamping before or after rounding gives the same result. */
        double r = round((double)input[i] / scale);
        r = r < lo ? lo : (r > hi ? hi : r);
        eq_store_int(output, p->out_dtype, i, (int32_t)r + p->zero_point);
    }
    return EQ_OK;
}

eq_status eq_quantize_int(const eq_requantize_params *p, const void *input, void *output)
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
