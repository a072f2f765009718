/* DEPTHWISE_CONV_2D, int16_t activations, int8 per-channel filters (1HWO), any depth multiplier and
 * dilation. Bit-exact with TFLM's reference_integer_ops::DepthwiseConvPerChannel (int16x8:
 * int64 or int32 bias, zero input offset).
 * Always double rounding: LiteRT's reference convolutions round twice as well, so
 * EDGEQ_RT_SINGLE_ROUNDING (LiteRT's FULLY_CONNECTED) does not apply here. */
#include "eq_kernels_conv.h"
#include "eq_math.h"

eq_status eq_depthwise_conv2d_s16(const eq_depthwise_conv2d_params *p, const int16_t *input,
                                  const int8_t *filter, const void *bias, int16_t *output)
{
    if (p == NULL || input == NULL || filter == NULL || output == NULL ||
        p->out_c != p->in_c * p->depth_multiplier) {
        return EQ_ERR_ARG;
    }
    const int64_t *bias64 = (const int64_t *)bias;
    const int32_t *bias32 = (const int32_t *)bias;
    for (int32_t b = 0; b < p->batches; ++b) {
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride.w - p->padding.w;
                int16_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                for (int32_t ic = 0; ic < p->in_c; ++ic) {
                    for (int32_t m = 0; m < p->depth_multiplier; ++m) {
                        const int32_t oc = ic * p->depth_multiplier + m;
                        int64_t acc = 0;
                        for (int32_t fy = 0; fy < p->filter_h; ++fy) {
                            const int32_t in_y = in_y0 + p->dilation.h * fy;
                            if (in_y < 0 || in_y >= p->in_h) {
                                continue;
                            }
                            for (int32_t fx = 0; fx < p->filter_w; ++fx) {
                                const int32_t in_x = in_x0 + p->dilation.w * fx;
                                if (in_x < 0 || in_x >= p->in_w) {
                                    continue;
                                }
                                const int32_t x =
                                    input[((b * p->in_h + in_y) * p->in_w + in_x) * p->in_c + ic];
                                const int32_t w = filter[(fy * p->filter_w + fx) * p->out_c + oc];
                                acc += (int64_t)(w * x);
                            }
                        }
                        const int32_t q = p->requant.per_channel ? oc : 0;
                        int32_t scaled;
                        if (p->bias_64) {
                            if (bias64 != NULL) {
                                acc += bias64[oc];
                            }
                            scaled = eq_requantize_i64(acc, p->requant.multiplier[q],
                                                       p->requant.shift[q]);
                        } else {
                            int32_t acc32 = (int32_t)acc;
                            if (bias32 != NULL) {
                                acc32 += bias32[oc];
                            }
                            scaled = eq_requantize_double(acc32, p->requant.multiplier[q],
                                                          p->requant.shift[q]);
                        }
                        scaled += p->output_offset;
                        out[oc] = (int16_t)eq_clamp_i32(scaled, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
    return EQ_OK;
}
