/* MAX_POOL_2D, int8_t: the maximum of the window's in-image part, then the activation clamp.
 * Bit-exact with TFLM's reference_integer_ops::MaxPool.
 *
 * The window is clipped to the image once per output pixel; channels are reduced four at a
 * time with pointer steps. Each pixel is finished before the next (ops_conv.raster_overlap).
 * DSP path: four channels per word, the running maximum and the clamp by SSUB8/SEL. */
#include "eq_dsp.h"
#include "eq_kernels_conv.h"
#include "eq_math.h"

static int32_t max_i32(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

eq_status eq_max_pool_s8(const eq_pool_params *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return EQ_ERR_ARG;
    }
    const int32_t ch = p->channels;
    const int32_t row_step = p->in_w * ch;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * row_step;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride.h - p->padding.h;
            const int32_t fy0 = in_y0 < 0 ? -in_y0 : 0;
            const int32_t fy1 = p->filter_h < p->in_h - in_y0 ? p->filter_h : p->in_h - in_y0;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride.w - p->padding.w;
                const int32_t fx0 = in_x0 < 0 ? -in_x0 : 0;
                const int32_t fx1 = p->filter_w < p->in_w - in_x0 ? p->filter_w : p->in_w - in_x0;
                const int32_t rows = fy1 - fy0;
                const int32_t cols = fx1 - fx0;
                const int8_t *in0 = in_b + (in_y0 + fy0) * row_step + (in_x0 + fx0) * ch;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * ch;
                int32_t c = 0;
#if EQ_DSP
                const uint32_t lo4 = (uint32_t)(uint8_t)p->act_min * UINT32_C(0x01010101);
                const uint32_t hi4 = (uint32_t)(uint8_t)p->act_max * UINT32_C(0x01010101);
                for (; c + 4 <= ch; c += 4) {
                    uint32_t m = UINT32_C(0x80808080);
                    const int8_t *in_row = in0 + c;
                    for (int32_t r = 0; r < rows; ++r) {
                        const int8_t *x = in_row;
                        for (int32_t t = 0; t < cols; ++t) {
                            m = eq_max_s8x4(m, eq_load4(x));
                            x += ch;
                        }
                        in_row += row_step;
                    }
                    m = eq_min_s8x4(eq_max_s8x4(m, lo4), hi4);
                    memcpy(out + c, &m, 4);
                }
#endif
                for (; c + 4 <= ch; c += 4) {
                    int32_t m0 = -128, m1 = -128, m2 = -128, m3 = -128;
                    const int8_t *in_row = in0 + c;
                    for (int32_t r = 0; r < rows; ++r) {
                        const int8_t *x = in_row;
                        for (int32_t t = 0; t < cols; ++t) {
                            m0 = max_i32(m0, x[0]);
                            m1 = max_i32(m1, x[1]);
                            m2 = max_i32(m2, x[2]);
                            m3 = max_i32(m3, x[3]);
                            x += ch;
                        }
                        in_row += row_step;
                    }
                    out[c] = (int8_t)eq_clamp_i32(m0, p->act_min, p->act_max);
                    out[c + 1] = (int8_t)eq_clamp_i32(m1, p->act_min, p->act_max);
                    out[c + 2] = (int8_t)eq_clamp_i32(m2, p->act_min, p->act_max);
                    out[c + 3] = (int8_t)eq_clamp_i32(m3, p->act_min, p->act_max);
                }
                for (; c < ch; ++c) {
                    int32_t best = -128;
                    const int8_t *in_row = in0 + c;
                    for (int32_t r = 0; r < rows; ++r) {
                        for (int32_t t = 0; t < cols; ++t) {
                            best = max_i32(best, in_row[t * ch]);
                        }
                        in_row += row_step;
                    }
                    out[c] = (int8_t)eq_clamp_i32(best, p->act_min, p->act_max);
                }
            }
        }
    }
    return EQ_OK;
}
