/* SOFTMAX, int8 input, int8 or int16 output: TFLM's gemmlowp fixed-point reference.
 *
 * exp() of the (non-positive) differences to the row maximum is evaluated in Q5.26, summed in
 * Q12.19, and the reciprocal of the sum scales each exp() to the output grid (zero point at
 * the type's minimum). */
#include "eq_softmax_s8_impl.h"

eq_status eq_softmax_s8(const eq_softmax_params *p, const int8_t *input, int8_t *output)
{
    int32_t r;
    if (p == 0 || input == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    for (r = 0; r < p->outer; ++r) {
        softmax_row(p, input + r * p->depth, 8, -128, 127, output + r * p->depth, 0);
    }
    return EQ_OK;
}
