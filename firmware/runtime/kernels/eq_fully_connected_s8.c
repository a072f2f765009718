/* FULLY_CONNECTED, int8 activations and filters (per tensor or per channel), int32 bias.
 * Bit-exact with TFLM's reference_integer_ops::FullyConnected[PerChannel]. The requantization
 * follows the build's rounding (EDGEQ_RT_SINGLE_ROUNDING matches LiteRT's reference kernel).
 *
 * Symmetric filters (filter_offset 0, what the converters emit): four output rows share every
 * input load and its offset add. The sums are the same integers as TFLM's, so is the result.
 * With codegen's packed filter and folded bias, the four rows run through the conv family's
 * register tile (eq_dot4_packed: SMLAD on cores with the DSP extension). */
#include "eq_conv_common.h"

/* Packed filter (bias_folded set, accum_depth % 4 == 0): four rows per eq_dot4_packed call,
 * accumulators starting at bias + input_offset * sum(row), so no tap adds an offset. */
static void fc_packed(const eq_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->accum_depth;
    const int32_t *const init = p->bias_folded;
    const eq_out_q oq = eq_out_q_make(&p->requant, p->output_offset, p->act_min, p->act_max);
    const eq_out_q *const q = &oq;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in = input + b * depth;
        int8_t *out = output + b * p->out_depth;
        int32_t oc = 0;
        for (; oc + 4 <= p->out_depth; oc += 4) {
            int32_t acc[4] = {init[oc], init[oc + 1], init[oc + 2], init[oc + 3]};
            eq_dot4_packed(in, depth, p->filter_packed + oc * depth, 0, acc);
            eq_store4_s8(out + oc, eq_out_q_fc(q, acc[0], oc), eq_out_q_fc(q, acc[1], oc + 1),
                         eq_out_q_fc(q, acc[2], oc + 2), eq_out_q_fc(q, acc[3], oc + 3));
        }
        for (; oc < p->out_depth; ++oc) {  /* plain row order after the last block */
            const int8_t *w = p->filter_packed + oc * depth;
            int32_t acc = init[oc];
            for (int32_t d = 0; d < depth; ++d) {
                acc += (int32_t)w[d] * (int32_t)in[d];
            }
            out[oc] = (int8_t)eq_out_q_fc(q, acc, oc);
        }
    }
}

eq_status eq_fully_connected_s8(const eq_fully_connected_params *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return EQ_ERR_ARG;
    }
    if (p->filter_packed != NULL) {
        if (p->bias_folded == NULL || p->filter_offset != 0 || p->accum_depth % 4 != 0) {
            return EQ_ERR_ARG;
        }
        fc_packed(p, input, output);
        return EQ_OK;
    }
    if (filter == NULL) {
        return EQ_ERR_ARG;
    }
    const int32_t depth = p->accum_depth;
    const int32_t in_off = p->input_offset;
    const int32_t w_off = p->filter_offset;
    const eq_out_q oq = eq_out_q_make(&p->requant, p->output_offset, p->act_min, p->act_max);
    const eq_out_q *const q = &oq;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in = input + b * depth;
        const int8_t *const in_end = in + depth;
        int8_t *out = output + b * p->out_depth;
        int32_t oc = 0;
        if (w_off == 0) {
            for (; oc + 4 <= p->out_depth; oc += 4) {
                int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                if (bias != NULL) {
                    a0 = bias[oc];
                    a1 = bias[oc + 1];
                    a2 = bias[oc + 2];
                    a3 = bias[oc + 3];
                }
                const int8_t *wa = filter + oc * depth;
                const int8_t *wb = wa + depth;
                const int8_t *wc = wb + depth;
                const int8_t *wd = wc + depth;
                for (const int8_t *x = in; x < in_end; ++x) {
                    const int32_t v = (int32_t)*x + in_off;
                    a0 += (int32_t)*wa++ * v;
                    a1 += (int32_t)*wb++ * v;
                    a2 += (int32_t)*wc++ * v;
                    a3 += (int32_t)*wd++ * v;
                }
                eq_store4_s8(out + oc, eq_out_q_fc(q, a0, oc), eq_out_q_fc(q, a1, oc + 1),
                             eq_out_q_fc(q, a2, oc + 2), eq_out_q_fc(q, a3, oc + 3));
            }
        }
        for (; oc < p->out_depth; ++oc) {
            const int8_t *w = filter + oc * depth;
            int32_t acc = bias != NULL ? bias[oc] : 0;
            for (int32_t d = 0; d < depth; ++d) {
                acc += ((int32_t)w[d] + w_off) * ((int32_t)in[d] + in_off);
            }
            out[oc] = (int8_t)eq_out_q_fc(q, acc, oc);
        }
    }
    return EQ_OK;
}
