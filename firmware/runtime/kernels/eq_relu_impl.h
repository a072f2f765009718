/* Shared by eq_relu_s8.c and eq_relu_s16.c: one element, in int32. */
#ifndef EQ_RELU_IMPL_H
#define EQ_RELU_IMPL_H

#include "eq_kernels_elementwise.h"
#include "eq_math.h"

static inline int32_t relu_elem(const eq_relu_params *p, int32_t x)
{
    const int32_t v = p->output_offset + eq_requantize_double(x - p->input_offset,
                                                              p->output_multiplier,
                                                              p->output_shift);
    return eq_clamp_i32(v, p->act_min, p->act_max);
}

#endif /* EQ_RELU_IMPL_H */
