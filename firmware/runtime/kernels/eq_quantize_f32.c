/* QUANTIZE: float32 -> int8/int16 (float-I/O models). Bit-exact with TFLM's AffineQuantize
 * (division by the scale in double, round half away from zero). */
#include <math.h>

#include "eq_quantize_impl.h"

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
