/* BATCH_MATMUL, int8: TFLM's reference loop (int32 accumulator, double-rounding requantization,
 * full int8 range) with the operand transposes and batch broadcasting folded into strides. */
#include "eq_kernels_math.h"
#include "eq_math.h"

eq_status eq_batch_matmul_s8(const eq_batch_matmul_params *p, const int8_t *lhs, const int8_t *rhs,
                             int8_t *output)
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
                const int8_t *l = lhs + b0 * p->lhs_batch_strides[0] +
                                  b1 * p->lhs_batch_strides[1] + b2 * p->lhs_batch_strides[2];
                const int8_t *r = rhs + b0 * p->rhs_batch_strides[0] +
                                  b1 * p->rhs_batch_strides[1] + b2 * p->rhs_batch_strides[2];
                int32_t i;
                for (i = 0; i < p->rows; ++i) {
                    const int8_t *lrow = l + i * p->lhs_row_stride;
                    int32_t j;
                    for (j = 0; j < p->cols; ++j) {
                        const int8_t *rcol = r + j * p->rhs_col_stride;
                        int32_t acc = 0;
                        int32_t k;
                        for (k = 0; k < p->depth; ++k) {
                            acc += ((int32_t)lrow[k * p->lhs_depth_stride] + p->lhs_offset) *
                                   ((int32_t)rcol[k * p->rhs_depth_stride] + p->rhs_offset);
                        }
                        acc = eq_requantize_double(acc, p->output_multiplier, p->output_shift) +
                              p->output_offset;
                        *output++ = (int8_t)eq_clamp_i32(acc, -128, 127);
                    }
                }
            }
        }
    }
    return EQ_OK;
}
