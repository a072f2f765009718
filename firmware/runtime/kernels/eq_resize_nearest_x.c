/* RESIZE_NEAREST_NEIGHBOR for any element size on NHWC: one pixel (all channels) copied per
 * output pixel from the row and column the host-computed index tables name. */
#include <string.h>

#include "eq_kernels_movement.h"

eq_status eq_resize_nearest_x(const eq_resize_nearest_params *p, const void *input, void *output)
{
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    int32_t b;
    int32_t y;
    int32_t x;
    size_t pixel;
    if (p == 0 || input == 0 || output == 0 || p->elem_bytes <= 0) {
        return EQ_ERR_ARG;
    }
    pixel = (size_t)p->channels * (size_t)p->elem_bytes;
    for (b = 0; b < p->batches; ++b) {
        const uint8_t *image = in + (size_t)b * (size_t)p->in_height * (size_t)p->in_width * pixel;
        for (y = 0; y < p->out_height; ++y) {
            const uint8_t *row = image + (size_t)p->y_index[y] * (size_t)p->in_width * pixel;
            for (x = 0; x < p->out_width; ++x) {
                memcpy(out, row + (size_t)p->x_index[x] * pixel, pixel);
                out += pixel;
            }
        }
    }
    return EQ_OK;
}
