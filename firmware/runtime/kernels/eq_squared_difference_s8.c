/* SQUARED_DIFFERENCE, int8 activations, with broadcasting. */
#include "eq_squared_difference_impl.h"

eq_status eq_squared_difference_s8(const eq_squared_difference_params *p, const int8_t *input1,
                                   const int8_t *input2, int8_t *output)
{
    if (p == 0 || input1 == 0 || input2 == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    EQ_BINARY_LOOP(p->shape, input1, input2, output, int8_t,
                   eq_squared_difference_elem(p, x1, x2, -128, 127));
    return EQ_OK;
}
