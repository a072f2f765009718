/* TILE for any element size: the input repeated multiples[k] times along every axis. Each
 * output row (innermost axis) is the input row copied multiples[last] times; an odometer over
 * the outer output axes tracks the input row it repeats (index mod input extent). */
#include <string.h>

#include "eq_kernels_movement.h"

eq_status eq_tile_x(const eq_tile_params *p, const void *input, void *output)
{
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    int32_t out_dims[EQ_MAX_RANK];
    int32_t in_strides[EQ_MAX_RANK];
    int32_t idx[EQ_MAX_RANK];
    int32_t in_idx[EQ_MAX_RANK];
    int32_t rows = 1;
    int32_t k;
    int32_t r;
    size_t row_bytes;
    size_t eb;
    if (p == 0 || input == 0 || output == 0 || p->elem_bytes <= 0) {
        return EQ_ERR_ARG;
    }
    eb = (size_t)p->elem_bytes;
    for (k = EQ_MAX_RANK - 1, r = 1; k >= 0; --k) {
        if (p->in_dims[k] <= 0 || p->multiples[k] <= 0) {
            return p->in_dims[k] == 0 || p->multiples[k] == 0 ? EQ_OK : EQ_ERR_ARG;
        }
        out_dims[k] = p->in_dims[k] * p->multiples[k];
        in_strides[k] = r;
        r *= p->in_dims[k];
        idx[k] = 0;
        in_idx[k] = 0;
    }
    for (k = 0; k < EQ_MAX_RANK - 1; ++k) {
        rows *= out_dims[k];
    }
    row_bytes = (size_t)p->in_dims[EQ_MAX_RANK - 1] * eb;
    for (r = 0; r < rows; ++r) {
        size_t in_off = 0;
        int32_t m;
        for (k = 0; k < EQ_MAX_RANK - 1; ++k) {
            in_off += (size_t)in_idx[k] * (size_t)in_strides[k];
        }
        for (m = 0; m < p->multiples[EQ_MAX_RANK - 1]; ++m) {
            memcpy(out, in + in_off * eb, row_bytes);
            out += row_bytes;
        }
        for (k = EQ_MAX_RANK - 2; k >= 0; --k) {
            idx[k] += 1;
            in_idx[k] += 1;
            if (in_idx[k] == p->in_dims[k]) {
                in_idx[k] = 0;
            }
            if (idx[k] < out_dims[k]) {
                break;
            }
            idx[k] = 0;
            in_idx[k] = 0;
        }
    }
    return EQ_OK;
}
