/* The one source of truth for what the conv-family kernels share: window clipping and the
 * requantization of an accumulator to an int8 output. The s8, LUT and sparse-LUT variants of
 * CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED all include this header, so a rounding build
 * switch changes every family member the same way.
 *
 * Rounding: convolutions and depthwise convolutions round twice in both oracles (TFLM and
 * LiteRT's reference kernels), so eq_conv_out_s8 always uses eq_requantize_double; only
 * FULLY_CONNECTED follows EDGEQ_RT_SINGLE_ROUNDING (eq_fc_out_s8). */
#ifndef EQ_CONV_COMMON_H
#define EQ_CONV_COMMON_H

#include "eq_kernels_conv.h"
#include "eq_dsp.h"
#include "eq_math.h"

#include <string.h>

/* First and one-past-last filter tap whose input coordinate start + dil * tap is in [0, size). */
static inline void eq_valid_taps(int32_t start, int32_t dil, int32_t size, int32_t taps,
                                 int32_t *t0, int32_t *t1)
{
    const int32_t lo = start < 0 ? (-start + dil - 1) / dil : 0;
    int32_t hi = size - start <= 0 ? 0 : (size - start + dil - 1) / dil;
    hi = hi < taps ? hi : taps;
    *t0 = lo;
    *t1 = hi > lo ? hi : lo;
}

/* Conv/depthwise double rounding of entry i: from the precomputed table when codegen emitted
 * one (then it emits no multiplier/shift arrays: 8 bytes per channel less flash). */
static inline int32_t eq_requantize_conv(const int32_t *multiplier, const int32_t *shift,
                                         const int32_t *fast, int32_t i, int32_t acc)
{
    if (fast != NULL) {
        return eq_requantize_double_pre(acc, fast[3 * i], fast[3 * i + 1], fast[3 * i + 2]);
    }
    return eq_requantize_double(acc, multiplier[i], shift[i]);
}

/* Conv/depthwise accumulator of output channel oc -> int8 output (double rounding). */
static inline int8_t eq_conv_out_s8(const eq_requant *rq, int32_t acc, int32_t oc,
                                    int32_t output_offset, int32_t act_min, int32_t act_max)
{
    const int32_t q = rq->per_channel ? oc : 0;
    acc = eq_requantize_conv(rq->multiplier, rq->shift, rq->fast, q, acc);
    return (int8_t)eq_clamp_i32(acc + output_offset, act_min, act_max);
}

/* The same requantization with its parameters copied out of the layer's struct once per call:
 * kernels that store outputs through int8 pointers (which may alias anything) would otherwise
 * reload them for every output. step is 1 per channel, 0 per tensor. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    const int32_t *fast; /* eq_requant.fast, or NULL */
    int32_t step;
    int32_t offset;
    int32_t act_min, act_max;
    uint32_t act_min4, act_max4; /* the bounds in four int8 lanes (DSP stores) */
    int32_t act4_full;           /* 1: the bounds are int8's own (the DSP stores skip them) */
} eq_out_q;

static inline eq_out_q eq_out_q_make(const eq_requant *rq, int32_t output_offset, int32_t act_min,
                                     int32_t act_max)
{
    const eq_out_q q = {rq->multiplier,
                        rq->shift,
                        rq->fast,
                        rq->per_channel ? 1 : 0,
                        output_offset,
                        act_min,
                        act_max,
                        (uint32_t)(uint8_t)act_min * UINT32_C(0x01010101),
                        (uint32_t)(uint8_t)act_max * UINT32_C(0x01010101),
                        act_min <= -128 && act_max >= 127};
    return q;
}

/* Conv/depthwise (double rounding) output of channel oc, clamped, as an int32. */
static inline int32_t eq_out_q_conv(const eq_out_q *q, int32_t acc, int32_t oc)
{
    acc = eq_requantize_conv(q->multiplier, q->shift, q->fast, oc * q->step, acc);
    return eq_clamp_i32(acc + q->offset, q->act_min, q->act_max);
}

/* Four int8 outputs with one store (byte order = memory order on a little-endian core;
 * memcpy keeps it portable and lets cores without unaligned access use byte stores). */
static inline void eq_store4_s8(int8_t *out, int32_t v0, int32_t v1, int32_t v2, int32_t v3)
{
    const uint8_t b[4] = {(uint8_t)v0, (uint8_t)v1, (uint8_t)v2, (uint8_t)v3};
    memcpy(out, b, 4);
}

#if EQ_DSP
/* Four requantized values + output offset, clamped to [act_min, act_max], one store: SSAT to
 * int8 per value, then the activation bounds on the four packed bytes at once (SSUB8/SEL) when
 * they are narrower than int8 (clamping to int8 first changes nothing: the bounds lie inside). */
EQ_SPECIALIZE void eq_store4_clamped(int8_t *out, const eq_out_q *q, int32_t a0, int32_t a1,
                                     int32_t a2, int32_t a3)
{
    uint32_t v = eq_pack4_s8(__ssat(a0 + q->offset, 8), __ssat(a1 + q->offset, 8),
                             __ssat(a2 + q->offset, 8), __ssat(a3 + q->offset, 8));
    if (!EQ_LIKELY(q->act4_full)) {
        v = eq_max_s8x4(v, q->act_min4);
        v = eq_min_s8x4(v, q->act_max4);
    }
    memcpy(out, &v, 4);
}
#endif

/* Four consecutive channels oc .. oc+3 (double rounding), stored with one write. Always in
 * line: an out-of-line call per four outputs (stacked arguments, nine saved registers) cost as
 * much as the requantization itself. */
EQ_SPECIALIZE void eq_out_q_conv4(const eq_out_q *q, int8_t *out, int32_t oc, int32_t a0,
                                  int32_t a1, int32_t a2, int32_t a3)
{
    if (q->fast != NULL) {
        /* per channel: twelve consecutive words (LDM/LDRD); per tensor: entry 0 four times */
        if (q->step != 0) {
            const int32_t *f = q->fast + 3 * oc;
            a0 = eq_requantize_double_pre(a0, f[0], f[1], f[2]);
            a1 = eq_requantize_double_pre(a1, f[3], f[4], f[5]);
            a2 = eq_requantize_double_pre(a2, f[6], f[7], f[8]);
            a3 = eq_requantize_double_pre(a3, f[9], f[10], f[11]);
        } else {
            const int32_t *f = q->fast;
            a0 = eq_requantize_double_pre(a0, f[0], f[1], f[2]);
            a1 = eq_requantize_double_pre(a1, f[0], f[1], f[2]);
            a2 = eq_requantize_double_pre(a2, f[0], f[1], f[2]);
            a3 = eq_requantize_double_pre(a3, f[0], f[1], f[2]);
        }
    } else {
        const int32_t i = oc * q->step;
        const int32_t s = q->step;
        a0 = eq_requantize_double(a0, q->multiplier[i], q->shift[i]);
        a1 = eq_requantize_double(a1, q->multiplier[i + s], q->shift[i + s]);
        a2 = eq_requantize_double(a2, q->multiplier[i + 2 * s], q->shift[i + 2 * s]);
        a3 = eq_requantize_double(a3, q->multiplier[i + 3 * s], q->shift[i + 3 * s]);
    }
#if EQ_DSP
    eq_store4_clamped(out + oc, q, a0, a1, a2, a3);
#else
    eq_store4_s8(out + oc, eq_clamp_i32(a0 + q->offset, q->act_min, q->act_max),
                 eq_clamp_i32(a1 + q->offset, q->act_min, q->act_max),
                 eq_clamp_i32(a2 + q->offset, q->act_min, q->act_max),
                 eq_clamp_i32(a3 + q->offset, q->act_min, q->act_max));
#endif
}

/* eq_out_q_conv4 for the pixel loops beside the register tiles (window borders, generic
 * shapes): in line in a speed build, one out-of-line copy per file in a size build
 * (EDGEQ_RT_SIZE), where in line it would be repeated at every such call site. */
EQ_SPECIALIZE_LARGE void eq_out_q_conv4_cold(const eq_out_q *q, int8_t *out, int32_t oc, int32_t a0,
                                             int32_t a1, int32_t a2, int32_t a3)
{
    eq_out_q_conv4(q, out, oc, a0, a1, a2, a3);
}

/* FC (the build's rounding) output of channel oc, clamped, as an int32. */
static inline int32_t eq_out_q_fc(const eq_out_q *q, int32_t acc, int32_t oc)
{
    const int32_t i = oc * q->step;
    acc = eq_requantize(acc, q->multiplier[i], q->shift[i]);
    return eq_clamp_i32(acc + q->offset, q->act_min, q->act_max);
}

/* Fully-connected accumulator of output channel oc -> int8 output (the build's rounding). */
static inline int8_t eq_fc_out_s8(const eq_requant *rq, int32_t acc, int32_t oc,
                                  int32_t output_offset, int32_t act_min, int32_t act_max)
{
    const int32_t q = rq->per_channel ? oc : 0;
    acc = eq_requantize(acc, rq->multiplier[q], rq->shift[q]);
    return (int8_t)eq_clamp_i32(acc + output_offset, act_min, act_max);
}

/* The register tile of the int8 conv and FC kernels: four output channels' accumulators over
 * `seg` contiguous input bytes (seg % 4 == 0; a conv window row, an FC input) read against the
 * packed filter (edgeq.codegen.weight_packing: 16 bytes per step, channel-major
 * words). Returns the packed pointer past the row. */
EQ_SPECIALIZE const int8_t *eq_dot4_packed_body(const int8_t *x, int32_t seg, const int8_t *wp,
                                                int32_t off, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *const x_end = x + seg;
#if EQ_DSP
    /* x + off lies in [-255, 255]: exact in an int16 lane */
    const int32_t off2 = (int32_t)(((uint32_t)(uint16_t)off << 16) | (uint16_t)off);
    while (x != x_end) {
        const uint32_t xv = eq_load4(x);
        int32_t xl = eq_lo16(xv);
        int32_t xh = eq_hi16(xv);
        if (!EQ_LIKELY(off == 0)) {
            xl = eq_sadd16(xl, off2);
            xh = eq_sadd16(xh, off2);
        }
        const uint32_t w0 = eq_load4(wp), w1 = eq_load4(wp + 4);
        const uint32_t w2 = eq_load4(wp + 8), w3 = eq_load4(wp + 12);
        a0 = eq_smlad(eq_lo16(w0), xl, eq_smlad(eq_hi16(w0), xh, a0));
        a1 = eq_smlad(eq_lo16(w1), xl, eq_smlad(eq_hi16(w1), xh, a1));
        a2 = eq_smlad(eq_lo16(w2), xl, eq_smlad(eq_hi16(w2), xh, a2));
        a3 = eq_smlad(eq_lo16(w3), xl, eq_smlad(eq_hi16(w3), xh, a3));
        x += 4;
        wp += 16;
    }
#else
    while (x != x_end) {
        const int32_t x0 = (int32_t)x[0] + off, x1 = (int32_t)x[1] + off;
        const int32_t x2 = (int32_t)x[2] + off, x3 = (int32_t)x[3] + off;
        a0 += wp[0] * x0 + wp[1] * x1 + wp[2] * x2 + wp[3] * x3;
        a1 += wp[4] * x0 + wp[5] * x1 + wp[6] * x2 + wp[7] * x3;
        a2 += wp[8] * x0 + wp[9] * x1 + wp[10] * x2 + wp[11] * x3;
        a3 += wp[12] * x0 + wp[13] * x1 + wp[14] * x2 + wp[15] * x3;
        x += 4;
        wp += 16;
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    return wp;
}

/* A helper kept out of line (one copy per file that calls it; no warning where unused). */
#if defined(__GNUC__)
#define EQ_OUTLINE static __attribute__((noinline, unused))
#else
#define EQ_OUTLINE static inline
#endif

/* eq_dot4_packed_body out of line, specialized for the offset-free (whole window) case (not in
 * a size build): the loop gets every register, the caller's pixel loops keep theirs (inlined,
 * both spilled). */
EQ_OUTLINE const int8_t *eq_dot4_packed(const int8_t *x, int32_t seg, const int8_t *wp, int32_t off,
                                        int32_t acc[4])
{
    if (!EQ_SIZE && off == 0) {
        return eq_dot4_packed_body(x, seg, wp, 0, acc);
    }
    return eq_dot4_packed_body(x, seg, wp, off, acc);
}

#endif /* EQ_CONV_COMMON_H */
