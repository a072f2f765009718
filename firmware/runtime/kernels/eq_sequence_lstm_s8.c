/* UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations and weights, int16 cell state and gates: the
 * arithmetic of TFLite Micro's integer LSTM (double-rounding requantization, saturating int16
 * sums, the 16-bit sigmoid/tanh by table interpolation), so outputs are bit-exact with it. */
#include "eq_kernels_recurrent.h"
#include "eq_math.h"

static int16_t sat16(int32_t x)
{
    return (int16_t)(x > INT16_MAX ? INT16_MAX : (x < INT16_MIN ? INT16_MIN : x));
}

/* Sigmoid of a Q3.12 value into Q0.15 (input scaled by 3/4 to index the table, 9 fraction
 * bits interpolated). */
static int16_t sigmoid_q12(const uint16_t *table, int16_t v)
{
    const int32_t x = (int32_t)v * 3;
    const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
    const uint32_t idx = ax >> 9;
    uint32_t r;
    if (idx >= 255U) {
        r = UINT32_C(0x7FFF) << 10;
    } else {
        const uint32_t lo = table[idx];
        const uint32_t hi = table[idx + 1U];
        r = (lo << 9) + (ax & 0x1FFU) * (hi - lo);
    }
    r = x >= 0 ? r + (1U << 9) : (1U << 25) - r + (1U << 9) - 1U;
    return (int16_t)(r >> 10);
}

/* tanh of a value on the 2^-(15 - 3 - left_shift) grid (multiplier 3, optional right shift)
 * into Q0.15. */
static int16_t tanh_q(const uint16_t *table, int16_t v, int32_t multiplier, int32_t right_shift)
{
    const int32_t round = right_shift > 0 ? (INT32_C(1) << (right_shift - 1)) : 0;
    const int32_t x = ((int32_t)v * multiplier + round) >> right_shift;
    const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
    const uint32_t idx = ax >> 8;
    int32_t r;
    if (idx >= 255U) {
        r = INT32_C(0xFFFF) << 8;
    } else {
        const uint32_t lo = table[idx];
        const uint32_t hi = table[idx + 1U];
        r = (int32_t)((lo << 8) + (ax & 0xFFU) * (hi - lo));
    }
    r = x >= 0 ? r - (INT32_C(1) << 23) + (INT32_C(1) << 7)
               : -r + (INT32_C(1) << 23) + (INT32_C(1) << 7) - 1;
    return (int16_t)(r >> 8);
}

/* out[u] = sat16(requant(bias[u] + sum_d w[u][d] * (x[d] - zp))), for one gate. */
static void gate_product(const int8_t *x, int32_t zp, int32_t depth, const int8_t *w,
                         const int32_t *bias, int32_t multiplier, int32_t shift, int32_t units,
                         int16_t *out)
{
    for (int32_t u = 0; u < units; ++u) {
        const int8_t *row = w + (size_t)u * (size_t)depth;
        int32_t acc = bias != 0 ? bias[u] : 0;
        for (int32_t d = 0; d < depth; ++d) {
            acc += (int32_t)row[d] * ((int32_t)x[d] - zp);
        }
        out[u] = sat16(eq_requantize_double(acc, multiplier, shift));
    }
}

/* One gate: input product + recurrent product (saturating), then its activation. */
static void gate(const eq_sequence_lstm_params *p, int32_t g, const int8_t *x, const int8_t *h,
                 int32_t activation_tanh, int16_t *out, int16_t *tmp)
{
    const int32_t U = p->units;
    const int32_t F = p->input_size;
    gate_product(x, p->input_zero_point, F, p->input_weights + (size_t)g * (size_t)U * (size_t)F,
                 p->bias + (size_t)g * (size_t)U, p->input_multiplier[g], p->input_shift[g], U,
                 out);
    gate_product(h, p->hidden_zero_point, U,
                 p->recurrent_weights + (size_t)g * (size_t)U * (size_t)U, 0,
                 p->recurrent_multiplier[g], p->recurrent_shift[g], U, tmp);
    for (int32_t u = 0; u < U; ++u) {
        const int16_t s = sat16((int32_t)out[u] + (int32_t)tmp[u]);
        out[u] =
            activation_tanh ? tanh_q(p->sigmoid_table, s, 3, 0) : sigmoid_q12(p->sigmoid_table, s);
    }
}

static int32_t mul_q(int16_t a, int16_t b, int32_t multiplier, int32_t shift)
{
    return eq_requantize_double((int32_t)a * (int32_t)b, multiplier, shift);
}

eq_status eq_sequence_lstm_s8(const eq_sequence_lstm_params *p, const int8_t *input, int8_t *output,
                              void *scratch)
{
    if (p == 0 || input == 0 || output == 0 || scratch == 0 || p->sigmoid_table == 0 ||
        p->units <= 0 || p->input_size <= 0 || p->time_steps <= 0) {
        return EQ_ERR_ARG;
    }
    const int32_t U = p->units;
    int16_t *cell = (int16_t *)scratch;
    int16_t *fg = cell + U;
    int16_t *ig = fg + U;
    int16_t *cg = ig + U;
    int16_t *tmp = cg + U;
    int8_t *h = (int8_t *)(tmp + U);
    /* tanh of the cell state: its grid 2^cell_pow onto the table's 2^-12 (x3/4 folded in) */
    int32_t tanh_shift = 15 + p->cell_scale_power - 3;
    int32_t tanh_mult = 3;
    if (tanh_shift >= 0) {
        tanh_mult = 3 << tanh_shift;
        tanh_shift = 0;
    } else {
        tanh_shift = -tanh_shift;
    }
    for (int32_t u = 0; u < U; ++u) {
        cell[u] = 0;
        h[u] = (int8_t)p->hidden_zero_point;
    }
    for (int32_t t = 0; t < p->time_steps; ++t) {
        const int8_t *x = input + (size_t)t * (size_t)p->input_size;
        gate(p, 1, x, h, 0, fg, tmp);
        gate(p, 0, x, h, 0, ig, tmp);
        gate(p, 2, x, h, p->cell_gate_tanh, cg, tmp);
        for (int32_t u = 0; u < U; ++u) {
            const int16_t kept =
                sat16(mul_q(fg[u], cell[u], p->forget_multiplier, p->forget_shift));
            const int16_t added =
                sat16(mul_q(ig[u], cg[u], p->input_multiplier_mul, p->input_shift_mul));
            int32_t c = sat16((int32_t)kept + (int32_t)added);
            if (p->cell_clip > 0) {
                c = c > p->cell_clip ? p->cell_clip : (c < -p->cell_clip ? -p->cell_clip : c);
            }
            cell[u] = (int16_t)c;
        }
        gate(p, 3, x, h, 0, ig, tmp); /* output gate */
        int8_t *row = output + (size_t)t * (size_t)U;
        for (int32_t u = 0; u < U; ++u) {
            const int16_t tc = tanh_q(p->sigmoid_table, cell[u], tanh_mult, tanh_shift);
            const int32_t v = mul_q(tc, ig[u], p->output_multiplier_mul, p->output_shift_mul) +
                              p->hidden_zero_point;
            row[u] = (int8_t)eq_clamp_i32(v, -128, 127);
        }
        for (int32_t u = 0; u < U; ++u) {
            h[u] = row[u];
        }
    }
    return EQ_OK;
}
