/* edgeq-rt LUT-coded weight kernels: CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED whose int8
 * filters are stored as packed k-bit indices (k = 1, 2, 4) into a small int8 table.
 *
 * Why: after pruning + clustering (or ternary/binary training, or int4 quantization) every
 * output channel uses at most 2^k distinct int8 weight values, so flash holds k bits per weight
 * plus the table instead of 8 bits. Each weight is decoded where it is used, inside the kernel
 * loop: there is no decoded copy in RAM. The arithmetic is the int8 kernels' own, so results
 * are bit-exact with the uncompressed int8 model (TFLM for LUT-coded int8 filters; LiteRT's
 * reference kernels for int4 filters, whose nibbles index a shared two's-complement table).
 *
 * Index packing: weight j (in the .tflite filter's element order) sits in byte (j * bits) / 8
 * at bit (j * bits) % 8, lowest bits first -- the order TFLite uses for packed int4. */
#ifndef EQ_KERNELS_LUT_H
#define EQ_KERNELS_LUT_H

#include "eq_kernels_conv.h"

typedef struct {
    int32_t bits;              /* index width: 1, 2 or 4 */
    int32_t table_per_channel; /* 1: 2^bits entries per output channel; 0: one shared table */
    const uint8_t *indices;    /* ceil(count * bits / 8) bytes */
    const int8_t *table;
} eq_lut_weights;

typedef struct {
    eq_conv2d_params conv;
    eq_lut_weights lut;
} eq_conv2d_lut_params;

typedef struct {
    eq_depthwise_conv2d_params conv;
    eq_lut_weights lut;
} eq_depthwise_conv2d_lut_params;

typedef struct {
    eq_fully_connected_params fc;
    eq_lut_weights lut;
} eq_fully_connected_lut_params;

/* The int8 weight at flat filter index j of output channel c. */
static inline int32_t eq_lut_weight(const eq_lut_weights *w, int32_t j, int32_t c)
{
    const uint32_t bit = (uint32_t)j * (uint32_t)w->bits;
    const uint32_t mask = (1U << (uint32_t)w->bits) - 1U;
    const uint32_t idx = ((uint32_t)w->indices[bit >> 3] >> (bit & 7U)) & mask;
    const int32_t base = w->table_per_channel ? (c << w->bits) : 0;
    return (int32_t)w->table[base + (int32_t)idx];
}

static inline int eq_lut_valid(const eq_lut_weights *w)
{
    return w->indices != NULL && w->table != NULL && (w->bits == 1 || w->bits == 2 || w->bits == 4);
}

/* Sparse LUT coding, for pruned layers: per output channel a bitmap marks the nonzero
 * weights and only those are stored, as k-bit table indices. A channel's K weights are taken in
 * the filter's order restricted to that channel (conv: fy, fx, ic; depthwise: fy, fx; fully
 * connected: d). The kernels decode one channel at a time into caller-owned scratch of
 * eq_sparse_lut_scratch_size() bytes (K), then run the int8 arithmetic over it: a channel-sized
 * buffer, never a decoded copy of the layer. */
typedef struct {
    int32_t bits;              /* index width of the nonzero values: 1, 2 or 4 */
    int32_t table_per_channel; /* 1: 2^bits entries per output channel; 0: one shared table */
    int32_t channel_size;      /* K: weights per output channel */
    const uint8_t *mask;       /* ceil(K / 8) bytes per channel, bit i%8 of byte i/8 = weight i */
    const uint32_t *offsets;   /* per channel: number of nonzero weights in earlier channels */
    const uint8_t *indices;    /* packed k-bit indices of all nonzero weights, channel by channel */
    const int8_t *table;
} eq_sparse_lut_weights;

typedef struct {
    eq_conv2d_params conv;
    eq_sparse_lut_weights lut;
} eq_conv2d_sparse_lut_params;

typedef struct {
    eq_depthwise_conv2d_params conv;
    eq_sparse_lut_weights lut;
} eq_depthwise_conv2d_sparse_lut_params;

typedef struct {
    eq_fully_connected_params fc;
    eq_sparse_lut_weights lut;
} eq_fully_connected_sparse_lut_params;

static inline int32_t eq_sparse_lut_scratch_size(const eq_sparse_lut_weights *w)
{
    return w->channel_size;
}

static inline int eq_sparse_lut_valid(const eq_sparse_lut_weights *w, const void *scratch)
{
    return scratch != NULL && w->mask != NULL && w->offsets != NULL && w->indices != NULL &&
           w->table != NULL && w->channel_size > 0 &&
           (w->bits == 1 || w->bits == 2 || w->bits == 4);
}

/* Decode the K weights of channel c into dst. */
static inline void eq_sparse_lut_decode(const eq_sparse_lut_weights *w, int32_t c, int8_t *dst)
{
    const int32_t k = w->channel_size;
    const uint8_t *mask = w->mask + c * ((k + 7) / 8);
    const uint32_t mask_bits = (1U << (uint32_t)w->bits) - 1U;
    const int32_t base = w->table_per_channel ? (c << w->bits) : 0;
    uint32_t bit = w->offsets[c] * (uint32_t)w->bits;
    for (int32_t i = 0; i < k; ++i) {
        if ((mask[i >> 3] >> (i & 7)) & 1U) {
            const uint32_t idx = ((uint32_t)w->indices[bit >> 3] >> (bit & 7U)) & mask_bits;
            dst[i] = w->table[base + (int32_t)idx];
            bit += (uint32_t)w->bits;
        } else {
            dst[i] = 0;
        }
    }
}

eq_status eq_conv2d_s8_sparse_lut(const eq_conv2d_sparse_lut_params *p, const int8_t *input,
                                  const int32_t *bias, int8_t *output, int8_t *scratch);
eq_status eq_depthwise_conv2d_s8_sparse_lut(const eq_depthwise_conv2d_sparse_lut_params *p,
                                            const int8_t *input, const int32_t *bias,
                                            int8_t *output, int8_t *scratch);
eq_status eq_fully_connected_s8_sparse_lut(const eq_fully_connected_sparse_lut_params *p,
                                           const int8_t *input, const int32_t *bias, int8_t *output,
                                           int8_t *scratch);

eq_status eq_conv2d_s8_lut(const eq_conv2d_lut_params *p, const int8_t *input, const int32_t *bias,
                           int8_t *output);
eq_status eq_depthwise_conv2d_s8_lut(const eq_depthwise_conv2d_lut_params *p, const int8_t *input,
                                     const int32_t *bias, int8_t *output);
eq_status eq_fully_connected_s8_lut(const eq_fully_connected_lut_params *p, const int8_t *input,
                                    const int32_t *bias, int8_t *output);

#endif /* EQ_KERNELS_LUT_H */
