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
EQ_SPECIALIZE_LARGE int32_t dw_pixel4(const eq_depthwise_conv2d_params *p, const eq_out_q *q,
                                      const int8_t *in0, const int8_t *w_first, int32_t rows,
                                      int32_t cols, const int32_t *init, int32_t off, int8_t *out)
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
        eq_out_q_conv4_cold(q, out, oc, a0, a1, a2, a3);
    }
    return oc;
}

#if !EQ_SIZE /* unpacked 3x3 runs (in_c % 4 != 0): speed builds only */
/* a[c] += w[c] * x[c] for the four channels at x and w (a window wholly inside the image
 * starts from bias_folded, so no offset add). */
EQ_SPECIALIZE void dw_tap4(const int8_t *x, const int8_t *w, int32_t a[4])
{
#if EQ_DSP
    const uint32_t xv = eq_load4(x);
    const uint32_t wv = eq_load4(w);
    const int32_t xl = eq_lo16(xv), xh = eq_hi16(xv);
    const int32_t wl = eq_lo16(wv), wh = eq_hi16(wv);
    a[0] = eq_smlabb(wl, xl, a[0]);
    a[2] = eq_smlatt(wl, xl, a[2]);
    a[1] = eq_smlabb(wh, xh, a[1]);
    a[3] = eq_smlatt(wh, xh, a[3]);
#else
    a[0] += (int32_t)w[0] * (int32_t)x[0];
    a[1] += (int32_t)w[1] * (int32_t)x[1];
    a[2] += (int32_t)w[2] * (int32_t)x[2];
    a[3] += (int32_t)w[3] * (int32_t)x[3];
#endif
}

/* 3x3 filter, depth multiplier 1: `n` consecutive output pixels of one row whose windows lie
 * wholly inside the image (in0: the first one's top-left input). The nine taps are unrolled and
 * start from bias_folded; same integer sums as TFLM's, so the same result. */
static void dw3x3_interior(const eq_depthwise_conv2d_params *p, const eq_out_q *q,
                           const int8_t *in0, const int8_t *filter, int32_t n, int8_t *out)
{
    const int32_t c = p->out_c;
    const int32_t tap = p->dilation.w * c;
    const int32_t row = p->dilation.h * p->in_w * c;
    const int32_t px_step = p->stride.w * c;
    const int32_t next_row = row - 2 * tap;
    const int32_t *const init = p->bias_folded;
    for (int32_t i = 0; i < n; ++i) {
        int32_t oc = 0;
        for (; oc + 4 <= c; oc += 4) {
            int32_t a[4] = {init[oc], init[oc + 1], init[oc + 2], init[oc + 3]};
            const int8_t *x = in0 + oc;
            const int8_t *w = filter + oc;
            /* pointer walks only: few live registers, no spills in the unrolled taps */
            EQ_OPAQUE(x);
            EQ_OPAQUE(w);
            dw_tap4(x, w, a);
            dw_tap4(x += tap, w += c, a);
            dw_tap4(x += tap, w += c, a);
            dw_tap4(x += next_row, w += c, a);
            dw_tap4(x += tap, w += c, a);
            dw_tap4(x += tap, w += c, a);
            dw_tap4(x += next_row, w += c, a);
            dw_tap4(x += tap, w += c, a);
            dw_tap4(x + tap, w + c, a);
            eq_out_q_conv4(q, out, oc, a[0], a[1], a[2], a[3]);
        }
        for (; oc < c; ++oc) {
            int32_t acc = init[oc];
            const int8_t *x = in0 + oc;
            const int8_t *w = filter + oc;
            for (int32_t r = 0; r < 3; ++r) {
                acc +=
                    (int32_t)w[0] * x[0] + (int32_t)w[c] * x[tap] + (int32_t)w[2 * c] * x[2 * tap];
                x += row;
                w += 3 * c;
            }
            out[oc] = (int8_t)eq_out_q_conv(q, acc, oc);
        }
        in0 += px_step;
        out += c;
    }
}

#endif

/* --- packed filter (depth multiplier 1, in_c % 4 == 0): int16 weight lanes, see
 * eq_depthwise_conv2d_params.filter_packed. Word pair w[0] = (w0, w2), w[1] = (w1, w3). */

static inline int32_t lane_lo(int32_t w)
{
    return (int32_t)(((uint32_t)w & 0xFFFFU) ^ 0x8000U) - 0x8000;
}

static inline int32_t lane_hi(int32_t w)
{
    return (int32_t)((((uint32_t)w >> 16) ^ 0x8000U)) - 0x8000;
}

/* a[c] += w[c] * (x[c] + off) for four channels; off2 = off in both int16 lanes. */
EQ_SPECIALIZE void dw_tap4_packed(const int8_t *x, const int32_t *w, int32_t off, int32_t off2,
                                  int32_t a[4])
{
#if EQ_DSP
    const uint32_t xv = eq_load4(x);
    int32_t xl = eq_lo16(xv);
    int32_t xh = eq_hi16(xv);
    if (off != 0) {
        xl = eq_sadd16(xl, off2);
        xh = eq_sadd16(xh, off2);
    }
    a[0] = eq_smlabb(w[0], xl, a[0]);
    a[2] = eq_smlatt(w[0], xl, a[2]);
    a[1] = eq_smlabb(w[1], xh, a[1]);
    a[3] = eq_smlatt(w[1], xh, a[3]);
#else
    (void)off2;
    a[0] += lane_lo(w[0]) * ((int32_t)x[0] + off);
    a[1] += lane_lo(w[1]) * ((int32_t)x[1] + off);
    a[2] += lane_hi(w[0]) * ((int32_t)x[2] + off);
    a[3] += lane_hi(w[1]) * ((int32_t)x[3] + off);
#endif
}

/* One output pixel, all channels: `rows` x `cols` taps starting at filter tap t0 (packed,
 * group-major: a group's taps are 2 * filter_h * filter_w consecutive words). */
EQ_SPECIALIZE_LARGE void dw_pixel_packed(const eq_depthwise_conv2d_params *p, const eq_out_q *q,
                                         const int8_t *in0, int32_t t0, int32_t rows, int32_t cols,
                                         const int32_t *init, int32_t off, int8_t *out)
{
    const int32_t c = p->out_c;
    const int32_t group_words = 2 * p->filter_h * p->filter_w;
    const int32_t in_tap = p->dilation.w * c;
    const int32_t in_row = p->dilation.h * p->in_w * c;
    const int32_t off2 = (int32_t)(((uint32_t)(uint16_t)off << 16) | (uint16_t)off);
    const int32_t *w_group = p->filter_packed + 2 * t0;
    for (int32_t oc = 0; oc < c; oc += 4) {
        int32_t a[4] = {0, 0, 0, 0};
        if (init != NULL) {
            a[0] = init[oc];
            a[1] = init[oc + 1];
            a[2] = init[oc + 2];
            a[3] = init[oc + 3];
        }
        const int8_t *x_row = in0 + oc;
        const int32_t *w_row = w_group;
        for (int32_t r = 0; r < rows; ++r) {
            const int8_t *x = x_row;
            const int32_t *w = w_row;
            for (int32_t t = 0; t < cols; ++t) {
                dw_tap4_packed(x, w, off, off2, a);
                x += in_tap;
                w += 2;
            }
            x_row += in_row;
            w_row += 2 * p->filter_w;
        }
        eq_out_q_conv4_cold(q, out, oc, a[0], a[1], a[2], a[3]);
        w_group += group_words;
    }
}

#if EQ_DSP
/* One tap of four channels: the input word's sign-extended lanes (c0, c2), (c1, c3) against the
 * packed weight words wa = (w0, w2), wb = (w1, w3). */
EQ_SPECIALIZE void dw_tap_dsp(uint32_t xv, int32_t wa, int32_t wb, int32_t *a0, int32_t *a1,
                              int32_t *a2, int32_t *a3)
{
    const int32_t xl = eq_lo16(xv);
    const int32_t xh = eq_hi16(xv);
    *a0 = eq_smlabb(wa, xl, *a0);
    *a2 = eq_smlatt(wa, xl, *a2);
    *a1 = eq_smlabb(wb, xh, *a1);
    *a3 = eq_smlatt(wb, xh, *a3);
}
#endif

/* 3x3, `n` consecutive output pixels of one row with windows wholly inside the image: taps
 * unrolled along each row, accumulators from bias_folded, no offset adds. Kept out of line so
 * that its loops get the registers (the DSP version addresses a row's three taps from one
 * pointer and one register offset). */
static EQ_NOINLINE void dw3x3_packed_run(const eq_depthwise_conv2d_params *p, const eq_out_q *oq,
                                         const int8_t *in0, int32_t n, int8_t *out)
{
    const eq_out_q local = *oq; /* a copy no int8 store can alias: read once, kept in registers */
    const eq_out_q *const q = &local;
    const int32_t c = p->out_c;
    const int32_t tap = p->dilation.w * c;
    const int32_t row = p->dilation.h * p->in_w * c;
    const int32_t px_step = p->stride.w * c;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t *w = p->filter_packed;
        const int32_t *init = p->bias_folded;
#if EQ_DSP
        const int8_t *x = in0;
        for (int32_t oc = 0; oc < c; oc += 4) {
            int32_t a0 = init[0], a1 = init[1], a2 = init[2], a3 = init[3];
            const int8_t *r = x;
            /* unrolled: no taken branch per window row */
            EQ_OPAQUE(r);
            dw_tap_dsp(eq_load4(r), w[0], w[1], &a0, &a1, &a2, &a3);
            dw_tap_dsp(eq_load4(r + tap), w[2], w[3], &a0, &a1, &a2, &a3);
            dw_tap_dsp(eq_load4(r + 2 * tap), w[4], w[5], &a0, &a1, &a2, &a3);
            r += row;
            EQ_OPAQUE(r);
            dw_tap_dsp(eq_load4(r), w[6], w[7], &a0, &a1, &a2, &a3);
            dw_tap_dsp(eq_load4(r + tap), w[8], w[9], &a0, &a1, &a2, &a3);
            dw_tap_dsp(eq_load4(r + 2 * tap), w[10], w[11], &a0, &a1, &a2, &a3);
            r += row;
            EQ_OPAQUE(r);
            dw_tap_dsp(eq_load4(r), w[12], w[13], &a0, &a1, &a2, &a3);
            dw_tap_dsp(eq_load4(r + tap), w[14], w[15], &a0, &a1, &a2, &a3);
            dw_tap_dsp(eq_load4(r + 2 * tap), w[16], w[17], &a0, &a1, &a2, &a3);
            w += 18;
            eq_out_q_conv4(q, out, oc, a0, a1, a2, a3);
            init += 4;
            x += 4;
        }
#else
        for (int32_t oc = 0; oc < c; oc += 4) {
            int32_t a[4] = {init[oc], init[oc + 1], init[oc + 2], init[oc + 3]};
            const int8_t *x_row = in0 + oc;
            for (int32_t r = 0; r < 3; ++r) {
                const int8_t *x = x_row;
                EQ_OPAQUE(x);
                dw_tap4_packed(x, w, 0, 0, a);
                dw_tap4_packed(x += tap, w + 2, 0, 0, a);
                dw_tap4_packed(x + tap, w + 4, 0, 0, a);
                x_row += row;
                w += 6;
            }
            eq_out_q_conv4_cold(q, out, oc, a[0], a[1], a[2], a[3]);
        }
#endif
        in0 += px_step;
        out += c;
    }
}

#if EQ_DSP
#define DW_ZP_MAX 512 /* channels of the zero-point row that stands in for taps off the image */

/* 3x3 border pixel: all nine taps, the ones off the image reading `zp_row` (the input zero
 * point in every byte: x + input_offset = 0 there, so with bias_folded they add w * zp, which
 * the folded -w * zp cancels: the sum of the taps TFLM keeps, as an integer). tap[k] is the
 * first channel of tap k's input (or zp_row). */
static EQ_NOINLINE void dw3x3_border_dsp(const eq_depthwise_conv2d_params *p, const eq_out_q *oq,
                                         const int8_t *const tap[9], int8_t *out)
{
    const eq_out_q local = *oq; /* a copy no int8 store can alias: read once, kept in registers */
    const eq_out_q *const q = &local;
    const int32_t c = p->out_c;
    const int32_t *w = p->filter_packed;
    const int32_t *init = p->bias_folded;
    for (int32_t oc = 0; oc < c; oc += 4) {
        int32_t a0 = init[0], a1 = init[1], a2 = init[2], a3 = init[3];
        /* unrolled: no taken branch per tap */
        dw_tap_dsp(eq_load4(tap[0] + oc), w[0], w[1], &a0, &a1, &a2, &a3);
        dw_tap_dsp(eq_load4(tap[1] + oc), w[2], w[3], &a0, &a1, &a2, &a3);
        dw_tap_dsp(eq_load4(tap[2] + oc), w[4], w[5], &a0, &a1, &a2, &a3);
        dw_tap_dsp(eq_load4(tap[3] + oc), w[6], w[7], &a0, &a1, &a2, &a3);
        dw_tap_dsp(eq_load4(tap[4] + oc), w[8], w[9], &a0, &a1, &a2, &a3);
        dw_tap_dsp(eq_load4(tap[5] + oc), w[10], w[11], &a0, &a1, &a2, &a3);
        dw_tap_dsp(eq_load4(tap[6] + oc), w[12], w[13], &a0, &a1, &a2, &a3);
        dw_tap_dsp(eq_load4(tap[7] + oc), w[14], w[15], &a0, &a1, &a2, &a3);
        dw_tap_dsp(eq_load4(tap[8] + oc), w[16], w[17], &a0, &a1, &a2, &a3);
        w += 18;
        eq_out_q_conv4(q, out, oc, a0, a1, a2, a3);
        init += 4;
    }
}
#endif

static void dw_packed(const eq_depthwise_conv2d_params *p, const int8_t *input, const int32_t *bias,
                      int8_t *output)
{
    const int32_t c = p->out_c;
    const eq_out_q oq = eq_out_q_make(&p->requant, p->output_offset, p->act_min, p->act_max);
    const eq_out_q *const q = &oq;
    const int32_t fast3x3 = p->filter_h == 3 && p->filter_w == 3;
    /* output columns [ox_lo, ox_hi) have windows wholly inside the image horizontally */
    const int32_t ox_lo = (p->padding.w + p->stride.w - 1) / p->stride.w;
    const int32_t last = p->in_w - 1 - (p->filter_w - 1) * p->dilation.w + p->padding.w;
    int32_t ox_hi = last < 0 ? 0 : last / p->stride.w + 1;
    ox_hi = ox_hi > p->out_w ? p->out_w : ox_hi;
#if EQ_DSP
    int8_t zp_row[DW_ZP_MAX];
    if (fast3x3 && c <= DW_ZP_MAX) {
        memset(zp_row, -p->input_offset, (size_t)c);
    }
#endif
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride.h - p->padding.h;
            int32_t fy0, fy1;
            eq_valid_taps(in_y0, p->dilation.h, p->in_h, p->filter_h, &fy0, &fy1);
            int8_t *out_row = output + (b * p->out_h + oy) * p->out_w * c;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride.w - p->padding.w;
                if (fast3x3 && ox == ox_lo && ox_hi > ox_lo && fy1 - fy0 == 3) {
                    dw3x3_packed_run(p, q, in_b + (in_y0 * p->in_w + in_x0) * c, ox_hi - ox_lo,
                                     out_row + ox * c);
                    ox = ox_hi - 1;
                    continue;
                }
                int32_t fx0, fx1;
                eq_valid_taps(in_x0, p->dilation.w, p->in_w, p->filter_w, &fx0, &fx1);
#if EQ_DSP
                if (fast3x3 && c <= DW_ZP_MAX) {
                    const int8_t *tap[9];
                    for (int32_t k = 0; k < 9; ++k) {
                        const int32_t fy = k / 3, fx = k % 3;
                        tap[k] = fy >= fy0 && fy < fy1 && fx >= fx0 && fx < fx1
                                     ? in_b + ((in_y0 + p->dilation.h * fy) * p->in_w + in_x0 +
                                               p->dilation.w * fx) *
                                                  c
                                     : zp_row;
                    }
                    dw3x3_border_dsp(p, q, tap, out_row + ox * c);
                    continue;
                }
#endif
                const int32_t rows = fy1 - fy0;
                const int32_t cols = fx1 - fx0;
                const int8_t *in0 =
                    in_b +
                    ((in_y0 + p->dilation.h * fy0) * p->in_w + in_x0 + p->dilation.w * fx0) * c;
                const int32_t t0 = fy0 * p->filter_w + fx0;
                const int32_t whole = rows == p->filter_h && cols == p->filter_w;
                if (EQ_SIZE) { /* one call site: one copy of dw_pixel_packed */
                    dw_pixel_packed(p, q, in0, t0, rows, cols, whole ? p->bias_folded : bias,
                                    whole ? 0 : p->input_offset, out_row + ox * c);
                } else if (whole) {
                    dw_pixel_packed(p, q, in0, t0, rows, cols, p->bias_folded, 0, out_row + ox * c);
                } else {
                    dw_pixel_packed(p, q, in0, t0, rows, cols, bias, p->input_offset,
                                    out_row + ox * c);
                }
            }
        }
    }
}

/* --- depth multiplier > 1, filter_blocks: each input channel with its depth_multiplier outputs
 * is a small convolution over a one-channel window, run on the conv family's register tile
 * (eq_dot4_packed_body: four outputs, four taps per step, SMLAD on DSP cores; the last
 * depth_multiplier % 4 outputs one at a time). Each input byte is loaded once per four outputs
 * instead of once per output. */

/* The last depth_multiplier % 4 outputs of an input channel (first: oc), one at a time over the
 * window of dw_mult_channel (blocks: the first one's plain rows); out of line, so the tile keeps
 * its registers. */
static EQ_NOINLINE void dw_mult_rest(const eq_depthwise_conv2d_params *p, const eq_out_q *q,
                                     const int8_t *x, int32_t x_row, int32_t fy0, int32_t fy1,
                                     const int8_t *blocks, const int32_t *init, int32_t off,
                                     int32_t oc, int8_t *out)
{
    const int32_t seg = p->packed_row;
    for (int32_t m = oc; m < oc + p->depth_multiplier % 4; ++m) {
        int32_t acc = init != NULL ? init[m] : 0;
        const int8_t *w = blocks + fy0 * seg;
        const int8_t *xr = x;
        for (int32_t r = fy0; r < fy1; ++r) {
            for (int32_t k = 0; k < seg; ++k) {
                acc += (int32_t)w[k] * ((int32_t)xr[k] + off);
            }
            xr += x_row;
            w += seg;
        }
        out[m] = (int8_t)eq_out_q_conv(q, acc, m);
        blocks += p->filter_h * seg;
    }
}

/* The outputs in blocks of four of one input channel at one pixel: window rows [fy0, fy1) read
 * from x (row r at x + (r - fy0) * x_row, packed_row taps each), accumulators from init (NULL:
 * zero) plus w * (x + off). blocks: the channel's packed filter; oc: its first output channel. */
EQ_SPECIALIZE_LARGE void dw_mult_channel(const eq_depthwise_conv2d_params *p, const eq_out_q *q,
                                         const int8_t *x, int32_t x_row, int32_t fy0, int32_t fy1,
                                         const int8_t *blocks, const int32_t *init, int32_t off,
                                         int32_t oc, int8_t *out)
{
    const int32_t seg = p->packed_row;
    const int32_t group_bytes = 4 * p->filter_h * seg; /* four outputs' whole windows */
    for (int32_t m = 0; m + 4 <= p->depth_multiplier; m += 4) {
        int32_t acc[4] = {0, 0, 0, 0};
        if (init != NULL) {
            acc[0] = init[oc + m];
            acc[1] = init[oc + m + 1];
            acc[2] = init[oc + m + 2];
            acc[3] = init[oc + m + 3];
        }
        const int8_t *wp = blocks + 4 * fy0 * seg;
        const int8_t *xr = x;
        for (int32_t r = fy0; r < fy1; ++r) {
            wp = eq_dot4_packed_body(xr, seg, wp, off, acc);
            xr += x_row;
        }
        eq_out_q_conv4_cold(q, out, oc + m, acc[0], acc[1], acc[2], acc[3]);
        blocks += group_bytes;
    }
}

/* Input channel ic's window at (in_y0, in_x0) copied to win (filter_h rows of packed_row
 * bytes), taps off the image and past filter_w holding the input zero point: there x + off is
 * 0, so from bias_folded the sum is that of the taps TFLM keeps. */
static void dw_mult_gather(const eq_depthwise_conv2d_params *p, const int8_t *in_b, int32_t ic,
                           int32_t in_y0, int32_t in_x0, int8_t *win)
{
    int32_t fx0, fx1;
    eq_valid_taps(in_x0, p->dilation.w, p->in_w, p->filter_w, &fx0, &fx1);
    const int32_t tap = p->dilation.w * p->in_c;
    memset(win, -p->input_offset, (size_t)(p->filter_h * p->packed_row));
    for (int32_t fy = 0; fy < p->filter_h; ++fy) {
        const int32_t y = in_y0 + fy * p->dilation.h;
        if (y < 0 || y >= p->in_h) {
            continue;
        }
        const int8_t *src = in_b + (y * p->in_w + in_x0 + fx0 * p->dilation.w) * p->in_c + ic;
        int8_t *dst = win + fy * p->packed_row;
        for (int32_t fx = fx0; fx < fx1; ++fx) {
            dst[fx] = *src;
            src += tap;
        }
    }
}

static void dw_mult(const eq_depthwise_conv2d_params *p, const int8_t *input, const int32_t *bias,
                    int8_t *output)
{
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t dm = p->depth_multiplier;
    const int32_t seg = p->packed_row;
    const int32_t window = p->filter_h * seg;
    const int32_t channel_bytes = dm * window;
    const int32_t rest = dm % 4; /* outputs past the last block of four, per input channel */
    const eq_out_q oq = eq_out_q_make(&p->requant, p->output_offset, p->act_min, p->act_max);
    const eq_out_q *const q = &oq;
    /* one input channel read in place: a window row is packed_row consecutive bytes */
    const int32_t in_place = in_c == 1 && p->dilation.w == 1;
    int8_t win[EQ_CONV_WINDOW_MAX];
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * in_c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride.h - p->padding.h;
            int32_t fy0, fy1;
            eq_valid_taps(in_y0, p->dilation.h, p->in_h, p->filter_h, &fy0, &fy1);
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride.w - p->padding.w;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * out_c;
                /* whole rows (the padding taps too) inside the image: rows read in place, those
                 * off the image skipped (then from bias, with the offset per tap) */
                const int32_t direct = in_place && in_x0 >= 0 && in_x0 + seg <= p->in_w;
                const int32_t whole = fy1 - fy0 == p->filter_h;
                for (int32_t ic = 0; ic < in_c; ++ic) {
                    const int8_t *blocks = p->filter_blocks + ic * channel_bytes;
                    const int8_t *x = win;
                    int32_t x_row = seg, r0 = 0, r1 = p->filter_h;
                    if (direct) {
                        x = in_b + (in_y0 + fy0 * p->dilation.h) * p->in_w + in_x0;
                        x_row = p->dilation.h * p->in_w;
                        r0 = fy0;
                        r1 = fy1;
                    } else {
                        dw_mult_gather(p, in_b, ic, in_y0, in_x0, win);
                    }
                    const int32_t folded = !direct || whole;
                    if (EQ_SIZE) { /* one call site: one copy of dw_mult_channel */
                        dw_mult_channel(p, q, x, x_row, r0, r1, blocks,
                                        folded ? p->bias_folded : bias,
                                        folded ? 0 : p->input_offset, ic * dm, out);
                    } else if (folded) {
                        dw_mult_channel(p, q, x, x_row, r0, r1, blocks, p->bias_folded, 0, ic * dm,
                                        out);
                    } else {
                        dw_mult_channel(p, q, x, x_row, r0, r1, blocks, bias, p->input_offset,
                                        ic * dm, out);
                    }
                    if (rest != 0) {
                        dw_mult_rest(p, q, x, x_row, r0, r1, blocks + (dm - rest) * window,
                                     folded ? p->bias_folded : bias, folded ? 0 : p->input_offset,
                                     ic * dm + dm - rest, out);
                    }
                }
            }
        }
    }
}

eq_status eq_depthwise_conv2d_s8(const eq_depthwise_conv2d_params *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->dilation.h < 1 || p->dilation.w < 1 ||
        p->out_c != p->in_c * p->depth_multiplier) {
        return EQ_ERR_ARG;
    }
    if (p->filter_packed != NULL) {
        if (p->depth_multiplier != 1 || p->in_c % 4 != 0 || p->bias_folded == NULL) {
            return EQ_ERR_ARG;
        }
        dw_packed(p, input, bias, output);
        return EQ_OK;
    }
    if (p->filter_blocks != NULL) {
        const int32_t seg = p->packed_row;
        if (p->depth_multiplier < 2 || p->bias_folded == NULL || seg < p->filter_w ||
            seg % 4 != 0 || p->filter_h * seg > EQ_CONV_WINDOW_MAX) {
            return EQ_ERR_ARG;
        }
        dw_mult(p, input, bias, output);
        return EQ_OK;
    }
    if (filter == NULL) {
        return EQ_ERR_ARG;
    }
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t dm = p->depth_multiplier;
    const int32_t off = p->input_offset;
    const int32_t in_tap_step = p->dilation.w * in_c;
    const int32_t in_row_step = p->dilation.h * p->in_w * in_c;
    const int32_t w_row_step = p->filter_w * out_c;
    const eq_out_q oq = eq_out_q_make(&p->requant, p->output_offset, p->act_min, p->act_max);
    const eq_out_q *const q = &oq;
    /* output columns [ox_lo, ox_hi) have windows wholly inside the image horizontally */
    const int32_t fast3x3 =
        dm == 1 && p->bias_folded != NULL && p->filter_h == 3 && p->filter_w == 3;
    const int32_t ox_lo = (p->padding.w + p->stride.w - 1) / p->stride.w;
    int32_t ox_hi = (p->in_w - 1 - 2 * p->dilation.w + p->padding.w) / p->stride.w + 1;
    ox_hi = p->in_w - 1 - 2 * p->dilation.w + p->padding.w < 0 ? 0 : ox_hi;
    ox_hi = ox_hi > p->out_w ? p->out_w : ox_hi;
    (void)fast3x3; /* size builds run the unpacked 3x3 windows through dw_pixel4 */
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
#if !EQ_SIZE
                if (fast3x3 && ox == ox_lo && ox_hi > ox_lo && fy1 - fy0 == 3) {
                    dw3x3_interior(p, q, in_b + (in_y0 * p->in_w + in_x0) * in_c, filter,
                                   ox_hi - ox_lo,
                                   output + ((b * p->out_h + oy) * p->out_w + ox) * out_c);
                    ox = ox_hi - 1;
                    continue;
                }
#endif
                int32_t fx0, fx1;
                eq_valid_taps(in_x0, p->dilation.w, p->in_w, p->filter_w, &fx0, &fx1);
                const int32_t rows = fy1 - fy0;
                const int32_t cols = fx1 - fx0;
                const int8_t *in0 =
                    in_b +
                    ((in_y0 + p->dilation.h * fy0) * p->in_w + in_x0 + p->dilation.w * fx0) * in_c;
                const int8_t *w_first = filter + (fy0 * p->filter_w + fx0) * out_c;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * out_c;
                int32_t oc = 0;
                const int32_t whole =
                    p->bias_folded != NULL && rows == p->filter_h && cols == p->filter_w;
                if (dm == 1 && EQ_SIZE) { /* one call site: one copy of dw_pixel4 */
                    oc = dw_pixel4(p, q, in0, w_first, rows, cols, whole ? p->bias_folded : bias,
                                   whole ? 0 : off, out);
                } else if (dm == 1) {
                    if (whole) {
                        oc = dw_pixel4(p, q, in0, w_first, rows, cols, p->bias_folded, 0, out);
                    } else {
                        oc = dw_pixel4(p, q, in0, w_first, rows, cols, bias, off, out);
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
