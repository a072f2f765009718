/* Shared by eq_mean_s8.c and eq_mean_s16.c: the kernel body, instantiated per type. */
#ifndef EQ_MEAN_IMPL_H
#define EQ_MEAN_IMPL_H

#include "eq_kernels_elementwise.h"
#include "eq_math.h"
#include "eq_nd.h"

/* Sum of the reduced box that starts at in. */
#define EQ_MEAN_SUM(T)                                                                     \
    static int32_t mean_sum_##T(const eq_mean_params *p, const T *in)                      \
    {                                                                                      \
        const int32_t inner = p->reduced_dims[EQ_MAX_RANK - 1];                            \
        const int32_t stride = p->reduced_strides[EQ_MAX_RANK - 1];                        \
        int32_t sum = 0;                                                                   \
        int32_t done;                                                                      \
        eq_nd_iter it;                                                                     \
        eq_nd_iter_init(&it);                                                              \
        for (done = 0; done < p->num_reduced; done += inner) {                             \
            int32_t j;                                                                     \
            for (j = 0; j < inner; ++j) {                                                  \
                sum += in[it.off1 + j * stride];                                           \
            }                                                                              \
            eq_nd_iter_next_row(&it, p->reduced_dims, p->reduced_strides, 0);              \
        }                                                                                  \
        return sum;                                                                        \
    }

#define EQ_MEAN_KERNEL(T, NAME, QMIN, QMAX)                                                \
    eq_status NAME(const eq_mean_params *p, const T *input, T *output)                     \
    {                                                                                      \
        int32_t inner;                                                                     \
        int32_t stride;                                                                    \
        int32_t o;                                                                         \
        eq_nd_iter it;                                                                     \
        if (p == 0 || input == 0 || output == 0 || p->num_reduced <= 0) {                  \
            return EQ_ERR_ARG;                                                             \
        }                                                                                  \
        inner = p->kept_dims[EQ_MAX_RANK - 1];                                             \
        stride = p->kept_strides[EQ_MAX_RANK - 1];                                         \
        eq_nd_iter_init(&it);                                                              \
        for (o = 0; o < p->out_count; o += inner) {                                        \
            int32_t j;                                                                     \
            for (j = 0; j < inner; ++j) {                                                  \
                const int32_t sum = mean_sum_##T(p, input + it.off1 + j * stride);         \
                const int32_t shifted = sum - p->input_zero_point * p->num_reduced;        \
                const int32_t v = eq_clamp_i32(                                            \
                    eq_requantize_double(shifted, p->multiplier, p->shift) +               \
                        p->output_zero_point,                                              \
                    QMIN, QMAX);                                                           \
                output[o + j] = (T)v;                                                      \
            }                                                                              \
            eq_nd_iter_next_row(&it, p->kept_dims, p->kept_strides, 0);                    \
        }                                                                                  \
        return EQ_OK;                                                                      \
    }

#endif /* EQ_MEAN_IMPL_H */
