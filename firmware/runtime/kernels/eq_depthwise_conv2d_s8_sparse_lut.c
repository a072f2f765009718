/* DEPTHWISE_CONV_2D, int8 activations, sparse LUT-coded filters. One output channel at a time:
 * its filter_h * filter_w weights are decoded into scratch, then eq_depthwise_conv2d_s8's
 * arithmetic runs over them. */
#include "eq_kernels_lut.h"
#include "eq_conv_common.h"

eq_status eq_depthwise_conv2d_s8_sparse_lut(const eq_depthwise_conv2d_sparse_lut_params *lp,
                                            const int8_t *input, const int32_t *bias,
                                            int8_t *output, int8_t *scratch)
{
    if (lp == NULL || input == NULL || output == NULL || !eq_sparse_lut_valid(&lp->lut, scratch)) {
        return EQ_ERR_ARG;
    }
    const eq_depthwise_conv2d_params *p = &lp->conv;
    if (p->out_c != p->in_c * p->depth_multiplier ||
        lp->lut.channel_size != p->filter_h * p->filter_w) {
        return EQ_ERR_ARG;
    }
    for (int32_t oc = 0; oc < p->out_c; ++oc) {
        eq_sparse_lut_decode(&lp->lut, oc, scratch);
        const int32_t ic = oc / p->depth_multiplier;
        for (int32_t b = 0; b < p->batches; ++b) {
            for (int32_t oy = 0; oy < p->out_h; ++oy) {
                const int32_t in_y0 = oy * p->stride.h - p->padding.h;
                for (int32_t ox = 0; ox < p->out_w; ++ox) {
                    const int32_t in_x0 = ox * p->stride.w - p->padding.w;
                    int32_t acc = 0;
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
                            acc += (int32_t)scratch[fy * p->filter_w + fx] * (x + p->input_offset);
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[oc];
                    }
                    output[((b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] =
                        eq_conv_out_s8(&p->requant, acc, oc, p->output_offset,
                                       p->act_min, p->act_max);
                }
            }
        }
    }
    return EQ_OK;
}
