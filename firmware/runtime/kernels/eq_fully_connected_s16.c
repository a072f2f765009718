/* FULLY_CONNECTED, int16 activations (zero point 0), int8 filters, int64 or int32 bias.
 * Bit-exact with TFLM's int16x8 reference FullyConnected. */
#include "eq_kernels_conv.h"
#include "eq_math.h"

eq_status eq_fully_connected_s16(const eq_fully_connected_params *p, const int16_t *input,
                                 const int8_t *filter, const void *bias, int16_t *output)
{
    if (p == NULL || input == NULL || filter == NULL || output == NULL) {
        return EQ_ERR_ARG;
    }
    const int64_t *bias64 = (const int64_t *)bias;
    const int32_t *bias32 = (const int32_t *)bias;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int16_t *in = input + b * p->accum_depth;
        for (int32_t oc = 0; oc < p->out_depth; ++oc) {
            const int8_t *w = filter + oc * p->accum_depth;
            int64_t acc = 0;
            for (int32_t d = 0; d < p->accum_depth; ++d) {
                acc += (int64_t)(((int32_t)w[d] + p->filter_offset) * (int32_t)in[d]);
            }
            const int32_t q = p->requant.per_channel ? oc : 0;
            int32_t scaled;
            if (p->bias_64) {
                if (bias64 != NULL) {
                    acc += bias64[oc];
                }
#if defined(EDGEQ_RT_SINGLE_ROUNDING)
                /* LiteRT 2.3's reference int16 FULLY_CONNECTED requantizes the accumulator as an
                 * int32 with the full 32-bit multiplier (measured), not the 16-bit formula. */
                scaled = eq_requantize_single((int32_t)acc, p->requant.multiplier[q],
                                              p->requant.shift[q]);
#else
                scaled = eq_requantize_i64(acc, p->requant.multiplier[q], p->requant.shift[q]);
#endif
            } else {
                int32_t acc32 = (int32_t)acc;
                if (bias32 != NULL) {
                    acc32 += bias32[oc];
                }
                scaled = eq_requantize(acc32, p->requant.multiplier[q], p->requant.shift[q]);
            }
            scaled += p->output_offset;
            output[b * p->out_depth + oc] = (int16_t)eq_clamp_i32(scaled, p->act_min, p->act_max);
        }
    }
    return EQ_OK;
}
