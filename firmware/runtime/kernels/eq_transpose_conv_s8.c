/* TRANSPOSE_CONV, int8_t activations, int8 per-channel filters (OHWI), int32 bias.
 * Bit-exact with TFLM's reference_integer_ops::TransposeConv: every input value is scattered
 * through the filter into a int32_t accumulator per output element (the scratch buffer), then
 * each accumulator gets the bias and is requantized (double rounding, as LiteRT's reference). */
#include <string.h>

#include "eq_kernels_conv.h"
#include "eq_math.h"

int32_t eq_transpose_conv_s8_get_buffer_size(const eq_transpose_conv_params *p)
{
    return p->batches * p->out_h * p->out_w * p->out_c * (int32_t)sizeof(int32_t);
}

eq_status eq_transpose_conv_s8(const eq_transpose_conv_params *p, const int8_t *filter,
                               const int8_t *input, const int32_t *bias, int8_t *output,
                               void *scratch)
{
    if (p == NULL || filter == NULL || input == NULL || output == NULL || scratch == NULL) {
        return EQ_ERR_ARG;
    }
    int32_t *acc = (int32_t *)scratch;
    memset(acc, 0, (size_t)eq_transpose_conv_s8_get_buffer_size(p));
    for (int32_t b = 0; b < p->batches; ++b) {
        for (int32_t iy = 0; iy < p->in_h; ++iy) {
            for (int32_t ix = 0; ix < p->in_w; ++ix) {
                const int8_t *in = input + ((b * p->in_h + iy) * p->in_w + ix) * p->in_c;
                const int32_t oy0 = iy * p->stride.h - p->padding.h;
                const int32_t ox0 = ix * p->stride.w - p->padding.w;
                for (int32_t ic = 0; ic < p->in_c; ++ic) {
                    const int32_t x = (int32_t)in[ic] + p->input_offset;
                    for (int32_t fy = 0; fy < p->filter_h; ++fy) {
                        const int32_t oy = oy0 + fy;
                        if (oy < 0 || oy >= p->out_h) {
                            continue;
                        }
                        for (int32_t fx = 0; fx < p->filter_w; ++fx) {
                            const int32_t ox = ox0 + fx;
                            if (ox < 0 || ox >= p->out_w) {
                                continue;
                            }
                            int32_t *a = acc + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                            for (int32_t oc = 0; oc < p->out_c; ++oc) {
                                const int32_t w =
                                    filter[((oc * p->filter_h + fy) * p->filter_w + fx) * p->in_c +
                                           ic];
                                a[oc] += (int32_t)(x * w);
                            }
                        }
                    }
                }
            }
        }
    }
    const int32_t count = p->batches * p->out_h * p->out_w;
    for (int32_t i = 0; i < count; ++i) {
        for (int32_t oc = 0; oc < p->out_c; ++oc) {
            const int32_t q = p->requant.per_channel ? oc : 0;
            int32_t v = acc[i * p->out_c + oc];
            if (bias != NULL) {
                v += bias[oc];
            }
            v = eq_requantize_double(v, p->requant.multiplier[q], p->requant.shift[q]);
            v += p->output_offset;
            output[i * p->out_c + oc] = (int8_t)eq_clamp_i32(v, p->act_min, p->act_max);
        }
    }
    return EQ_OK;
}
