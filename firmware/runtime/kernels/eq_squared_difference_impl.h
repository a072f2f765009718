/* SQUARED_DIFFERENCE of one element pair (TFLM's squared_difference.cc, both int8 and int16):
 * shared by eq_squared_difference_s8 and eq_squared_difference_s16. */
#ifndef EQ_SQUARED_DIFFERENCE_IMPL_H
#define EQ_SQUARED_DIFFERENCE_IMPL_H

#include "eq_kernels_math.h"
#include "eq_math.h"
#include "eq_nd.h"

static inline int32_t eq_squared_difference_elem(const eq_squared_difference_params *p, int32_t x1,
                                                 int32_t x2, int32_t qmin, int32_t qmax)
{
    const int32_t a = (x1 + p->input1_offset) * (1 << p->left_shift);
    const int32_t b = (x2 + p->input2_offset) * (1 << p->left_shift);
    const int32_t d = eq_requantize_double(a, p->input1_multiplier, p->input1_shift) -
                      eq_requantize_double(b, p->input2_multiplier, p->input2_shift);
    const int32_t y =
        eq_requantize_double(d * d, p->output_multiplier, p->output_shift) + p->output_offset;
    return eq_clamp_i32(y, qmin, qmax);
}

#endif /* EQ_SQUARED_DIFFERENCE_IMPL_H */
