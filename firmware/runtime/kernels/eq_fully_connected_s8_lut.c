/* FULLY_CONNECTED, int8 activations, LUT-coded filters ([out_depth, accum_depth], k-bit
 * indices), int32 bias. Same arithmetic as eq_fully_connected_s8 (and the same rounding build
 * switch); weights decoded in place. */
#include "eq_kernels_lut.h"
#include "eq_conv_common.h"

eq_status eq_fully_connected_s8_lut(const eq_fully_connected_lut_params *lp, const int8_t *input,
                                    const int32_t *bias, int8_t *output)
{
    if (lp == NULL || input == NULL || output == NULL || !eq_lut_valid(&lp->lut)) {
        return EQ_ERR_ARG;
    }
    const eq_fully_connected_params *p = &lp->fc;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in = input + b * p->accum_depth;
        for (int32_t oc = 0; oc < p->out_depth; ++oc) {
            const int32_t w0 = oc * p->accum_depth;
            int32_t acc = 0;
            for (int32_t d = 0; d < p->accum_depth; ++d) {
                const int32_t w = eq_lut_weight(&lp->lut, w0 + d, oc);
                acc += (w + p->filter_offset) * ((int32_t)in[d] + p->input_offset);
            }
            if (bias != NULL) {
                acc += bias[oc];
            }
            output[b * p->out_depth + oc] =
                eq_fc_out_s8(&p->requant, acc, oc, p->output_offset,
                               p->act_min, p->act_max);
        }
    }
    return EQ_OK;
}
