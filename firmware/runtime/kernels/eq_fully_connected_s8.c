/* FULLY_CONNECTED, int8 activations and filters (per tensor or per channel), int32 bias.
 * Bit-exact with TFLM's reference_integer_ops::FullyConnected[PerChannel]. The requantization
 * follows the build's rounding (EDGEQ_RT_SINGLE_ROUNDING matches LiteRT's reference kernel). */
#include "eq_kernels_conv.h"
#include "eq_math.h"

eq_status eq_fully_connected_s8(const eq_fully_connected_params *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (p == NULL || input == NULL || filter == NULL || output == NULL) {
        return EQ_ERR_ARG;
    }
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in = input + b * p->accum_depth;
        for (int32_t oc = 0; oc < p->out_depth; ++oc) {
            const int8_t *w = filter + oc * p->accum_depth;
            int32_t acc = 0;
            for (int32_t d = 0; d < p->accum_depth; ++d) {
                acc += ((int32_t)w[d] + p->filter_offset) * ((int32_t)in[d] + p->input_offset);
            }
            if (bias != NULL) {
                acc += bias[oc];
            }
            const int32_t q = p->requant.per_channel ? oc : 0;
            acc = eq_requantize(acc, p->requant.multiplier[q], p->requant.shift[q]);
            acc += p->output_offset;
            output[b * p->out_depth + oc] = (int8_t)eq_clamp_i32(acc, p->act_min, p->act_max);
        }
    }
    return EQ_OK;
}
