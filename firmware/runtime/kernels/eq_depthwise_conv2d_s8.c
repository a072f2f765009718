/* DEPTHWISE_CONV_2D, int8_t activations, int8 per-channel filters (1HWO), any depth multiplier and
 * dilation. Bit-exact with TFLM's reference_integer_ops::DepthwiseConvPerChannel.
 * Always double rounding: LiteRT's reference convolutions round twice as well, so
 * EDGEQ_RT_SINGLE_ROUNDING (LiteRT's FULLY_CONNECTED) does not apply here.
 *
 * Per output pixel the window is clipped to the image once (the taps TFLM skips), then
 * channels are accumulated four at a time, walking input and filter with pointer steps. A window
 * wholly inside the image starts from bias_folded (bias + input_offset * sum of the channel's
 * filter, computed at codegen) and skips the per-tap offset add: the same integer sum. Each
 * pixel is finished (all channels) before the next, in raster order (see ops_conv.raster_overlap). */
#include "eq_conv_common.h"

static inline int8_t requant_out(const eq_depthwise_conv2d_params *p, int32_t acc, int32_t oc)
{
    return eq_conv_out_s8(&p->requant, acc, oc, p->output_offset, p->act_min, p->act_max);
}

/* Channels [0, out_c) in steps of four (depth multiplier 1) of one output pixel: `rows` x `cols`
 * taps, accumulators starting at init[c] (bias, or bias_folded with off == 0 for a full window). */
EQ_SPECIALIZE int32_t dw_pixel4(const eq_depthwise_conv2d_params *p, const int8_t *in0,
                                const int8_t *w_first, int32_t rows, int32_t cols,
                                const int32_t *init, int32_t off, int8_t *out)
{
    const int32_t out_c = p->out_c;
    const int32_t in_tap_step = p->dilation.w * p->in_c;
    const int32_t in_row_step = p->dilation.h * p->in_w * p->in_c;
    const int32_t w_row_step = p->filter_w * out_c;
#if EQ_DSP
    const int32_t off2 = (int32_t)(((uint32_t)(uint16_t)off << 16) | (uint16_t)off);
#endif
    int32_t oc = 0;
    for (; oc + 4 <= out_c; oc += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (init != NULL) {
            a0 = init[oc];
            a1 = init[oc + 1];
            a2 = init[oc + 2];
            a3 = init[oc + 3];
        }
        const int8_t *in_row = in0 + oc;
        const int8_t *w_row = w_first + oc;
        for (int32_t r = 0; r < rows; ++r) {
            const int8_t *x = in_row;
            const int8_t *w = w_row;
#if EQ_DSP
            /* one word of four channels' inputs and one of their weights per tap; each channel
             * keeps its own accumulator (SMLABB / SMLATT on the sign-extended lanes) */
            for (int32_t t = 0; t < cols; ++t) {
                const uint32_t xv = eq_load4(x);
                const uint32_t wv = eq_load4(w);
                int32_t xl = eq_lo16(xv);
                int32_t xh = eq_hi16(xv);
                if (off != 0) {
                    xl = eq_sadd16(xl, off2);
                    xh = eq_sadd16(xh, off2);
                }
                const int32_t wl = eq_lo16(wv);
                const int32_t wh = eq_hi16(wv);
                a0 = eq_smlabb(wl, xl, a0);
                a2 = eq_smlatt(wl, xl, a2);
                a1 = eq_smlabb(wh, xh, a1);
                a3 = eq_smlatt(wh, xh, a3);
                x += in_tap_step;
                w += out_c;
            }
#else
            for (int32_t t = 0; t < cols; ++t) {
                a0 += (int32_t)w[0] * ((int32_t)x[0] + off);
                a1 += (int32_t)w[1] * ((int32_t)x[1] + off);
                a2 += (int32_t)w[2] * ((int32_t)x[2] + off);
                a3 += (int32_t)w[3] * ((int32_t)x[3] + off);
                x += in_tap_step;
                w += out_c;
            }
#endif
            in_row += in_row_step;
            w_row += w_row_step;
        }
        out[oc] = requant_out(p, a0, oc);
        out[oc + 1] = requant_out(p, a1, oc + 1);
        out[oc + 2] = requant_out(p, a2, oc + 2);
        out[oc + 3] = requant_out(p, a3, oc + 3);
    }
    return oc;
}

eq_status eq_depthwise_conv2d_s8(const eq_depthwise_conv2d_params *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (p == NULL || input == NULL || filter == NULL || output == NULL || p->dilation.h < 1 ||
        p->dilation.w < 1 || p->out_c != p->in_c * p->depth_multiplier) {
        return EQ_ERR_ARG;
    }
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t dm = p->depth_multiplier;
    const int32_t off = p->input_offset;
    const int32_t in_tap_step = p->dilation.w * in_c;
    const int32_t in_row_step = p->dilation.h * p->in_w * in_c;
    const int32_t w_row_step = p->filter_w * out_c;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * in_c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride.h - p->padding.h;
            int32_t fy0, fy1;
            eq_valid_taps(in_y0, p->dilation.h, p->in_h, p->filter_h, &fy0, &fy1);
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride.w - p->padding.w;
                int32_t fx0, fx1;
                eq_valid_taps(in_x0, p->dilation.w, p->in_w, p->filter_w, &fx0, &fx1);
                const int32_t rows = fy1 - fy0;
                const int32_t cols = fx1 - fx0;
                const int8_t *in0 = in_b + ((in_y0 + p->dilation.h * fy0) * p->in_w + in_x0 +
                                            p->dilation.w * fx0) * in_c;
                const int8_t *w_first = filter + (fy0 * p->filter_w + fx0) * out_c;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * out_c;
                int32_t oc = 0;
                if (dm == 1) {
                    if (p->bias_folded != NULL && rows == p->filter_h && cols == p->filter_w) {
                        if (rows == 3 && cols == 3) {  /* 3x3 interior: taps unrolled */
                            oc = dw_pixel4(p, in0, w_first, 3, 3, p->bias_folded, 0, out);
                        } else {
                            oc = dw_pixel4(p, in0, w_first, rows, cols, p->bias_folded, 0, out);
                        }
                    } else {
                        oc = dw_pixel4(p, in0, w_first, rows, cols, bias, off, out);
                    }
                }
                /* remaining channels (all of them when depth_multiplier > 1): input channel
                 * oc / dm feeds output channel oc */
                for (; oc < out_c; ++oc) {
                    int32_t acc = bias != NULL ? bias[oc] : 0;
                    const int8_t *in_row = in0 + oc / dm;
                    const int8_t *w_row = w_first + oc;
                    for (int32_t r = 0; r < rows; ++r) {
                        const int8_t *x = in_row;
                        const int8_t *w = w_row;
                        for (int32_t t = 0; t < cols; ++t) {
                            acc += (int32_t)*w * ((int32_t)*x + off);
                            x += in_tap_step;
                            w += out_c;
                        }
                        in_row += in_row_step;
                        w_row += w_row_step;
                    }
                    out[oc] = requant_out(p, acc, oc);
                }
            }
        }
    }
    return EQ_OK;
}
