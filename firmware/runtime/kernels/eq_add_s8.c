/* ADD, int8_t activations: TFLM's quantized reference arithmetic with broadcasting.
 *
 * DSP path (no broadcast, enough elements to pay for it): each input's rescaling (offset, left
 * shift, requantization) depends on one int8 value only, so it is tabulated once per call for
 * all 256 values with the same eq_requantize_double the portable path calls per element (2 KB
 * of stack); per element there remain two table loads, the sum, one requantization to the
 * output and the clamp, four elements per word load and store. Same integers, same result. */
#include "eq_arith.h"
#include "eq_dsp.h"

#if EQ_DSP
#define ADD_TABLE_MIN_COUNT 512 /* below this, building the tables costs more than it saves */

static void add_table(int32_t *table, int32_t offset, int32_t left_shift, int32_t multiplier,
                      int32_t shift)
{
    for (int32_t v = -128; v < 128; ++v) {
        table[v + 128] =
            eq_requantize_double((v + offset) * (INT32_C(1) << left_shift), multiplier, shift);
    }
}

/* Output of one element from the two table entries (output shift <= -2: the one-SMLAL form). */
static inline int32_t add_out(int32_t raw, int32_t m, int32_t k_hi, int32_t rshift, int32_t off)
{
    return __ssat(eq_requantize_double_pre(raw, m, k_hi, rshift) + off, 8);
}

static EQ_NOINLINE void add_tables(const eq_add_params *p, const int8_t *in1, const int8_t *in2,
                                   int8_t *out)
{
    int32_t t1[256], t2[256];
    add_table(t1, p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift);
    add_table(t2, p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift);
    const int32_t *const c1 = t1 + 128; /* indexed by the signed input byte */
    const int32_t *const c2 = t2 + 128;
    const int32_t m = p->output_multiplier;
    const int32_t k_hi = INT32_C(1) << (-p->output_shift - 2);
    const int32_t rshift = -p->output_shift - 1;
    const int32_t off = p->output_offset;
    const int32_t full = p->act_min <= -128 && p->act_max >= 127;
    const uint32_t min4 = (uint32_t)(uint8_t)p->act_min * UINT32_C(0x01010101);
    const uint32_t max4 = (uint32_t)(uint8_t)p->act_max * UINT32_C(0x01010101);
    const int32_t n = p->shape.count;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t a = eq_load4(in1 + i);
        const uint32_t b = eq_load4(in2 + i);
        const int32_t r0 = add_out(c1[(int8_t)a] + c2[(int8_t)b], m, k_hi, rshift, off);
        const int32_t r1 =
            add_out(c1[(int8_t)(a >> 8)] + c2[(int8_t)(b >> 8)], m, k_hi, rshift, off);
        const int32_t r2 =
            add_out(c1[(int8_t)(a >> 16)] + c2[(int8_t)(b >> 16)], m, k_hi, rshift, off);
        const int32_t r3 =
            add_out(c1[(int8_t)(a >> 24)] + c2[(int8_t)(b >> 24)], m, k_hi, rshift, off);
        uint32_t v = eq_pack4_s8(r0, r1, r2, r3);
        if (!EQ_LIKELY(full)) {
            v = eq_min_s8x4(eq_max_s8x4(v, min4), max4);
        }
        memcpy(out + i, &v, 4); /* in place: this word of the inputs is already read */
    }
    for (; i < n; ++i) {
        const int32_t r = add_out(c1[in1[i]] + c2[in2[i]], m, k_hi, rshift, off);
        out[i] = (int8_t)eq_clamp_i32(r, p->act_min, p->act_max);
    }
}
#endif

eq_status eq_add_s8(const eq_add_params *p, const int8_t *input1, const int8_t *input2,
                    int8_t *output)
{
    if (p == 0 || input1 == 0 || input2 == 0 || output == 0) {
        return EQ_ERR_ARG;
    }
#if EQ_DSP
    if (!p->shape.broadcast && p->shape.count >= ADD_TABLE_MIN_COUNT && p->output_shift <= -2 &&
        p->left_shift >= 0 && p->left_shift <= 23) {
        add_tables(p, input1, input2, output);
        return EQ_OK;
    }
#endif
    EQ_BINARY_LOOP(p->shape, input1, input2, output, int8_t, eq_add_sub_elem(p, x1, x2, 0));
    return EQ_OK;
}
