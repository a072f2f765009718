/* ADD, int8_t activations: TFLM's quantized reference arithmetic with broadcasting. */
#include "eq_arith.h"

eq_status eq_add_s8(const eq_add_params *p, const int8_t *input1, const int8_t *input2,
                    int8_t *output)
{
    if (p == 0 || input1 == 0 || input2 == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    EQ_BINARY_LOOP(p->shape, input1, input2, output, int8_t, eq_add_sub_elem(p, x1, x2, 0));
    return EQ_OK;
}
