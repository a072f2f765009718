/* edgeq-rt arithmetic kernels for attention, normalization and recurrent layers:
 * SQUARED_DIFFERENCE, RSQRT (the pieces of a layer norm), BATCH_MATMUL, and int16 LOGISTIC and
 * TANH.
 *
 * Parameters are filled ahead of time by edgeq.codegen.ops_math with TFLM's Prepare
 * arithmetic; the kernels follow TFLM's reference integer loops step for step (double
 * rounding everywhere: LiteRT's reference kernels round these ops the same way). */
#ifndef EQ_KERNELS_MATH_H
#define EQ_KERNELS_MATH_H

#include "eq_kernels_elementwise.h"

/* SQUARED_DIFFERENCE: both inputs rescaled to a common scale (left_shift 7 for int8, 0 for
 * int16), the difference squared and requantized to the output, clamped to the type's range. */
typedef struct {
    eq_broadcast_shape shape;
    int32_t left_shift;
    int32_t input1_offset; /* -zero point */
    int32_t input1_multiplier;
    int32_t input1_shift; /* <= 0 */
    int32_t input2_offset;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
} eq_squared_difference_params;

/* RSQRT, int8 and int16 (zero points 0): 1/sqrt(x - zero point) by gemmlowp's Newton
 * iteration, requantized with 1 / (sqrt(input scale) * output scale). A zero input gives the
 * largest output; a negative one returns EQ_ERR_ARG, as TFLM's kernel fails. */
typedef struct {
    int32_t count;
    int32_t input_offset;  /* input zero point */
    int32_t output_offset; /* output zero point */
    int32_t multiplier;
    int32_t shift;
} eq_rsqrt_params;

/* BATCH_MATMUL: out[b][i][j] = sum_k (lhs[b][i][k] - zl) * (rhs[b][k][j] - zr), requantized.
 * Operand transposition (adj_x, adj_y) and batch broadcasting are strides: lhs element
 * (b, i, k) is lhs[lhs_batch_offset(b) + i * lhs_row_stride + k * lhs_depth_stride]. The batch
 * dimensions (up to 3, padded on the left) broadcast with stride 0. */
typedef struct {
    const int32_t *batch_dims;        /* [3] output batch extents */
    const int32_t *lhs_batch_strides; /* [3] in elements, 0 where broadcast */
    const int32_t *rhs_batch_strides; /* [3] */
    int32_t rows;                     /* output rows (lhs) */
    int32_t cols;                     /* output columns (rhs) */
    int32_t depth;                    /* accumulation length */
    int32_t lhs_row_stride;
    int32_t lhs_depth_stride;
    int32_t rhs_depth_stride;
    int32_t rhs_col_stride;
    int32_t lhs_offset; /* -zero point */
    int32_t rhs_offset;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
} eq_batch_matmul_params;

/* LOGISTIC / TANH int16 (zero points 0, output scale 2^-15): the input rescaled to 1/(3 * 4096)
 * steps by (x * input_multiplier + round) >> input_left_shift, then TFLM's linear
 * interpolation in a 256-entry table of sigmoid(i / 24) in 0.16 format (tanh(x) =
 * 2 sigmoid(2x) - 1 reads the same table at twice the resolution). */
typedef struct {
    int32_t count;
    int32_t input_multiplier;      /* <= 32767 */
    int32_t input_left_shift;      /* >= 0 */
    const uint16_t *sigmoid_table; /* [256] */
} eq_sigmoid_s16_params;

eq_status eq_squared_difference_s8(const eq_squared_difference_params *p, const int8_t *input1,
                                   const int8_t *input2, int8_t *output);
eq_status eq_squared_difference_s16(const eq_squared_difference_params *p, const int16_t *input1,
                                    const int16_t *input2, int16_t *output);
eq_status eq_rsqrt_s8(const eq_rsqrt_params *p, const int8_t *input, int8_t *output);
eq_status eq_rsqrt_s16(const eq_rsqrt_params *p, const int16_t *input, int16_t *output);
eq_status eq_logistic_s16(const eq_sigmoid_s16_params *p, const int16_t *input, int16_t *output);
eq_status eq_tanh_s16(const eq_sigmoid_s16_params *p, const int16_t *input, int16_t *output);
eq_status eq_batch_matmul_s8(const eq_batch_matmul_params *p, const int8_t *lhs, const int8_t *rhs,
                             int8_t *output);
eq_status eq_batch_matmul_s16(const eq_batch_matmul_params *p, const int16_t *lhs,
                              const int16_t *rhs, int16_t *output);

#endif /* EQ_KERNELS_MATH_H */
