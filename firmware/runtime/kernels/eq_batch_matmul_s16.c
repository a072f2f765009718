/* BATCH_MATMUL, int16 (zero points 0): TFLM's reference loop with an int64 accumulator and
 * the int64 requantization, transposes and batch broadcasting as strides. */
#include "eq_kernels_math.h"
#include "eq_math.h"

eq_status eq_batch_matmul_s16(const eq_batch_matmul_params *p, const int16_t *lhs,
                              const int16_t *rhs, int16_t *output)
{
    int32_t b0;
    int32_t b1;
    int32_t b2;
    if (p == 0 || lhs == 0 || rhs == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    for (b0 = 0; b0 < p->batch_dims[0]; ++b0) {
        for (b1 = 0; b1 < p->batch_dims[1]; ++b1) {
            for (b2 = 0; b2 < p->batch_dims[2]; ++b2) {
                const int16_t *l = lhs + b0 * p->lhs_batch_strides[0] +
                                   b1 * p->lhs_batch_strides[1] + b2 * p->lhs_batch_strides[2];
                const int16_t *r = rhs + b0 * p->rhs_batch_strides[0] +
                                   b1 * p->rhs_batch_strides[1] + b2 * p->rhs_batch_strides[2];
                int32_t i;
                for (i = 0; i < p->rows; ++i) {
                    const int16_t *lrow = l + i * p->lhs_row_stride;
                    int32_t j;
                    for (j = 0; j < p->cols; ++j) {
                        const int16_t *rcol = r + j * p->rhs_col_stride;
                        int64_t acc = 0;
                        int32_t k;
                        int32_t y;
                        for (k = 0; k < p->depth; ++k) {
                            acc +=
                                (int64_t)((int32_t)lrow[k * p->lhs_depth_stride] + p->lhs_offset) *
                                (int64_t)((int32_t)rcol[k * p->rhs_depth_stride] + p->rhs_offset);
                        }
                        y = eq_requantize_i64(acc, p->output_multiplier, p->output_shift) +
                            p->output_offset;
                        *output++ = (int16_t)eq_clamp_i32(y, -32768, 32767);
                    }
                }
            }
        }
    }
    return EQ_OK;
}
