/* RESIZE_BILINEAR, int8 (TFLM's ResizeBilinearInteger): four int64 products with 10-bit
 * weights, rounded half away from zero by the division by 2^20 (TFLM's default build). */
#include "eq_kernels_movement.h"

eq_status eq_resize_bilinear_s8(const eq_resize_bilinear_params *p, const int8_t *input,
                                int8_t *output)
{
    int32_t b;
    int32_t y;
    int32_t x;
    int32_t c;
    if (p == 0 || input == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image =
            input + (size_t)b * (size_t)p->in_height * (size_t)p->in_width * (size_t)p->channels;
        for (y = 0; y < p->out_height; ++y) {
            const int8_t *row0 = image + (size_t)p->y0[y] * (size_t)p->in_width * p->channels;
            const int8_t *row1 = image + (size_t)p->y1[y] * (size_t)p->in_width * p->channels;
            const int64_t wy1 = p->wy[y];
            const int64_t wy0 = 1024 - wy1;
            for (x = 0; x < p->out_width; ++x) {
                const size_t c0 = (size_t)p->x0[x] * (size_t)p->channels;
                const size_t c1 = (size_t)p->x1[x] * (size_t)p->channels;
                const int64_t wx1 = p->wx[x];
                const int64_t wx0 = 1024 - wx1;
                for (c = 0; c < p->channels; ++c) {
                    const int64_t sum = row0[c0 + c] * wy0 * wx0 + row1[c0 + c] * wy1 * wx0 +
                                        row0[c1 + c] * wy0 * wx1 + row1[c1 + c] * wy1 * wx1;
                    const int64_t round = sum > 0 ? (1 << 19) : -(1 << 19);
                    *output++ = (int8_t)((sum + round) / (1 << 20));
                }
            }
        }
    }
    return EQ_OK;
}
