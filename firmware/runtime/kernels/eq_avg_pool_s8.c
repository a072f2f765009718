/* AVERAGE_POOL_2D, int8_t: the mean of the window's in-image part, rounded half away from zero.
 * Bit-exact with TFLM's reference_integer_ops::AveragePool (padding never counts).
 *
 * The window is clipped to the image once per output pixel; channels are summed four at a
 * time with pointer steps. Each pixel is finished before the next (ops_conv.raster_overlap).
 * DSP path: one word load and two SXTAB16 per tap add four channels into int16 lanes (exact:
 * at most 256 taps of |x| <= 128 stay within int16), then the same rounding division. */
#include "eq_dsp.h"
#include "eq_kernels_conv.h"
#include "eq_math.h"

static int8_t average(const eq_pool_params *p, int32_t acc, int32_t count)
{
    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
    return (int8_t)eq_clamp_i32(acc, p->act_min, p->act_max);
}

eq_status eq_avg_pool_s8(const eq_pool_params *p, const int8_t *input, int8_t *output)
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
                if (fy1 <= fy0 || fx1 <= fx0) {
                    return EQ_ERR_ARG;
                }
                const int32_t rows = fy1 - fy0;
                const int32_t cols = fx1 - fx0;
                const int32_t count = rows * cols;
                const int8_t *in0 = in_b + (in_y0 + fy0) * row_step + (in_x0 + fx0) * ch;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * ch;
                int32_t c = 0;
#if EQ_DSP
                if (count <= 256) {
                    for (; c + 4 <= ch; c += 4) {
                        uint32_t s02 = 0, s13 = 0; /* lanes (c0, c2) and (c1, c3) */
                        const int8_t *in_row = in0 + c;
                        for (int32_t r = 0; r < rows; ++r) {
                            const int8_t *x = in_row;
                            for (int32_t t = 0; t < cols; ++t) {
                                const uint32_t v = eq_load4(x);
                                s02 = eq_sxtab16(s02, v);
                                s13 = eq_sxtab16_hi(s13, v);
                                x += ch;
                            }
                            in_row += row_step;
                        }
                        out[c] = average(p, (int16_t)s02, count);
                        out[c + 1] = average(p, (int16_t)s13, count);
                        out[c + 2] = average(p, (int32_t)s02 >> 16, count);
                        out[c + 3] = average(p, (int32_t)s13 >> 16, count);
                    }
                }
#endif
                for (; c + 4 <= ch; c += 4) {
                    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                    const int8_t *in_row = in0 + c;
                    for (int32_t r = 0; r < rows; ++r) {
                        const int8_t *x = in_row;
                        for (int32_t t = 0; t < cols; ++t) {
                            s0 += x[0];
                            s1 += x[1];
                            s2 += x[2];
                            s3 += x[3];
                            x += ch;
                        }
                        in_row += row_step;
                    }
                    out[c] = average(p, s0, count);
                    out[c + 1] = average(p, s1, count);
                    out[c + 2] = average(p, s2, count);
                    out[c + 3] = average(p, s3, count);
                }
                for (; c < ch; ++c) {
                    int32_t acc = 0;
                    const int8_t *in_row = in0 + c;
                    for (int32_t r = 0; r < rows; ++r) {
                        for (int32_t t = 0; t < cols; ++t) {
                            acc += in_row[t * ch];
                        }
                        in_row += row_step;
                    }
                    out[c] = average(p, acc, count);
                }
            }
        }
    }
    return EQ_OK;
}
