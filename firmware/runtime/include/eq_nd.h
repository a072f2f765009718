/* Walking N-d index spaces without divisions: an odometer over the outer EQ_MAX_RANK - 1
 * dimensions, used by the elementwise-family kernels (broadcasting, MEAN, PAD, TRANSPOSE). */
#ifndef EQ_ND_H
#define EQ_ND_H

#include <stdint.h>

#include "eq_kernels_elementwise.h"

typedef struct {
    int32_t idx[EQ_MAX_RANK];
    int32_t off1;
    int32_t off2;
} eq_nd_iter;

static inline void eq_nd_iter_init(eq_nd_iter *it)
{
    int32_t k;
    for (k = 0; k < EQ_MAX_RANK; ++k) {
        it->idx[k] = 0;
    }
    it->off1 = 0;
    it->off2 = 0;
}

/* Step to the next row (the innermost dimension is looped by the caller), keeping two
 * strided offsets in sync. A stride of 0 repeats that input along the dimension. */
static inline void eq_nd_iter_next_row(eq_nd_iter *it, const int32_t *dims, const int32_t *s1,
                                       const int32_t *s2)
{
    int32_t k;
    for (k = EQ_MAX_RANK - 2; k >= 0; --k) {
        it->idx[k] += 1;
        it->off1 += s1[k];
        it->off2 += s2 != 0 ? s2[k] : 0;
        if (it->idx[k] < dims[k]) {
            return;
        }
        it->off1 -= s1[k] * dims[k];
        it->off2 -= (s2 != 0 ? s2[k] : 0) * dims[k];
        it->idx[k] = 0;
    }
}

/* Elementwise binary loop over an eq_broadcast_shape: evaluates ELEM (an expression of the
 * int32 values x1 and x2) for every output element and stores it as OUT_T. */
#define EQ_BINARY_LOOP(shape, in1, in2, out, OUT_T, ELEM)                                 \
    do {                                                                                  \
        const eq_broadcast_shape *sh_ = &(shape);                                         \
        if (!sh_->broadcast) {                                                            \
            int32_t i_;                                                                   \
            for (i_ = 0; i_ < sh_->count; ++i_) {                                         \
                const int32_t x1 = (in1)[i_];                                             \
                const int32_t x2 = (in2)[i_];                                             \
                (out)[i_] = (OUT_T)(ELEM);                                                \
            }                                                                             \
        } else {                                                                          \
            const int32_t inner_ = sh_->dims[EQ_MAX_RANK - 1];                            \
            const int32_t s1_ = sh_->in1_strides[EQ_MAX_RANK - 1];                        \
            const int32_t s2_ = sh_->in2_strides[EQ_MAX_RANK - 1];                        \
            eq_nd_iter it_;                                                               \
            int32_t o_;                                                                   \
            eq_nd_iter_init(&it_);                                                        \
            for (o_ = 0; inner_ > 0 && o_ < sh_->count; o_ += inner_) {                   \
                int32_t j_;                                                               \
                for (j_ = 0; j_ < inner_; ++j_) {                                         \
                    const int32_t x1 = (in1)[it_.off1 + j_ * s1_];                        \
                    const int32_t x2 = (in2)[it_.off2 + j_ * s2_];                        \
                    (out)[o_ + j_] = (OUT_T)(ELEM);                                       \
                }                                                                         \
                eq_nd_iter_next_row(&it_, sh_->dims, sh_->in1_strides, sh_->in2_strides); \
            }                                                                             \
        }                                                                                 \
    } while (0)

#endif /* EQ_ND_H */
