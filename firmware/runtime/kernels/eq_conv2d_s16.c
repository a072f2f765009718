/* CONV_2D, int16 activations (zero point 0), int8 filters, int64 or int32 bias.
 * Bit-exact with TFLM's int16x8 reference ConvPerChannel: the int64 accumulator is requantized
 * with the 16-bit-multiplier formula; an int32 accumulator with the int32 requantization.
 * Always double rounding: LiteRT's reference convolutions round twice as well, so
 * EDGEQ_RT_SINGLE_ROUNDING (LiteRT's FULLY_CONNECTED) does not apply here. */
#include "eq_kernels_conv.h"
#include "eq_math.h"

eq_status eq_conv2d_s16(const eq_conv2d_params *p, const int16_t *input, const int8_t *filter,
                        const void *bias, int16_t *output)
{
    if (p == NULL || input == NULL || filter == NULL || output == NULL || p->filter_in_c <= 0 ||
        p->in_c % p->filter_in_c != 0) {
        return EQ_ERR_ARG;
    }
    const int32_t groups = p->in_c / p->filter_in_c;
    if (p->out_c % groups != 0) {
        return EQ_ERR_ARG;
    }
    const int32_t filters_per_group = p->out_c / groups;
    const int64_t *bias64 = (const int64_t *)bias;
    const int32_t *bias32 = (const int32_t *)bias;
    for (int32_t b = 0; b < p->batches; ++b) {
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride.w - p->padding.w;
                int16_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                for (int32_t oc = 0; oc < p->out_c; ++oc) {
                    const int32_t group_c0 = (oc / filters_per_group) * p->filter_in_c;
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
                            const int16_t *in = input +
                                                ((b * p->in_h + in_y) * p->in_w + in_x) * p->in_c +
                                                group_c0;
                            const int8_t *w =
                                filter +
                                ((oc * p->filter_h + fy) * p->filter_w + fx) * p->filter_in_c;
                            for (int32_t ic = 0; ic < p->filter_in_c; ++ic) {
                                acc += (int64_t)((int32_t)w[ic] * (int32_t)in[ic]);
                            }
                        }
                    }
                    const int32_t q = p->requant.per_channel ? oc : 0;
                    int32_t scaled;
                    if (p->bias_64) {
                        if (bias64 != NULL) {
                            acc += bias64[oc];
                        }
                        scaled =
                            eq_requantize_i64(acc, p->requant.multiplier[q], p->requant.shift[q]);
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
    return EQ_OK;
}
