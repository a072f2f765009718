/* CONV_2D, int8 activations, LUT-coded filters (OHWI order, k-bit indices), int32 bias.
 * Same loop and arithmetic as eq_conv2d_s8; each weight is decoded from its index in place. */
#include "eq_kernels_lut.h"
#include "eq_conv_common.h"

eq_status eq_conv2d_s8_lut(const eq_conv2d_lut_params *lp, const int8_t *input,
                           const int32_t *bias, int8_t *output)
{
    if (lp == NULL || input == NULL || output == NULL || !eq_lut_valid(&lp->lut)) {
        return EQ_ERR_ARG;
    }
    const eq_conv2d_params *p = &lp->conv;
    if (p->filter_in_c <= 0 || p->in_c % p->filter_in_c != 0) {
        return EQ_ERR_ARG;
    }
    const int32_t groups = p->in_c / p->filter_in_c;
    if (p->out_c % groups != 0) {
        return EQ_ERR_ARG;
    }
    const int32_t filters_per_group = p->out_c / groups;
    for (int32_t b = 0; b < p->batches; ++b) {
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride.w - p->padding.w;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                for (int32_t oc = 0; oc < p->out_c; ++oc) {
                    const int32_t group_c0 = (oc / filters_per_group) * p->filter_in_c;
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
                            const int8_t *in =
                                input + ((b * p->in_h + in_y) * p->in_w + in_x) * p->in_c + group_c0;
                            const int32_t w0 =
                                ((oc * p->filter_h + fy) * p->filter_w + fx) * p->filter_in_c;
                            for (int32_t ic = 0; ic < p->filter_in_c; ++ic) {
                                const int32_t w = eq_lut_weight(&lp->lut, w0 + ic, oc);
                                acc += w * ((int32_t)in[ic] + p->input_offset);
                            }
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[oc];
                    }
                    out[oc] =
                        eq_conv_out_s8(&p->requant, acc, oc, p->output_offset,
                                       p->act_min, p->act_max);
                }
            }
        }
    }
    return EQ_OK;
}
