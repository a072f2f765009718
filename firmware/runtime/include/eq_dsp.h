/* The few Arm DSP-extension (SIMD32) instructions the fast kernels use, behind one switch.
 *
 * EQ_DSP is 1 on cores with the DSP extension (Cortex-M4/M7/M33/M55: __ARM_FEATURE_DSP, with
 * the SIMD32 intrinsics of arm_acle.h) unless the build defines EDGEQ_RT_PORTABLE, which
 * forces the portable C path (how the tests run both paths on one core). Elsewhere (M0/M0+/M3,
 * the host) EQ_DSP is 0 and the kernels use their portable loops: those are the reference.
 *
 * Two int8 lanes in one register: eq_lo16(v) sign-extends bytes 0 and 2 of v into two int16
 * halves, eq_hi16(v) bytes 1 and 3. Applied to 4 inputs and 4 weights in their natural order,
 * eq_smlad(eq_lo16(w), eq_lo16(x), eq_smlad(eq_hi16(w), eq_hi16(x), acc)) adds the 4 products:
 * the same integer as four multiply-adds (SMLAD wraps like two's complement adds). */
#ifndef EQ_DSP_H
#define EQ_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && !defined(EDGEQ_RT_PORTABLE)
#define EQ_DSP 1
#include <arm_acle.h>

static inline int32_t eq_lo16(uint32_t v)
{
    return (int32_t)__sxtb16((int8x4_t)v);
}

static inline int32_t eq_hi16(uint32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

static inline int32_t eq_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

/* acc + bottom(a) * bottom(b), acc + top(a) * top(b): one int16 lane pair each */
static inline int32_t eq_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return __smlabb(a, b, acc);
}

static inline int32_t eq_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return __smlatt(a, b, acc);
}

static inline int32_t eq_sadd16(int32_t a, int32_t b)
{
    return __sadd16(a, b);
}

/* Four values already in int8 range (SSAT) packed into one word, byte i = value i: three BFIs
 * (the upper bits of v0 are overwritten, the others' masked by the insert). */
static inline uint32_t eq_pack4_s8(int32_t v0, int32_t v1, int32_t v2, int32_t v3)
{
    uint32_t r = (uint32_t)v0;
    __asm__("bfi %0, %1, #8, #8\n\tbfi %0, %2, #16, #8\n\tbfi %0, %3, #24, #8"
            : "+r"(r)
            : "r"(v1), "r"(v2), "r"(v3));
    return r;
}

/* acc + the sign-extended bytes 0 and 2 (eq_sxtab16) or 1 and 3 (eq_sxtab16_hi) of v, per
 * int16 lane (lanes wrap, as int16 adds). */
static inline uint32_t eq_sxtab16(uint32_t acc, uint32_t v)
{
    return (uint32_t)__sxtab16((int16x2_t)acc, (int8x4_t)v);
}

static inline uint32_t eq_sxtab16_hi(uint32_t acc, uint32_t v)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(v));
    return r;
}

/* Per int8 lane max(v, m) / min(v, m): SSUB8 sets a lane's GE flag when v - m >= 0 (exact, no
 * wrap), SEL picks by it. One asm statement, so nothing can come between the flag's writer and
 * its reader. */
static inline uint32_t eq_max_s8x4(uint32_t v, uint32_t m)
{
    uint32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(v), "r"(m) : "cc");
    return r;
}

static inline uint32_t eq_min_s8x4(uint32_t v, uint32_t m)
{
    uint32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r"(r) : "r"(v), "r"(m) : "cc");
    return r;
}
#else
#define EQ_DSP 0
#endif

/* EDGEQ_RT_SIZE (`edgeq build --optimize size`, compiled with -Os): a build for parts with
 * little flash. The DSP register tiles stay (with -Os they are what keeps the build fast);
 * what goes is duplication: a pixel loop specialized per call site (EQ_SPECIALIZE_LARGE: one
 * out-of-line copy instead), the requantization in line in every loop beside the tiles
 * (eq_out_q_conv4_cold), the unpacked 3x3 depthwise runs. Same integers, same bytes out. */
#if defined(EDGEQ_RT_SIZE)
#define EQ_SIZE 1
#else
#define EQ_SIZE 0
#endif

/* Hides how a pointer was computed from the optimizer, so that an unrolled tap sequence walks
 * one pointer instead of becoming one induction variable (and one spilled register) per tap. */
#if defined(__GNUC__)
#define EQ_OPAQUE(v) __asm__("" : "+r"(v))
#else
#define EQ_OPAQUE(v) ((void)0)
#endif

/* A loop nest kept out of line, so that its loops get the registers (not its caller's). */
#if defined(__GNUC__)
#define EQ_NOINLINE __attribute__((noinline))
#else
#define EQ_NOINLINE
#endif

/* Keeps the compiler from moving loads across it: an unrolled tile then loads each step's
 * operands just before it uses them instead of holding two steps' worth (and spilling). */
#if defined(__GNUC__)
#define EQ_BARRIER() __asm__ volatile("" ::: "memory")
#else
#define EQ_BARRIER() ((void)0)
#endif

/* Four bytes from any address (one LDR on cores with unaligned access). */
static inline uint32_t eq_load4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#endif /* EQ_DSP_H */
