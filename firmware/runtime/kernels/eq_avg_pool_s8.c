/* AVERAGE_POOL_2D, int8_t: the mean of the window's in-image part, rounded half away from zero.
 * Bit-exact with TFLM's reference_integer_ops::AveragePool (padding never counts). */
#include "eq_kernels_conv.h"
#include "eq_math.h"

eq_status eq_avg_pool_s8(const eq_pool_params *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return EQ_ERR_ARG;
    }
    for (int32_t b = 0; b < p->batches; ++b) {
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride.h - p->padding.h;
            const int32_t fy0 = in_y0 < 0 ? -in_y0 : 0;
            const int32_t fy1 = p->filter_h < p->in_h - in_y0 ? p->filter_h : p->in_h - in_y0;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride.w - p->padding.w;
                const int32_t fx0 = in_x0 < 0 ? -in_x0 : 0;
                const int32_t fx1 = p->filter_w < p->in_w - in_x0 ? p->filter_w : p->in_w - in_x0;
                const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                if (fy1 <= fy0 || fx1 <= fx0) {
                    return EQ_ERR_ARG;
                }
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * p->channels;
                for (int32_t c = 0; c < p->channels; ++c) {
                    int32_t acc = 0;
                    for (int32_t fy = fy0; fy < fy1; ++fy) {
                        const int8_t *row =
                            input + ((b * p->in_h + in_y0 + fy) * p->in_w) * p->channels + c;
                        for (int32_t fx = fx0; fx < fx1; ++fx) {
                            acc += row[(in_x0 + fx) * p->channels];
                        }
                    }
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    out[c] = (int8_t)eq_clamp_i32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
    return EQ_OK;
}
