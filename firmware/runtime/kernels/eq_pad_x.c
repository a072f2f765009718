/* PAD / PADV2 for any element size: the input box is copied into an output filled with the
 * pad value (the output zero point unless the model gives a constant). */
#include <string.h>

#include "eq_kernels_elementwise.h"
#include "eq_nd.h"

static void store(void *out, int32_t i, int32_t elem_bytes, int32_t value)
{
    if (elem_bytes == 1) {
        ((int8_t *)out)[i] = (int8_t)value;
    } else if (elem_bytes == 2) {
        ((int16_t *)out)[i] = (int16_t)value;
    } else {
        ((int32_t *)out)[i] = value;
    }
}

eq_status eq_pad_x(const eq_pad_params *p, const void *input, void *output)
{
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    int32_t out_strides[EQ_MAX_RANK];
    int32_t in_strides[EQ_MAX_RANK];
    int32_t out_count = 1;
    int32_t k;
    int32_t i;
    eq_nd_iter it;
    if (p == 0 || input == 0 || output == 0 ||
        !(p->elem_bytes == 1 || p->elem_bytes == 2 || p->elem_bytes == 4)) {
        return EQ_ERR_ARG;
    }
    for (k = EQ_MAX_RANK - 1; k >= 0; --k) {
        out_strides[k] = out_count;
        out_count *= p->out_dims[k];
    }
    for (k = EQ_MAX_RANK - 1, i = 1; k >= 0; --k) {
        in_strides[k] = i;
        i *= p->in_dims[k];
    }
    for (i = 0; i < out_count; ++i) {
        store(output, i, p->elem_bytes, p->pad_value);
    }
    if (out_count == 0) {
        return EQ_OK;
    }
    /* Walk the input rows; off1 = input offset, off2 = output offset of the row start. */
    eq_nd_iter_init(&it);
    for (k = 0; k < EQ_MAX_RANK; ++k) {
        it.off2 += p->before[k] * out_strides[k];
    }
    {
        const int32_t inner = p->in_dims[EQ_MAX_RANK - 1];
        int32_t in_count = 1;
        int32_t done;
        for (k = 0; k < EQ_MAX_RANK; ++k) {
            in_count *= p->in_dims[k];
        }
        for (done = 0; inner > 0 && done < in_count; done += inner) {
            memcpy(out + (size_t)it.off2 * (size_t)p->elem_bytes,
                   in + (size_t)it.off1 * (size_t)p->elem_bytes,
                   (size_t)inner * (size_t)p->elem_bytes);
            eq_nd_iter_next_row(&it, p->in_dims, in_strides, out_strides);
        }
    }
    return EQ_OK;
}
