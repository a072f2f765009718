/* Per-element arithmetic of ADD, SUB and MUL shared by their int8 and int16 kernels.
 *
 * These always use TFLM's double rounding: TFLM and LiteRT's reference ADD/SUB/MUL both do,
 * so EDGEQ_RT_SINGLE_ROUNDING (which only LiteRT's FULLY_CONNECTED needs) leaves them alone. */
#ifndef EQ_ARITH_H
#define EQ_ARITH_H

#include "eq_kernels_elementwise.h"
#include "eq_math.h"
#include "eq_nd.h"

static inline int32_t eq_add_sub_elem(const eq_add_params *p, int32_t x1, int32_t x2,
                                      int32_t subtract)
{
    const int32_t shifted1 = (x1 + p->input1_offset) * (INT32_C(1) << p->left_shift);
    const int32_t shifted2 = (x2 + p->input2_offset) * (INT32_C(1) << p->left_shift);
    const int32_t scaled1 = eq_requantize_double(shifted1, p->input1_multiplier, p->input1_shift);
    const int32_t scaled2 = eq_requantize_double(shifted2, p->input2_multiplier, p->input2_shift);
    const int32_t raw = subtract ? scaled1 - scaled2 : scaled1 + scaled2;
    const int32_t out =
        eq_requantize_double(raw, p->output_multiplier, p->output_shift) + p->output_offset;
    return eq_clamp_i32(out, p->act_min, p->act_max);
}

static inline int32_t eq_mul_elem(const eq_mul_params *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    const int32_t out =
        eq_requantize_double(prod, p->output_multiplier, p->output_shift) + p->output_offset;
    return eq_clamp_i32(out, p->act_min, p->act_max);
}

#endif /* EQ_ARITH_H */
