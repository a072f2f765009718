/* TRANSPOSE and STRIDED_SLICE for any element size (rank <= EQ_MAX_RANK): a strided gather,
 * output element [o_0..o_5] = input element [in_offset + sum o_k * in_strides[k]]. */
#include <string.h>

#include "eq_kernels_elementwise.h"
#include "eq_nd.h"

eq_status eq_strided_copy_x(const eq_strided_copy_params *p, const void *input, void *output)
{
    const uint8_t *in;
    uint8_t *out = (uint8_t *)output;
    int32_t count = 1;
    int32_t k;
    int32_t o;
    eq_nd_iter it;
    if (p == 0 || input == 0 || output == 0 || p->elem_bytes <= 0) {
        return EQ_ERR_ARG;
    }
    in = (const uint8_t *)input + (size_t)p->in_offset * (size_t)p->elem_bytes;
    for (k = 0; k < EQ_MAX_RANK; ++k) {
        count *= p->out_dims[k];
    }
    {
        const int32_t inner = p->out_dims[EQ_MAX_RANK - 1];
        const int32_t stride = p->in_strides[EQ_MAX_RANK - 1];
        const size_t eb = (size_t)p->elem_bytes;
        eq_nd_iter_init(&it);
        for (o = 0; inner > 0 && o < count; o += inner) {
            int32_t j;
            if (stride == 1) {
                memcpy(out + (size_t)o * eb, in + (size_t)it.off1 * eb, (size_t)inner * eb);
            } else {
                for (j = 0; j < inner; ++j) {
                    memcpy(out + (size_t)(o + j) * eb,
                           in + (ptrdiff_t)(it.off1 + j * stride) * (ptrdiff_t)eb, eb);
                }
            }
            eq_nd_iter_next_row(&it, p->out_dims, p->in_strides, 0);
        }
    }
    return EQ_OK;
}
