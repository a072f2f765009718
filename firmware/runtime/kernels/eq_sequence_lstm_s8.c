/* UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations and weights, int16 cell state and gates: the
 * arithmetic of TFLite Micro's integer LSTM (double-rounding requantization, saturating int16
 * sums, the 16-bit sigmoid/tanh by table interpolation), so outputs are bit-exact with it. */
#include "eq_kernels_recurrent.h"
#include "eq_math.h"

/* sigmoid(i / 24) in unsigned 0.16 for i = 0..255: the table TFLite's 16-bit LOGISTIC and
 * TANH interpolate (tanh(x) = 2 sigmoid(2x) - 1); the same values give the same results. */
static const uint16_t eq_sigmoid_table[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
};

static int16_t sat16(int32_t x)
{
    return (int16_t)(x > INT16_MAX ? INT16_MAX : (x < INT16_MIN ? INT16_MIN : x));
}

/* Sigmoid of a Q3.12 value into Q0.15 (input scaled by 3/4 to index the table, 9 fraction
 * bits interpolated). */
static int16_t sigmoid_q12(int16_t v)
{
    const int32_t x = (int32_t)v * 3;
    const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
    const uint32_t idx = ax >> 9;
    uint32_t r;
    if (idx >= 255U) {
        r = UINT32_C(0x7FFF) << 10;
    } else {
        const uint32_t lo = eq_sigmoid_table[idx];
        const uint32_t hi = eq_sigmoid_table[idx + 1U];
        r = (lo << 9) + (ax & 0x1FFU) * (hi - lo);
    }
    r = x >= 0 ? r + (1U << 9) : (1U << 25) - r + (1U << 9) - 1U;
    return (int16_t)(r >> 10);
}

/* tanh of a value on the 2^-(15 - 3 - left_shift) grid (multiplier 3, optional right shift)
 * into Q0.15. */
static int16_t tanh_q(int16_t v, int32_t multiplier, int32_t right_shift)
{
    const int32_t round = right_shift > 0 ? (INT32_C(1) << (right_shift - 1)) : 0;
    const int32_t x = ((int32_t)v * multiplier + round) >> right_shift;
    const uint32_t ax = (uint32_t)(x < 0 ? -x : x);
    const uint32_t idx = ax >> 8;
    int32_t r;
    if (idx >= 255U) {
        r = INT32_C(0xFFFF) << 8;
    } else {
        const uint32_t lo = eq_sigmoid_table[idx];
        const uint32_t hi = eq_sigmoid_table[idx + 1U];
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
        out[u] = activation_tanh ? tanh_q(s, 3, 0) : sigmoid_q12(s);
    }
}

static int32_t mul_q(int16_t a, int16_t b, int32_t multiplier, int32_t shift)
{
    return eq_requantize_double((int32_t)a * (int32_t)b, multiplier, shift);
}

eq_status eq_sequence_lstm_s8(const eq_sequence_lstm_params *p, const int8_t *input, int8_t *output,
                              void *scratch)
{
    if (p == 0 || input == 0 || output == 0 || scratch == 0 || p->units <= 0 ||
        p->input_size <= 0 || p->time_steps <= 0) {
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
            const int16_t tc = tanh_q(cell[u], tanh_mult, tanh_shift);
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
