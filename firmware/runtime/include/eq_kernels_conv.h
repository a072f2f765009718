/* edgeq-rt "conv family" kernels: convolution, depthwise convolution, fully connected, pooling,
 * and the quantize/dequantize/requantize kernels of float-I/O models.
 *
 * Every parameter struct is filled ahead of time by edgeq.codegen.ops_conv (TFLM's "Prepare"
 * done on the host), so a kernel only loops. Layout is NHWC; filters are OHWI (conv),
 * 1HWO (depthwise) and OI (fully connected), as in the .tflite file.
 *
 * Call convention (see edgeq/codegen/lowering.py):
 *   eq_status fn(const params *p, inputs..., outputs...);
 * Optional inputs (bias) may be NULL. Only TRANSPOSE_CONV needs scratch memory (its size
 * function is mirrored by edgeq.codegen.ops_conv.transpose_conv_scratch_bytes). */
#ifndef EQ_KERNELS_CONV_H
#define EQ_KERNELS_CONV_H

#include "edgeq_rt.h"

/* Inlines a kernel's inner helper at each call site so that constant arguments (e.g. a zero
 * input offset) specialize its loops; plain `static inline` for compilers without it. */
#if defined(__GNUC__)
#define EQ_SPECIALIZE static inline __attribute__((always_inline))
#else
#define EQ_SPECIALIZE static inline
#endif

/* A larger helper (a pixel's channel loop, the requantization of four outputs): specialized at
 * each call site like EQ_SPECIALIZE, except in a size build (EDGEQ_RT_SIZE), where each file
 * keeps one out-of-line copy. */
#if defined(EDGEQ_RT_SIZE) && defined(__GNUC__)
#define EQ_SPECIALIZE_LARGE static __attribute__((noinline, unused))
#elif defined(EDGEQ_RT_SIZE)
#define EQ_SPECIALIZE_LARGE static
#else
#define EQ_SPECIALIZE_LARGE EQ_SPECIALIZE
#endif

/* Height/width pair: strides, dilations, paddings. */
typedef struct {
    int32_t h;
    int32_t w;
} eq_hw;

/* Requantization of an accumulator to the output grid, per output channel or per tensor. */
typedef struct {
    int32_t per_channel; /* 1: one (multiplier, shift) per output channel; 0: entry 0 only */
    const int32_t *multiplier;
    const int32_t *shift; /* > 0 is a left shift */
    /* optional (NULL: not used), int8 conv/depthwise/FC kernels, double rounding: when every
     * shift is <= -2, per entry (multiplier, 2^(-shift-2), -shift-1) for
     * eq_requantize_double_pre, so no kernel derives them per output. */
    const int32_t *fast;
} eq_requant;

/* CONV_2D, int8 or int16 activations, int8 filters (OHWI); grouped when in_c > filter_in_c. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t filter_h, filter_w, filter_in_c;
    eq_hw stride;
    eq_hw dilation;
    eq_hw padding;         /* top/left padding; the rest of the window is clipped */
    int32_t input_offset;  /* -input zero point (0 for int16) */
    int32_t output_offset; /* output zero point */
    int32_t act_min, act_max;
    int32_t bias_64; /* int16 kernels: 1 = int64 bias and accumulator, 0 = int32 */
    eq_requant requant;
    /* int8 kernel, optional (NULL: not used): per output channel, bias + input_offset * the sum
     * of the channel's filter, i.e. the accumulator's start for a window that is wholly inside
     * the image, so that its taps need no offset add. Exact int32 (two's complement) sums. */
    const int32_t *bias_folded;
    /* int8 kernel, optional (NULL: read `filter`): the filter in the block-interleaved order of
     * edgeq.codegen.weight_packing (one group, in_c % 4 == 0, no horizontal dilation); the
     * kernel's filter argument is then NULL. */
    const int8_t *filter_packed;
    /* with filter_packed: 0 when in_c % 4 == 0 (window rows clipped to the image); otherwise
     * the filter's rows (filter_w * in_c bytes) were zero-padded to packed_row bytes (a multiple
     * of 4, filter_h * packed_row <= EQ_CONV_WINDOW_MAX) and each window is read whole, border
     * windows from a copy filled with the input zero point. */
    int32_t packed_row;
} eq_conv2d_params;

/* Largest window (filter_h * packed_row bytes) the int8 conv copies to its stack. */
#define EQ_CONV_WINDOW_MAX 256

/* DEPTHWISE_CONV_2D: out_c = in_c * depth_multiplier, filter 1HWO. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t filter_h, filter_w;
    int32_t depth_multiplier;
    eq_hw stride;
    eq_hw dilation;
    eq_hw padding;
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t bias_64;
    eq_requant requant;
    const int32_t *bias_folded; /* int8 kernel, optional: as in eq_conv2d_params */
    /* int8 kernel, optional (NULL: read `filter`; needs depth multiplier 1, in_c % 4 == 0 and
     * bias_folded): per tap and group of four channels, two words of int16 lanes (w0, w2) and
     * (w1, w3), edgeq.codegen.weight_packing.pack_depthwise; the filter argument is then NULL. */
    const int32_t *filter_packed;
    /* int8 kernel, optional (NULL: read `filter`; needs depth_multiplier > 1 and bias_folded):
     * depth multiplier > 1 as one small convolution per input channel, its
     * depth_multiplier outputs over a one-channel window. Per input channel, that filter with
     * each window row zero-padded to packed_row taps (a multiple of 4, filter_h * packed_row <=
     * EQ_CONV_WINDOW_MAX), in edgeq.codegen.weight_packing.pack_blocks order; the filter
     * argument is then NULL. */
    const int8_t *filter_blocks;
    int32_t packed_row;
} eq_depthwise_conv2d_params;

/* TRANSPOSE_CONV: input scattered through an OHWI filter into an accumulator (the caller's
 * scratch buffer, eq_transpose_conv_*_get_buffer_size() bytes), then requantized. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t filter_h, filter_w;
    eq_hw stride;
    eq_hw padding;
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t bias_64; /* int16 kernel: 1 = int64 bias, 0 = int32 bias */
    eq_requant requant;
} eq_transpose_conv_params;

/* FULLY_CONNECTED: input viewed as [batches, accum_depth], filter [out_depth, accum_depth]. */
typedef struct {
    int32_t batches;
    int32_t accum_depth;
    int32_t out_depth;
    int32_t input_offset;
    int32_t filter_offset; /* -filter zero point (0 for symmetric filters) */
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t bias_64;
    eq_requant requant;
    /* int8 kernel, optional (NULL: not used; needs filter_offset 0): per output channel
     * bias + input_offset * sum(filter row), so the taps need no offset add. */
    const int32_t *bias_folded;
    /* int8 kernel, optional (NULL: read `filter`; needs bias_folded and accum_depth % 4 == 0):
     * the filter in edgeq.codegen.weight_packing's block-interleaved order. */
    const int8_t *filter_packed;
} eq_fully_connected_params;

/* AVERAGE_POOL_2D / MAX_POOL_2D: input and output share scale and zero point. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t filter_h, filter_w;
    eq_hw stride;
    eq_hw padding;
    int32_t act_min, act_max;
} eq_pool_params;

/* QUANTIZE from float32: q = clamp(round(x / scale) + zero_point) (scale applied in double). */
typedef struct {
    int32_t count;
    float scale;
    int32_t zero_point;
    eq_dtype out_dtype; /* EQ_INT8 or EQ_INT16 */
} eq_quantize_params;

/* QUANTIZE between integer types: q = clamp(requant(x - in_zp) + out_zp). */
typedef struct {
    int32_t count;
    eq_dtype in_dtype; /* EQ_INT8, EQ_INT16 or EQ_INT32 */
    eq_dtype out_dtype;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier;
    int32_t shift;
} eq_requantize_params;

/* DEQUANTIZE to float32: x = (float)(scale * (q - zero_point)), product in double. */
typedef struct {
    int32_t count;
    eq_dtype in_dtype; /* EQ_INT8 or EQ_INT16 */
    float scale;
    int32_t zero_point;
} eq_dequantize_params;

eq_status eq_conv2d_s8(const eq_conv2d_params *p, const int8_t *input, const int8_t *filter,
                       const int32_t *bias, int8_t *output);
eq_status eq_conv2d_s16(const eq_conv2d_params *p, const int16_t *input, const int8_t *filter,
                        const void *bias, int16_t *output);

eq_status eq_depthwise_conv2d_s8(const eq_depthwise_conv2d_params *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output);
eq_status eq_depthwise_conv2d_s16(const eq_depthwise_conv2d_params *p, const int16_t *input,
                                  const int8_t *filter, const void *bias, int16_t *output);

eq_status eq_fully_connected_s8(const eq_fully_connected_params *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output);
eq_status eq_fully_connected_s16(const eq_fully_connected_params *p, const int16_t *input,
                                 const int8_t *filter, const void *bias, int16_t *output);

int32_t eq_transpose_conv_s8_get_buffer_size(const eq_transpose_conv_params *p);
int32_t eq_transpose_conv_s16_get_buffer_size(const eq_transpose_conv_params *p);
eq_status eq_transpose_conv_s8(const eq_transpose_conv_params *p, const int8_t *filter,
                               const int8_t *input, const int32_t *bias, int8_t *output,
                               void *scratch);
eq_status eq_transpose_conv_s16(const eq_transpose_conv_params *p, const int8_t *filter,
                                const int16_t *input, const void *bias, int16_t *output,
                                void *scratch);

eq_status eq_avg_pool_s8(const eq_pool_params *p, const int8_t *input, int8_t *output);
eq_status eq_avg_pool_s16(const eq_pool_params *p, const int16_t *input, int16_t *output);
eq_status eq_max_pool_s8(const eq_pool_params *p, const int8_t *input, int8_t *output);
eq_status eq_max_pool_s16(const eq_pool_params *p, const int16_t *input, int16_t *output);

eq_status eq_quantize_f32(const eq_quantize_params *p, const float *input, void *output);
eq_status eq_requantize_x(const eq_requantize_params *p, const void *input, void *output);
eq_status eq_dequantize_f32(const eq_dequantize_params *p, const void *input, float *output);

#endif /* EQ_KERNELS_CONV_H */
