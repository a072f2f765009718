/* edgeq-rt "elementwise family" kernels: arithmetic (ADD, SUB, MUL), activations (RELU, RELU6,
 * LEAKY_RELU, LOGISTIC, TANH, HARD_SWISH), SOFTMAX, MEAN, and the data-movement ops PAD,
 * TRANSPOSE, STRIDED_SLICE and CONCATENATION.
 *
 * Every parameter struct is filled ahead of time by edgeq.codegen.ops_elementwise (TFLM's
 * "Prepare" done on the host), so a kernel only loops. Shapes are padded on the left to
 * EQ_MAX_RANK dimensions (leading 1s); array fields point to const arrays of that length.
 *
 * Call convention (see edgeq/codegen/lowering.py):
 *   eq_status fn(const params *p, inputs..., outputs...);
 * CONCATENATION takes its p->num_inputs input pointers, then the output, as variadic
 * arguments. Kernels with a `_x` suffix move elements of p->elem_bytes bytes (any type). None of
 * these kernels needs scratch memory.
 *
 * Rounding: ADD/SUB/MUL/SOFTMAX/MEAN/... round twice in both oracles (TFLM and LiteRT's reference
 * kernels), so they always use eq_requantize_double. Where the two oracles differ in their
 * Prepare arithmetic (LEAKY_RELU multipliers, the int16 SOFTMAX reciprocal table), the params
 * carry both variants and the LiteRT-compatible build (-DEDGEQ_RT_SINGLE_ROUNDING) picks
 * LiteRT's. */
#ifndef EQ_KERNELS_ELEMENTWISE_H
#define EQ_KERNELS_ELEMENTWISE_H

#include "edgeq_rt.h"

#define EQ_MAX_RANK 6

/* Output shape and per-input strides of a binary op. A stride of 0 repeats (broadcasts) the
 * input along that output dimension. With broadcast == 0 the inputs have the output's shape
 * and the kernel walks all three flat. */
typedef struct {
    int32_t count; /* output elements */
    int32_t broadcast;
    const int32_t *dims;        /* output dims [EQ_MAX_RANK] */
    const int32_t *in1_strides; /* [EQ_MAX_RANK], in elements */
    const int32_t *in2_strides;
} eq_broadcast_shape;

/* ADD / SUB (int8: left_shift 20, int16: left_shift 15): both inputs are rescaled to a common
 * scale, added or subtracted, then requantized to the output, as TFLM's general path. */
typedef struct {
    eq_broadcast_shape shape;
    int32_t left_shift;
    int32_t input1_offset; /* -zero point of input 1 */
    int32_t input1_multiplier;
    int32_t input1_shift; /* <= 0 */
    int32_t input2_offset;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t output_offset; /* output zero point */
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min, act_max; /* fused activation, on the output grid */
} eq_add_params;

/* MUL: (x1 - z1) * (x2 - z2) requantized to the output. */
typedef struct {
    eq_broadcast_shape shape;
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min, act_max;
} eq_mul_params;

/* SOFTMAX over the last dimension, int8 input, int8 or int16 output (gemmlowp fixed point). */
typedef struct {
    int32_t outer; /* rows */
    int32_t depth; /* length of the last dimension */
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min; /* differences below this contribute exp() = 0 */
} eq_softmax_params;

/* SOFTMAX int16 -> int16 with TFLM's two 513-entry lookup tables. LiteRT's 1/(1+x) table
 * differs in two entries; the LiteRT-compatible build (EDGEQ_RT_SINGLE_ROUNDING) uses it. */
typedef struct {
    int32_t outer;
    int32_t depth;
    int32_t input_multiplier;
    int32_t input_left_shift;
    const int16_t *exp_lut;                        /* exp(x) on [-10, 0] */
    const int16_t *one_over_one_plus_x_lut;        /* 1 / (1 + x) on [0, 1] (TFLM) */
    const int16_t *litert_one_over_one_plus_x_lut; /* the same, as LiteRT computes it */
} eq_softmax_s16_params;

/* MEAN over any set of axes: the sum minus count * zero point, requantized with 1/count folded
 * into the multiplier (TFLM's QuantizedMeanOrSum). */
typedef struct {
    int32_t out_count;
    const int32_t *kept_dims;    /* [EQ_MAX_RANK] extents of the kept axes, 1 elsewhere */
    const int32_t *kept_strides; /* input strides of the kept axes */
    const int32_t *reduced_dims; /* [EQ_MAX_RANK] extents of the reduced axes, 1 elsewhere */
    const int32_t *reduced_strides;
    int32_t num_reduced; /* elements summed per output */
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier;
    int32_t shift;
} eq_mean_params;

/* RELU / RELU6 / RELU_N1_TO_1 with requantization (TFLM's ReluQuantized). */
typedef struct {
    int32_t count;
    int32_t input_offset;  /* input zero point */
    int32_t output_offset; /* output zero point */
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min, act_max;
} eq_relu_params;

/* Clamp to [lower, upper] without rescaling (TFLM's RELU6, input and output share quant). */
typedef struct {
    int32_t count;
    int32_t lower;
    int32_t upper;
} eq_clamp_params;

/* LEAKY_RELU multipliers: identity for x >= zero point, alpha below. */
typedef struct {
    int32_t multiplier_identity;
    int32_t shift_identity;
    int32_t multiplier_alpha;
    int32_t shift_alpha;
} eq_leaky_relu_multipliers;

/* LEAKY_RELU. TFLM derives the multipliers from double scale products, LiteRT from float32
 * ones (1 LSB apart on some int16 inputs): the LiteRT-compatible build
 * (EDGEQ_RT_SINGLE_ROUNDING) uses `litert`, the default build `tflm`. */
typedef struct {
    int32_t count;
    int32_t input_offset;
    int32_t output_offset;
    eq_leaky_relu_multipliers tflm;
    eq_leaky_relu_multipliers litert;
} eq_leaky_relu_params;

/* LOGISTIC / TANH int8: input rescaled to Q4.27, gemmlowp fixed-point function. */
typedef struct {
    int32_t count;
    int32_t input_zero_point;
    int32_t input_range_radius; /* |x - zp| at or beyond this saturates */
    int32_t input_multiplier;
    int32_t input_left_shift;
} eq_sigmoid_params;

/* HARD_SWISH int8 (16-bit fixed point, TFLM's reference). */
typedef struct {
    int32_t count;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t reluish_multiplier_fixedpoint_int16;
    int32_t reluish_multiplier_exponent;
    int32_t output_multiplier_fixedpoint_int16;
    int32_t output_multiplier_exponent; /* <= 0 */
} eq_hard_swish_params;

/* PAD / PADV2: output dims, and the input box [before, before + in_dims) it holds. */
typedef struct {
    int32_t elem_bytes;
    const int32_t *out_dims; /* [EQ_MAX_RANK] */
    const int32_t *in_dims;
    const int32_t *before; /* padding before each dimension */
    int32_t pad_value;     /* on the tensor's grid (output zero point by default) */
} eq_pad_params;

/* TRANSPOSE / STRIDED_SLICE: output element [o_0..o_5] is input element
 * [in_offset + sum o_k * in_strides[k]] (strides may be negative). */
typedef struct {
    int32_t elem_bytes;
    int32_t in_offset;         /* elements */
    const int32_t *out_dims;   /* [EQ_MAX_RANK] */
    const int32_t *in_strides; /* input step (elements) along output axis k */
} eq_strided_copy_params;

/* CONCATENATION (inputs share the output's quantization, as TFLM requires for int8). The
 * tensors are viewed as [outer, axis_i * inner]; copy_elems[i] = axis_i * inner. */
typedef struct {
    int32_t elem_bytes;
    int32_t num_inputs;
    int32_t outer;
    const int32_t *copy_elems; /* [num_inputs] */
} eq_concat_params;

eq_status eq_add_s8(const eq_add_params *p, const int8_t *input1, const int8_t *input2,
                    int8_t *output);
eq_status eq_add_s16(const eq_add_params *p, const int16_t *input1, const int16_t *input2,
                     int16_t *output);
eq_status eq_sub_s8(const eq_add_params *p, const int8_t *input1, const int8_t *input2,
                    int8_t *output);
eq_status eq_sub_s16(const eq_add_params *p, const int16_t *input1, const int16_t *input2,
                     int16_t *output);
eq_status eq_mul_s8(const eq_mul_params *p, const int8_t *input1, const int8_t *input2,
                    int8_t *output);
eq_status eq_mul_s16(const eq_mul_params *p, const int16_t *input1, const int16_t *input2,
                     int16_t *output);

eq_status eq_softmax_s8(const eq_softmax_params *p, const int8_t *input, int8_t *output);
eq_status eq_softmax_s8_s16(const eq_softmax_params *p, const int8_t *input, int16_t *output);
eq_status eq_softmax_s16(const eq_softmax_s16_params *p, const int16_t *input, int16_t *output);

eq_status eq_mean_s8(const eq_mean_params *p, const int8_t *input, int8_t *output);
eq_status eq_mean_s16(const eq_mean_params *p, const int16_t *input, int16_t *output);

eq_status eq_relu_s8(const eq_relu_params *p, const int8_t *input, int8_t *output);
eq_status eq_relu_s16(const eq_relu_params *p, const int16_t *input, int16_t *output);
eq_status eq_clamp_s8(const eq_clamp_params *p, const int8_t *input, int8_t *output);
eq_status eq_clamp_s16(const eq_clamp_params *p, const int16_t *input, int16_t *output);
eq_status eq_leaky_relu_s8(const eq_leaky_relu_params *p, const int8_t *input, int8_t *output);
eq_status eq_leaky_relu_s16(const eq_leaky_relu_params *p, const int16_t *input, int16_t *output);
eq_status eq_logistic_s8(const eq_sigmoid_params *p, const int8_t *input, int8_t *output);
eq_status eq_tanh_s8(const eq_sigmoid_params *p, const int8_t *input, int8_t *output);
eq_status eq_hard_swish_s8(const eq_hard_swish_params *p, const int8_t *input, int8_t *output);

eq_status eq_pad_x(const eq_pad_params *p, const void *input, void *output);
eq_status eq_strided_copy_x(const eq_strided_copy_params *p, const void *input, void *output);
eq_status eq_concat_x(const eq_concat_params *p, ...);

#endif /* EQ_KERNELS_ELEMENTWISE_H */
