/* BATCH_MATMUL, int8: TFLM's reference loop (int32 accumulator, double-rounding requantization,
 * full int8 range) with the operand transposes and batch broadcasting folded into strides;
 * operands contiguous along the depth (lhs not transposed, rhs transposed: q k^T) take a
 * dot-product path. */
#include "eq_dsp.h"
#include "eq_kernels_math.h"
#include "eq_math.h"

/* sum_k (l[k] + lo) * (r[k] + ro) over contiguous operands, as sum l*r + ro * sum l +
 * lo * sum r + n * lo * ro (the same integer). On DSP cores four products per SMLAD pair and
 * the operand sums by SADD16 + SMLAD. */
static int32_t dot_contiguous(const int8_t *l, const int8_t *r, int32_t n, int32_t lo, int32_t ro)
{
    int32_t lr = 0;
    int32_t ls = 0;
    int32_t rs = 0;
    int32_t k = 0;
#if EQ_DSP
    for (; k + 4 <= n; k += 4) {
        const uint32_t lw = eq_load4(l + k);
        const uint32_t rw = eq_load4(r + k);
        const int32_t l0 = eq_lo16(lw);
        const int32_t l1 = eq_hi16(lw);
        const int32_t r0 = eq_lo16(rw);
        const int32_t r1 = eq_hi16(rw);
        lr = eq_smlad(l0, r0, eq_smlad(l1, r1, lr));
        ls = eq_smlad(eq_sadd16(l0, l1), 0x00010001, ls);
        rs = eq_smlad(eq_sadd16(r0, r1), 0x00010001, rs);
    }
#endif
    for (; k < n; ++k) {
        lr += (int32_t)l[k] * (int32_t)r[k];
        ls += l[k];
        rs += r[k];
    }
    return lr + ro * ls + lo * rs + n * lo * ro;
}

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
                        if (p->lhs_depth_stride == 1 && p->rhs_depth_stride == 1) {
                            acc =
                                dot_contiguous(lrow, rcol, p->depth, p->lhs_offset, p->rhs_offset);
                        } else {
                            for (k = 0; k < p->depth; ++k) {
                                acc += ((int32_t)lrow[k * p->lhs_depth_stride] + p->lhs_offset) *
                                       ((int32_t)rcol[k * p->rhs_depth_stride] + p->rhs_offset);
                            }
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
