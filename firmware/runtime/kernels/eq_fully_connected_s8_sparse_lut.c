/* FULLY_CONNECTED, int8 activations, sparse LUT-coded filters, int32 bias. Each output
 * channel's row is decoded into scratch, then eq_fully_connected_s8's arithmetic (and rounding
 * build switch) runs over it. */
#include "eq_kernels_lut.h"
#include "eq_conv_common.h"

eq_status eq_fully_connected_s8_sparse_lut(const eq_fully_connected_sparse_lut_params *lp,
                                           const int8_t *input, const int32_t *bias,
                                           int8_t *output, int8_t *scratch)
{
    if (lp == NULL || input == NULL || output == NULL || !eq_sparse_lut_valid(&lp->lut, scratch)) {
        return EQ_ERR_ARG;
    }
    const eq_fully_connected_params *p = &lp->fc;
    if (lp->lut.channel_size != p->accum_depth) {
        return EQ_ERR_ARG;
    }
    for (int32_t oc = 0; oc < p->out_depth; ++oc) {
        eq_sparse_lut_decode(&lp->lut, oc, scratch);
        for (int32_t b = 0; b < p->batches; ++b) {
            const int8_t *in = input + b * p->accum_depth;
            int32_t acc = 0;
            for (int32_t d = 0; d < p->accum_depth; ++d) {
                acc += ((int32_t)scratch[d] + p->filter_offset) *
                       ((int32_t)in[d] + p->input_offset);
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
