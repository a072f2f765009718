/* Shared by eq_leaky_relu_s8.c and eq_leaky_relu_s16.c: one element, in int32. */
#ifndef EQ_LEAKY_RELU_IMPL_H
#define EQ_LEAKY_RELU_IMPL_H

#include "eq_kernels_elementwise.h"
#include "eq_math.h"

static inline int32_t leaky_elem(const eq_leaky_relu_params *p, int32_t x)
{
#if defined(EDGEQ_RT_SINGLE_ROUNDING)
    const eq_leaky_relu_multipliers *m = &p->litert;
#else
    const eq_leaky_relu_multipliers *m = &p->tflm;
#endif
    const int32_t v = x - p->input_offset;
    if (v >= 0) {
        return p->output_offset +
               eq_requantize_double(v, m->multiplier_identity, m->shift_identity);
    }
    return p->output_offset + eq_requantize_double(v, m->multiplier_alpha, m->shift_alpha);
}

#endif /* EQ_LEAKY_RELU_IMPL_H */
