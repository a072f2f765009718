/* edgeq-rt recurrent kernels: UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations and weights with a
 * 16-bit cell state, as TFLite Micro's integer LSTM computes it.
 *
 * Per time step and gate g (forget, input, cell, output), two fully connected products with
 * int16 outputs on the 2^-12 grid (Q3.12), summed with saturation, then the gate activation
 * (sigmoid; the cell gate tanh) into 2^-15 (Q0.15). The cell state (int16, scale 2^-cell_pow) is
 * f * c + i * g, clipped; the hidden state is o * tanh(c), requantized to int8 and copied to the
 * output row. Every invoke starts from the zero state (hidden = its zero point, cell = 0): what
 * TFLite Micro computes after Reset(), which edgeq's oracle calls between samples.
 *
 * Call: eq_sequence_lstm_s8(p, input [T][F], output [T][U], scratch of
 * EQ_SEQUENCE_LSTM_S8_SCRATCH_BYTES(U) bytes, 2-byte aligned). */
#ifndef EQ_KERNELS_RECURRENT_H
#define EQ_KERNELS_RECURRENT_H

#include "edgeq_rt.h"

/* Gate order in every per-gate array: 0 input, 1 forget, 2 cell, 3 output (TFLite's). */
#define EQ_LSTM_GATES 4

typedef struct {
    int32_t time_steps; /* T */
    int32_t input_size; /* F */
    int32_t units;      /* U */
    int32_t input_zero_point;
    int32_t hidden_zero_point;       /* hidden state = output quantization */
    const int8_t *input_weights;     /* [4][U][F] */
    const int8_t *recurrent_weights; /* [4][U][U] */
    const int32_t *bias;             /* [4][U] (input product) */
    const int32_t *input_multiplier; /* [4]: s_in * s_w / 2^-12 */
    const int32_t *input_shift;
    const int32_t *recurrent_multiplier; /* [4]: s_h * s_r / 2^-12 */
    const int32_t *recurrent_shift;
    int32_t cell_gate_tanh; /* 1: tanh on the cell gate (Keras default), 0: sigmoid */
    int32_t forget_multiplier, forget_shift;         /* f * c -> c: 2^-15 */
    int32_t input_multiplier_mul, input_shift_mul;   /* i * g -> c: 2^-30 / s_c */
    int32_t output_multiplier_mul, output_shift_mul; /* o * tanh(c) -> h: 2^-30 / s_h */
    int32_t cell_clip;                               /* quantized; 0 = no clipping */
    int32_t cell_scale_power;                        /* s_c = 2^cell_scale_power (negative) */
    const uint16_t *sigmoid_table; /* [256]: sigmoid(i / 24) in 0.16, TFLite's int16 table */
} eq_sequence_lstm_params;

/* Scratch: cell state and four gate buffers (int16, U each), then the hidden state (int8, U).
 * Mirrored by edgeq.codegen.ops_recurrent.lstm_scratch_bytes (a test checks they agree). */
#define EQ_SEQUENCE_LSTM_S8_SCRATCH_BYTES(units) (5 * 2 * (units) + (units))

eq_status eq_sequence_lstm_s8(const eq_sequence_lstm_params *p, const int8_t *input, int8_t *output,
                              void *scratch);

#endif /* EQ_KERNELS_RECURRENT_H */
