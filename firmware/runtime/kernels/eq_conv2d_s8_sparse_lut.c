/* CONV_2D, int8 activations, sparse LUT-coded filters, int32 bias. One output channel at a
 * time: its filter is decoded into scratch, then the arithmetic of eq_conv2d_s8 runs over it
 * (every output value is computed exactly as there, only the loop order differs). */
#include "eq_kernels_lut.h"
#include "eq_conv_common.h"

eq_status eq_conv2d_s8_sparse_lut(const eq_conv2d_sparse_lut_params *lp, const int8_t *input,
                                  const int32_t *bias, int8_t *output, int8_t *scratch)
{
    if (lp == NULL || input == NULL || output == NULL || !eq_sparse_lut_valid(&lp->lut, scratch)) {
        return EQ_ERR_ARG;
    }
    const eq_conv2d_params *p = &lp->conv;
    if (p->filter_in_c <= 0 || p->in_c % p->filter_in_c != 0 ||
        lp->lut.channel_size != p->filter_h * p->filter_w * p->filter_in_c) {
        return EQ_ERR_ARG;
    }
    const int32_t groups = p->in_c / p->filter_in_c;
    if (p->out_c % groups != 0) {
        return EQ_ERR_ARG;
    }
    const int32_t filters_per_group = p->out_c / groups;
    for (int32_t oc = 0; oc < p->out_c; ++oc) {
        eq_sparse_lut_decode(&lp->lut, oc, scratch);
        const int32_t group_c0 = (oc / filters_per_group) * p->filter_in_c;
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
                            const int8_t *in =
                                input + ((b * p->in_h + in_y) * p->in_w + in_x) * p->in_c + group_c0;
                            const int8_t *w = scratch + (fy * p->filter_w + fx) * p->filter_in_c;
                            for (int32_t ic = 0; ic < p->filter_in_c; ++ic) {
                                acc += (int32_t)w[ic] * ((int32_t)in[ic] + p->input_offset);
                            }
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
