/* GATHER for any element size with int32 indices: TFLM's batch/outer/coordinate loop, one
 * inner block copied per index. Out-of-range indices are refused. */
#include <string.h>

#include "eq_kernels_movement.h"

eq_status eq_gather_x(const eq_gather_params *p, const void *input, const int32_t *indices,
                      void *output)
{
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    int32_t b;
    int32_t o;
    int32_t c;
    size_t block;
    if (p == 0 || input == 0 || indices == 0 || output == 0 || p->elem_bytes <= 0) {
        return EQ_ERR_ARG;
    }
    for (c = 0; c < p->batch_size * p->coord_size; ++c) {
        if (indices[c] < 0 || indices[c] >= p->axis_size) {
            return EQ_ERR_ARG;
        }
    }
    block = (size_t)p->inner_size * (size_t)p->elem_bytes;
    for (b = 0; b < p->batch_size; ++b) {
        const int32_t *coords = indices + (size_t)b * (size_t)p->coord_size;
        for (o = 0; o < p->outer_size; ++o) {
            const uint8_t *src =
                in + ((size_t)b * (size_t)p->outer_size + (size_t)o) * (size_t)p->axis_size * block;
            for (c = 0; c < p->coord_size; ++c) {
                memcpy(out, src + (size_t)coords[c] * block, block);
                out += block;
            }
        }
    }
    return EQ_OK;
}
