/* SQUARED_DIFFERENCE, int16 activations (zero points 0), with broadcasting. */
#include "eq_squared_difference_impl.h"

eq_status eq_squared_difference_s16(const eq_squared_difference_params *p, const int16_t *input1,
                                    const int16_t *input2, int16_t *output)
{
    if (p == 0 || input1 == 0 || input2 == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    EQ_BINARY_LOOP(p->shape, input1, input2, output, int16_t,
                   eq_squared_difference_elem(p, x1, x2, -32768, 32767));
    return EQ_OK;
}
