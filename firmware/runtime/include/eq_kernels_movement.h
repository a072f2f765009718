/* edgeq-rt data-movement kernels added for models users bring: TILE, RESIZE_NEAREST_NEIGHBOR,
 * RESIZE_BILINEAR, SPLIT / SPLIT_V / UNPACK (one kernel with several outputs) and GATHER. PACK
 * reuses eq_concat_x (a stack is a concatenation of [outer, inner] rows).
 *
 * Inputs and outputs share their quantization (TFLM requires it too), so apart from the int8
 * bilinear interpolation these kernels only copy elements of p->elem_bytes bytes, of any type.
 * Parameters are filled ahead of time by edgeq.codegen.ops_movement; shapes are padded on the
 * left to EQ_MAX_RANK dimensions.
 *
 * Call convention (edgeq/codegen/lowering.py): eq_status fn(const params *p, inputs...,
 * outputs...). eq_split_x takes the input, then its p->num_outputs output pointers as variadic
 * arguments. */
#ifndef EQ_KERNELS_MOVEMENT_H
#define EQ_KERNELS_MOVEMENT_H

#include "eq_kernels_elementwise.h"

/* TILE: output dims = in_dims[k] * multiples[k]; output element o reads input element
 * (o_k mod in_dims[k]) on every axis. */
typedef struct {
    int32_t elem_bytes;
    const int32_t *in_dims;   /* [EQ_MAX_RANK] */
    const int32_t *multiples; /* [EQ_MAX_RANK] */
} eq_tile_params;

/* RESIZE_NEAREST_NEIGHBOR on NHWC: output pixel (y, x) copies input pixel (y_index[y],
 * x_index[x]). The index tables are computed on the host with TFLM's float arithmetic
 * (align_corners, half_pixel_centers), so the device does no float work. */
typedef struct {
    int32_t elem_bytes;
    int32_t batches;
    int32_t in_height;
    int32_t in_width;
    int32_t channels;
    int32_t out_height;
    int32_t out_width;
    const int32_t *y_index; /* [out_height] */
    const int32_t *x_index; /* [out_width] */
} eq_resize_nearest_params;

/* RESIZE_BILINEAR int8 on NHWC (TFLM's ResizeBilinearInteger, 10-bit fractions): output row y
 * blends input rows y0[y] and y1[y] with weights 1024 - wy[y] and wy[y] (wy may be negative
 * at the border with half-pixel centers, exactly as in TFLM); columns likewise. The tables come
 * from the host (align_corners / half_pixel_centers resolved there). */
typedef struct {
    int32_t batches;
    int32_t in_height;
    int32_t in_width;
    int32_t channels;
    int32_t out_height;
    int32_t out_width;
    const int32_t *y0; /* [out_height] */
    const int32_t *y1;
    const int32_t *wy;
    const int32_t *x0; /* [out_width] */
    const int32_t *x1;
    const int32_t *wx;
} eq_resize_bilinear_params;

/* SPLIT / SPLIT_V / UNPACK: the input viewed as [outer, sum of copy_elems]; output i receives
 * copy_elems[i] elements of every row, in order. */
typedef struct {
    int32_t elem_bytes;
    int32_t num_outputs;
    int32_t outer;
    const int32_t *copy_elems; /* [num_outputs] */
} eq_split_params;

/* GATHER (TFLM's loop): input viewed as [batch, outer, axis_size, inner], int32 indices as
 * [batch, coord_size]; output [batch, outer, coord_size, inner]. An index outside
 * [0, axis_size) returns EQ_ERR_ARG (TFLM only checks it in debug builds). */
typedef struct {
    int32_t elem_bytes;
    int32_t batch_size;
    int32_t outer_size;
    int32_t axis_size;
    int32_t coord_size;
    int32_t inner_size;
} eq_gather_params;

eq_status eq_tile_x(const eq_tile_params *p, const void *input, void *output);
eq_status eq_resize_nearest_x(const eq_resize_nearest_params *p, const void *input, void *output);
eq_status eq_resize_bilinear_s8(const eq_resize_bilinear_params *p, const int8_t *input,
                                int8_t *output);
eq_status eq_split_x(const eq_split_params *p, const void *input, ...);
eq_status eq_gather_x(const eq_gather_params *p, const void *input, const int32_t *indices,
                      void *output);

#endif /* EQ_KERNELS_MOVEMENT_H */
