/* CONV_2D, int8 activations, int8 filters (per channel or per tensor), int32 bias.
 * Bit-exact with TFLM's reference_integer_ops::ConvPerChannel (grouped convolution included).
 * Always double rounding: LiteRT's reference convolutions round twice as well, so
 * EDGEQ_RT_SINGLE_ROUNDING (LiteRT's FULLY_CONNECTED) does not apply here.
 *
 * Fast path (one group, no horizontal dilation): per output pixel the window is clipped to the
 * image once, so each window row is one contiguous run of input bytes that matches one
 * contiguous run of each filter; four output channels share every input load. Skipped taps are
 * the ones TFLM skips, and the integer sums are the same, so the result is identical. A window
 * wholly inside the image starts from bias_folded (bias + input_offset * sum(filter), computed at
 * codegen) and skips the per-tap offset add: the same integer, summed in another order. Each
 * pixel is finished (all channels) before the next, in raster order (ops_conv.raster_overlap). */
#include "eq_conv_common.h"

#include <string.h>

static inline int8_t requant_out(const eq_conv2d_params *p, int32_t acc, int32_t oc)
{
    return eq_conv_out_s8(&p->requant, acc, oc, p->output_offset, p->act_min, p->act_max);
}

#if EQ_DSP
/* Four input bytes against four packed filter words (one per channel): two SMLADs each. */
EQ_SPECIALIZE void dot4_step_dsp(const int8_t *x, const int8_t *wp, int32_t *a0, int32_t *a1,
                                 int32_t *a2, int32_t *a3)
{
    const uint32_t xv = eq_load4(x);
    const int32_t xl = eq_lo16(xv);
    const int32_t xh = eq_hi16(xv);
    const uint32_t w0 = eq_load4(wp), w1 = eq_load4(wp + 4);
    const uint32_t w2 = eq_load4(wp + 8), w3 = eq_load4(wp + 12);
    *a0 = eq_smlad(eq_lo16(w0), xl, eq_smlad(eq_hi16(w0), xh, *a0));
    *a1 = eq_smlad(eq_lo16(w1), xl, eq_smlad(eq_hi16(w1), xh, *a1));
    *a2 = eq_smlad(eq_lo16(w2), xl, eq_smlad(eq_hi16(w2), xh, *a2));
    *a3 = eq_smlad(eq_lo16(w3), xl, eq_smlad(eq_hi16(w3), xh, *a3));
}
#endif

/* One output pixel, all channels: `rows` window rows of `seg` contiguous input bytes each, the
 * accumulators starting at init[oc] (bias, or bias_folded with off == 0 for a full window).
 * `k0` is the window's first tap in the filter's (fy, fx, ic) order. With a packed filter the
 * first out_c & ~3 channels go four at a time through eq_dot4_packed (the rest of the packed
 * array is in the plain OHWI order); otherwise `filter` is plain OHWI throughout. */
EQ_SPECIALIZE_LARGE void conv_pixel(const eq_conv2d_params *p, const eq_out_q *q, const int8_t *in0,
                                    const int8_t *filter, int32_t packed, int32_t k0, int32_t rows,
                                    int32_t seg, const int32_t *init, int32_t off, int8_t *out)
{
    const int32_t out_c = p->out_c;
    const int32_t filter_size = p->filter_h * p->filter_w * p->in_c;
    const int32_t in_row_step = p->dilation.h * p->in_w * p->in_c;
    const int32_t w_row_step = p->filter_w * p->in_c;
    int32_t oc = 0;
    if (packed) {
        for (; oc + 4 <= out_c; oc += 4) {
            int32_t acc[4] = {0, 0, 0, 0};
            if (init != NULL) {
                acc[0] = init[oc];
                acc[1] = init[oc + 1];
                acc[2] = init[oc + 2];
                acc[3] = init[oc + 3];
            }
            const int8_t *wp = filter + oc * filter_size + 4 * k0;
            const int8_t *in_row = in0;
            for (int32_t r = 0; r < rows; ++r) {
                eq_dot4_packed(in_row, seg, wp, off, acc);
                in_row += in_row_step;
                wp += 4 * w_row_step;
            }
            eq_out_q_conv4_cold(q, out, oc, acc[0], acc[1], acc[2], acc[3]);
        }
    } else {
        for (; oc + 4 <= out_c; oc += 4) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            if (init != NULL) {
                a0 = init[oc];
                a1 = init[oc + 1];
                a2 = init[oc + 2];
                a3 = init[oc + 3];
            }
            const int8_t *w0 = filter + oc * filter_size + k0;
            const int8_t *in_row = in0;
            for (int32_t r = 0; r < rows; ++r) {
                const int8_t *x = in_row;
                const int8_t *const x_end = in_row + seg;
                const int8_t *wa = w0;
                const int8_t *wb = w0 + filter_size;
                const int8_t *wc = w0 + 2 * filter_size;
                const int8_t *wd = w0 + 3 * filter_size;
                while (x < x_end) {
                    const int32_t v = (int32_t)*x++ + off;
                    a0 += (int32_t)*wa++ * v;
                    a1 += (int32_t)*wb++ * v;
                    a2 += (int32_t)*wc++ * v;
                    a3 += (int32_t)*wd++ * v;
                }
                in_row += in_row_step;
                w0 += w_row_step;
            }
            eq_out_q_conv4_cold(q, out, oc, a0, a1, a2, a3);
        }
    }
    for (; oc < out_c; ++oc) {
        int32_t acc = init != NULL ? init[oc] : 0;
        const int8_t *w = filter + oc * filter_size + k0;
        const int8_t *in_row = in0;
        for (int32_t r = 0; r < rows; ++r) {
            for (int32_t k = 0; k < seg; ++k) {
                acc += (int32_t)w[k] * ((int32_t)in_row[k] + off);
            }
            in_row += in_row_step;
            w += w_row_step;
        }
        out[oc] = (int8_t)eq_out_q_conv(q, acc, oc);
    }
}

#if EQ_DSP
/* `n` consecutive output pixels of one row whose windows lie wholly inside the image, packed
 * filter: per block of four channels the accumulators start from bias_folded and stay in
 * registers over the filter_h window rows, each read in place as `seg` contiguous bytes:
 * filter_w * in_c, or packed_row for a filter with zero-padded rows (the bytes past a row's
 * end meet zero weights, so whatever they hold adds nothing; the caller keeps them inside the
 * image). */
static EQ_NOINLINE void conv_packed_run(const eq_conv2d_params *p, const eq_out_q *oq,
                                        const int8_t *in0, int32_t n, int32_t rows, int32_t seg,
                                        int32_t in_row_step, int8_t *out)
{
    const eq_out_q local = *oq; /* a copy no int8 store can alias: read once, kept in registers */
    const eq_out_q *const q = &local;
    const int32_t out_c = p->out_c;
    const int32_t fh = rows;
    const int32_t px_step = p->stride.w * p->in_c;
    const int32_t *const init = p->bias_folded;
    for (int32_t i = 0; i < n; ++i) {
        const int8_t *wp = p->filter_packed;
        int32_t oc = 0;
        for (; oc + 4 <= out_c; oc += 4) {
            int32_t a0 = init[oc], a1 = init[oc + 1], a2 = init[oc + 2], a3 = init[oc + 3];
            const int8_t *row = in0;
            for (int32_t r = 0; r < fh; ++r) {
                const int8_t *xx = row;
                const int8_t *const x_end = row + seg;
                if (seg % 8 == 0) {
                    while (xx != x_end) {
                        dot4_step_dsp(xx, wp, &a0, &a1, &a2, &a3);
                        EQ_BARRIER();
                        dot4_step_dsp(xx + 4, wp + 16, &a0, &a1, &a2, &a3);
                        xx += 8;
                        wp += 32;
                    }
                } else {
                    while (xx != x_end) {
                        dot4_step_dsp(xx, wp, &a0, &a1, &a2, &a3);
                        xx += 4;
                        wp += 16;
                    }
                }
                row += in_row_step;
            }
            eq_out_q_conv4(q, out, oc, a0, a1, a2, a3);
        }
        for (; oc < out_c; ++oc) { /* plain (padded) rows after the last block */
            int32_t acc = init[oc];
            const int8_t *row = in0;
            for (int32_t r = 0; r < fh; ++r) {
                for (int32_t k = 0; k < seg; ++k) {
                    acc += (int32_t)wp[k] * (int32_t)row[k];
                }
                wp += seg;
                row += in_row_step;
            }
            out[oc] = (int8_t)eq_out_q_conv(q, acc, oc);
        }
        in0 += px_step;
        out += out_c;
    }
}
#endif

static void conv_fast(const eq_conv2d_params *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output)
{
    const int32_t in_c = p->in_c;
    const int32_t packed = p->filter_packed != NULL;
    const int8_t *const w = packed ? p->filter_packed : filter;
    const eq_out_q oq = eq_out_q_make(&p->requant, p->output_offset, p->act_min, p->act_max);
    const eq_out_q *const q = &oq;
    /* output columns [ox_lo, ox_hi) have windows wholly inside the image horizontally */
    const int32_t ox_lo = (p->padding.w + p->stride.w - 1) / p->stride.w;
    const int32_t last = p->in_w - p->filter_w + p->padding.w;
    int32_t ox_hi = last < 0 ? 0 : last / p->stride.w + 1;
    ox_hi = ox_hi > p->out_w ? p->out_w : ox_hi;
    (void)ox_lo;
    (void)ox_hi;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * in_c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride.h - p->padding.h;
            int32_t fy0, fy1;
            eq_valid_taps(in_y0, p->dilation.h, p->in_h, p->filter_h, &fy0, &fy1);
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride.w - p->padding.w;
#if EQ_DSP
                if (packed && p->bias_folded != NULL && ox == ox_lo && ox_hi > ox_lo &&
                    fy1 - fy0 == p->filter_h) {
                    conv_packed_run(p, q, in_b + (in_y0 * p->in_w + in_x0) * in_c, ox_hi - ox_lo,
                                    p->filter_h, p->filter_w * in_c, p->dilation.h * p->in_w * in_c,
                                    output + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c);
                    ox = ox_hi - 1;
                    continue;
                }
#endif
                int32_t fx0, fx1;
                eq_valid_taps(in_x0, 1, p->in_w, p->filter_w, &fx0, &fx1);
                const int8_t *in0 =
                    in_b + ((in_y0 + p->dilation.h * fy0) * p->in_w + in_x0 + fx0) * in_c;
                const int32_t k0 = (fy0 * p->filter_w + fx0) * in_c;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                const int32_t rows = fy1 - fy0;
                const int32_t cols = fx1 - fx0;
                const int32_t whole =
                    p->bias_folded != NULL && rows == p->filter_h && cols == p->filter_w;
                if (EQ_SIZE) { /* one call site: one copy of conv_pixel */
                    conv_pixel(p, q, in0, w, packed, k0, rows, cols * in_c,
                               whole ? p->bias_folded : bias, whole ? 0 : p->input_offset, out);
                } else if (whole) {
                    if (packed) {
                        conv_pixel(p, q, in0, w, 1, k0, rows, cols * in_c, p->bias_folded, 0, out);
                    } else {
                        conv_pixel(p, q, in0, w, 0, k0, rows, cols * in_c, p->bias_folded, 0, out);
                    }
                } else {
                    conv_pixel(p, q, in0, w, packed, k0, rows, cols * in_c, bias, p->input_offset,
                               out);
                }
            }
        }
    }
}

/* 1x1 filter, no padding, packed filter: a matrix product of the [pixels, in_c] input (rows
 * picked by the stride) with the [out_c, in_c] filter; every window is whole, so every
 * accumulator starts from bias_folded. No window clipping at all. The DSP loop keeps the four
 * accumulators in registers across the row (no call per block) and takes eight input bytes
 * per iteration when in_c allows. */
static EQ_NOINLINE void conv1x1_packed(const eq_conv2d_params *p, const eq_out_q *oq,
                                       const int8_t *input, int8_t *output)
{
    const eq_out_q local = *oq; /* a copy no int8 store can alias: read once, kept in registers */
    const eq_out_q *const q = &local;
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t *const init = p->bias_folded;
    const int32_t x_step = p->stride.w * in_c;
    const int32_t row_step = p->stride.h * p->in_w * in_c;
    int8_t *out = output;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *x_row = input + b * p->in_h * p->in_w * in_c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int8_t *x = x_row;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int8_t *wp = p->filter_packed;
                int32_t oc = 0;
                for (; oc + 4 <= out_c; oc += 4) {
#if EQ_DSP
                    int32_t a0 = init[oc], a1 = init[oc + 1], a2 = init[oc + 2], a3 = init[oc + 3];
                    const int8_t *xx = x;
                    const int8_t *const x_end = x + in_c;
                    if (in_c % 8 == 0) {
                        while (xx != x_end) {
                            dot4_step_dsp(xx, wp, &a0, &a1, &a2, &a3);
                            EQ_BARRIER();
                            dot4_step_dsp(xx + 4, wp + 16, &a0, &a1, &a2, &a3);
                            xx += 8;
                            wp += 32;
                        }
                    } else {
                        while (xx != x_end) {
                            dot4_step_dsp(xx, wp, &a0, &a1, &a2, &a3);
                            xx += 4;
                            wp += 16;
                        }
                    }
                    eq_out_q_conv4(q, out, oc, a0, a1, a2, a3);
#else
                    int32_t acc[4] = {init[oc], init[oc + 1], init[oc + 2], init[oc + 3]};
                    wp = eq_dot4_packed(x, in_c, wp, 0, acc);
                    eq_out_q_conv4_cold(q, out, oc, acc[0], acc[1], acc[2], acc[3]);
#endif
                }
                for (; oc < out_c; ++oc) { /* plain row order after the last block */
                    int32_t acc = init[oc];
                    for (int32_t k = 0; k < in_c; ++k) {
                        acc += (int32_t)wp[k] * (int32_t)x[k];
                    }
                    wp += in_c;
                    out[oc] = (int8_t)eq_out_q_conv(q, acc, oc);
                }
                x += x_step;
                out += out_c;
            }
            x_row += row_step;
        }
    }
}

/* Packed filter with padded rows (packed_row > 0; small in_c such as a first layer's 1 or 3
 * channels): each window is copied to `win` as filter_h rows of packed_row bytes, taps outside
 * the image filled with the input zero point (x + input_offset = 0: they add nothing, as TFLM
 * skips them) and row padding 0 (its weights are 0 too). The copy is one contiguous run, so
 * each block of four channels is one call of the tile over filter_h * packed_row bytes, and
 * every window starts from bias_folded: the same integer sum as TFLM's. */
static void conv_windows(const eq_conv2d_params *p, const eq_out_q *q, const int8_t *input,
                         int8_t *output)
{
    int8_t win[EQ_CONV_WINDOW_MAX];
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t row_bytes = p->filter_w * in_c;
    const int32_t pr = p->packed_row;
    const int32_t fh = p->filter_h;
    const int32_t size = fh * pr;
    const int32_t *const init = p->bias_folded;
    const int8_t zp = (int8_t)(-p->input_offset);
    int8_t *out = output;
    memset(win, 0, sizeof win); /* the row padding stays 0 */
#if EQ_DSP
    /* output columns [ox_lo, ox_hi) have windows wholly inside the image horizontally */
    const int32_t ox_lo = (p->padding.w + p->stride.w - 1) / p->stride.w;
    const int32_t last = p->in_w - p->filter_w + p->padding.w;
    int32_t ox_hi = last < 0 ? 0 : last / p->stride.w + 1;
    ox_hi = ox_hi > p->out_w ? p->out_w : ox_hi;
#endif
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * in_c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride.h - p->padding.h;
            int32_t fy0, fy1;
            eq_valid_taps(in_y0, p->dilation.h, p->in_h, fh, &fy0, &fy1);
#if EQ_DSP
            /* whole windows read in place (rows of two words or more: there the copy costs
             * more than the tile's row setup), as long as the padded rows end in the image */
            int32_t run_hi = ox_hi;
            if (pr >= 8 && fy1 - fy0 == fh) {
                const int8_t *const in_end = in_b + p->in_h * p->in_w * in_c;
                const int8_t *const last_row =
                    in_b + (in_y0 + p->dilation.h * (fh - 1)) * p->in_w * in_c;
                while (run_hi > ox_lo &&
                       last_row + ((run_hi - 1) * p->stride.w - p->padding.w) * in_c + pr >
                           in_end) {
                    --run_hi;
                }
            } else {
                run_hi = ox_lo;
            }
#endif
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride.w - p->padding.w;
#if EQ_DSP
                if (ox == ox_lo && run_hi > ox_lo) {
                    conv_packed_run(p, q, in_b + (in_y0 * p->in_w + in_x0) * in_c, run_hi - ox_lo,
                                    fh, pr, p->dilation.h * p->in_w * in_c, out);
                    out += (run_hi - ox_lo) * out_c;
                    ox = run_hi - 1;
                    continue;
                }
#endif
                int32_t fx0, fx1;
                eq_valid_taps(in_x0, 1, p->in_w, p->filter_w, &fx0, &fx1);
                const int32_t k0 = fx0 * in_c;
                const int32_t k1 = fx1 * in_c;
                const int8_t *row = in_b + (in_y0 * p->in_w + in_x0) * in_c;
                int8_t *dst = win;
                for (int32_t fy = 0; fy < fh; ++fy) {
                    if (fy >= fy0 && fy < fy1) {
                        for (int32_t k = 0; k < row_bytes; ++k) {
                            dst[k] = k >= k0 && k < k1 ? row[k] : zp;
                        }
                    } else {
                        for (int32_t k = 0; k < row_bytes; ++k) {
                            dst[k] = zp;
                            EQ_OPAQUE(dst); /* a byte loop, not a memset call per row */
                        }
                    }
                    dst += pr;
                    row += p->dilation.h * p->in_w * in_c;
                }
#if EQ_DSP
                /* the copy is one contiguous run: one row of `size` bytes */
                conv_packed_run(p, q, win, 1, 1, size, 0, out);
                out += out_c;
                continue;
#endif
                const int8_t *wp = p->filter_packed;
                int32_t oc = 0;
                for (; oc + 4 <= out_c; oc += 4) {
                    int32_t acc[4] = {init[oc], init[oc + 1], init[oc + 2], init[oc + 3]};
                    wp = eq_dot4_packed(win, size, wp, 0, acc);
                    eq_out_q_conv4_cold(q, out, oc, acc[0], acc[1], acc[2], acc[3]);
                }
                for (; oc < out_c; ++oc) { /* plain padded rows after the last block */
                    int32_t acc = init[oc];
                    for (int32_t k = 0; k < size; ++k) {
                        acc += (int32_t)wp[k] * (int32_t)win[k];
                    }
                    wp += size;
                    out[oc] = (int8_t)eq_out_q_conv(q, acc, oc);
                }
                out += out_c;
            }
        }
    }
}

/* Any group count and dilation: TFLM's loop order, one tap at a time. */
static void conv_generic(const eq_conv2d_params *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, int8_t *output)
{
    const int32_t filters_per_group = p->out_c / (p->in_c / p->filter_in_c);
    for (int32_t b = 0; b < p->batches; ++b) {
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride.w - p->padding.w;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                for (int32_t oc = 0; oc < p->out_c; ++oc) {
                    const int32_t group_c0 = (oc / filters_per_group) * p->filter_in_c;
                    int32_t acc = 0;
                    for (int32_t fy = 0; fy < p->filter_h; ++fy) {
                        const int32_t in_y = in_y0 + p->dilation.h * fy;
                        if (in_y < 0 || in_y >= p->in_h) {
                            continue;
                        }
                        for (int32_t fx = 0; fx < p->filter_w; ++fx) {
                            const int32_t in_x = in_x0 + p->dilation.w * fx;
                            if (in_x < 0 || in_x >= p->in_w) {
                                continue;
                            }
                            const int8_t *in = input +
                                               ((b * p->in_h + in_y) * p->in_w + in_x) * p->in_c +
                                               group_c0;
                            const int8_t *w =
                                filter +
                                ((oc * p->filter_h + fy) * p->filter_w + fx) * p->filter_in_c;
                            for (int32_t ic = 0; ic < p->filter_in_c; ++ic) {
                                acc += (int32_t)w[ic] * ((int32_t)in[ic] + p->input_offset);
                            }
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[oc];
                    }
                    out[oc] = requant_out(p, acc, oc);
                }
            }
        }
    }
}

eq_status eq_conv2d_s8(const eq_conv2d_params *p, const int8_t *input, const int8_t *filter,
                       const int32_t *bias, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->filter_in_c <= 0 ||
        p->in_c % p->filter_in_c != 0) {
        return EQ_ERR_ARG;
    }
    if (p->filter_packed != NULL && p->packed_row > 0) {
        if (p->in_c != p->filter_in_c || p->packed_row % 4 != 0 || p->dilation.w != 1 ||
            p->dilation.h < 1 || p->bias_folded == NULL || p->packed_row < p->filter_w * p->in_c ||
            p->filter_h * p->packed_row > EQ_CONV_WINDOW_MAX) {
            return EQ_ERR_ARG;
        }
        const eq_out_q q = eq_out_q_make(&p->requant, p->output_offset, p->act_min, p->act_max);
        conv_windows(p, &q, input, output);
        return EQ_OK;
    }
    if (p->filter_packed != NULL) {
        if (p->in_c != p->filter_in_c || p->in_c % 4 != 0 || p->dilation.w != 1 ||
            p->dilation.h < 1) {
            return EQ_ERR_ARG;
        }
        if (p->filter_h == 1 && p->filter_w == 1 && p->padding.h == 0 && p->padding.w == 0 &&
            p->bias_folded != NULL) {
            const eq_out_q q = eq_out_q_make(&p->requant, p->output_offset, p->act_min, p->act_max);
            conv1x1_packed(p, &q, input, output);
        } else {
            conv_fast(p, input, NULL, bias, output);
        }
        return EQ_OK;
    }
    if (filter == NULL) {
        return EQ_ERR_ARG;
    }
    const int32_t groups = p->in_c / p->filter_in_c;
    if (p->out_c % groups != 0) {
        return EQ_ERR_ARG;
    }
    if (groups == 1 && p->dilation.w == 1 && p->dilation.h >= 1) {
        conv_fast(p, input, filter, bias, output);
    } else {
        conv_generic(p, input, filter, bias, output);
    }
    return EQ_OK;
}
