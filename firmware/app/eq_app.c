/* Benchmark/validation application: the protocol commands around the generated model.
 *
 * Inputs are staged in a private buffer and copied into the arena before every invoke, because
 * the memory planner may reuse the input's arena bytes during inference (warm-up + N runs must
 * all see the same input). Only edgeq_model_invoke() is inside the timed window.
 */
#include "eq_app.h"

#include <string.h>

#include "eq_hal.h"
#include "eq_marker.h"
#include "model.h"

#ifndef EQ_APP_STAGING_BYTES
#define EQ_APP_STAGING_BYTES EDGEQ_MODEL_ARENA_BYTES
#endif

#if EDGEQ_MODEL_NUM_LAYERS > 0
#define EQ_APP_LAYER_SLOTS EDGEQ_MODEL_NUM_LAYERS
#else
#define EQ_APP_LAYER_SLOTS 1
#endif

typedef struct {
    uint8_t scratch[EQP_MAX_RAW]; /* replies: payload written at EQP_HEADER_BYTES, framed here */
    uint8_t staging[EQ_APP_STAGING_BYTES];
    uint32_t input_offset[EDGEQ_MODEL_NUM_INPUTS];
    uint32_t run_counts[EQ_APP_MAX_RUNS];
    uint16_t n_runs;
    uint32_t layer_counts[EQ_APP_LAYER_SLOTS];
    uint32_t layer_t0;
} eq_app_state;

static eq_app_state g_app;
/* A reply's payload is written straight into its frame (eqp_build's memmove is then a no-op). */
#define REPLY_PAYLOAD (g_app.scratch + EQP_HEADER_BYTES)

static void put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; ++i) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get_u16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void eq_app_init(void)
{
    uint32_t offset = 0;
    for (int32_t i = 0; i < EDGEQ_MODEL_NUM_INPUTS; ++i) {
        g_app.input_offset[i] = offset;
        offset += (uint32_t)edgeq_model_input_info[i].bytes;
    }
    g_app.n_runs = 0;
}

#ifdef EDGEQ_PROFILE_LAYERS
void edgeq_layer_hook(int32_t layer, int32_t end)
{
    if (layer < 0 || layer >= EQ_APP_LAYER_SLOTS) {
        return;
    }
    uint32_t now = eq_counter_now();
    if (end) {
        g_app.layer_counts[layer] += now - g_app.layer_t0;
    } else {
        g_app.layer_t0 = now;
    }
}
#endif

static size_t reply(uint8_t code, uint8_t seq, size_t n, uint8_t *out, size_t cap)
{
    return eqp_build(code, seq, REPLY_PAYLOAD, n, g_app.scratch, sizeof g_app.scratch, out, cap);
}

static size_t error_reply(uint8_t err, uint8_t cmd, uint8_t seq, uint8_t *out, size_t cap)
{
    uint8_t body[2] = {err, cmd};
    return eqp_build(EQP_ERROR, seq, body, sizeof body, g_app.scratch, sizeof g_app.scratch, out,
                     cap);
}

static size_t put_io(uint8_t *p, size_t room, const eq_io_info *info)
{
    size_t need = 2u + 4u * (size_t)info->rank + 12u;
    if (info->rank < 0 || info->rank > 6 || need > room) {
        return 0;
    }
    p[0] = (uint8_t)info->dtype;
    p[1] = (uint8_t)info->rank;
    size_t k = 2;
    for (int32_t d = 0; d < info->rank; ++d, k += 4) {
        put_u32(p + k, (uint32_t)info->dims[d]);
    }
    put_u32(p + k, (uint32_t)info->bytes);
    uint32_t scale_bits;
    memcpy(&scale_bits, &info->scale, sizeof scale_bits);
    put_u32(p + k + 4, scale_bits);
    put_u32(p + k + 8, (uint32_t)info->zero_point);
    return need;
}

static size_t put_str(uint8_t *p, size_t room, const char *s)
{
    size_t n = strlen(s);
    if (n > 32u) {
        n = 32u;
    }
    if (n + 1u > room) {
        return 0;
    }
    p[0] = (uint8_t)n;
    memcpy(p + 1, s, n);
    return n + 1u;
}

static size_t cmd_hello(uint8_t seq, uint8_t *out, size_t cap)
{
    uint8_t *p = REPLY_PAYLOAD;
    p[0] = (uint8_t)EQP_VERSION;
    p[1] = (uint8_t)EQ_FW_VERSION_MAJOR;
    p[2] = (uint8_t)EQ_FW_VERSION_MINOR;
    p[3] = (uint8_t)eq_counter_kind();
    put_u32(p + 4, eq_clock_hz()); /* the clock actually running (reset clock if setup failed) */
    put_u32(p + 8, (uint32_t)EDGEQ_MODEL_ARENA_BYTES);
    put_u16(p + 12, (uint32_t)EDGEQ_MODEL_NUM_LAYERS);
#ifdef EDGEQ_PROFILE_LAYERS
    p[14] = 1;
#else
    p[14] = 0;
#endif
    p[15] = (uint8_t)EDGEQ_MODEL_NUM_INPUTS;
    p[16] = (uint8_t)EDGEQ_MODEL_NUM_OUTPUTS;
    put_u16(p + 17, EQP_MAX_PAYLOAD);
    put_u16(p + 19, EQ_APP_MAX_RUNS);
    put_u32(p + 21, (uint32_t)EQ_APP_STAGING_BYTES);
    memset(p + 25, 0, 16);
    const char *hash = EDGEQ_MODEL_HASH;
    for (size_t i = 0; i < 16u && hash[i] != '\0'; ++i) {
        p[25 + i] = (uint8_t)hash[i];
    }
    size_t k = 41;
    size_t w = put_str(p + k, EQP_MAX_PAYLOAD - k, EDGEQ_MODEL_NAME);
    k += w;
    size_t w2 = put_str(p + k, EQP_MAX_PAYLOAD - k, EQ_BOARD_NAME);
    k += w2;
    if (w == 0u || w2 == 0u) {
        return error_reply(EQP_E_ARG, EQP_CMD_HELLO, seq, out, cap);
    }
    for (int32_t i = 0; i < EDGEQ_MODEL_NUM_INPUTS + EDGEQ_MODEL_NUM_OUTPUTS; ++i) {
        const eq_io_info *info = i < EDGEQ_MODEL_NUM_INPUTS
                                     ? &edgeq_model_input_info[i]
                                     : &edgeq_model_output_info[i - EDGEQ_MODEL_NUM_INPUTS];
        size_t n = put_io(p + k, EQP_MAX_PAYLOAD - k, info);
        if (n == 0u) {
            return error_reply(EQP_E_ARG, EQP_CMD_HELLO, seq, out, cap);
        }
        k += n;
    }
    return reply(EQP_CMD_HELLO | EQP_REPLY, seq, k, out, cap);
}

static size_t cmd_load_input(const eqp_frame *f, uint8_t *out, size_t cap)
{
    if (f->payload_len < 5u) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    uint32_t idx = f->payload[0];
    uint32_t offset = get_u32(f->payload + 1);
    uint32_t count = (uint32_t)f->payload_len - 5u;
    if (idx >= (uint32_t)EDGEQ_MODEL_NUM_INPUTS) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    uint32_t bytes = (uint32_t)edgeq_model_input_info[idx].bytes;
    uint32_t base = g_app.input_offset[idx];
    if (offset > bytes || count > bytes - offset || base + bytes > EQ_APP_STAGING_BYTES) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    memcpy(g_app.staging + base + offset, f->payload + 5, count);
    put_u32(REPLY_PAYLOAD, offset);
    put_u16(REPLY_PAYLOAD + 4, count);
    return reply(f->code | EQP_REPLY, f->seq, 6, out, cap);
}

static void restore_inputs(void)
{
    for (int32_t i = 0; i < EDGEQ_MODEL_NUM_INPUTS; ++i) {
        memcpy(edgeq_model_input(i), g_app.staging + g_app.input_offset[i],
               (size_t)edgeq_model_input_info[i].bytes);
    }
}

static size_t cmd_invoke(const eqp_frame *f, uint8_t *out, size_t cap)
{
    if (f->payload_len != 4u) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    uint32_t warmup = get_u16(f->payload);
    uint32_t runs = get_u16(f->payload + 2);
    if (runs == 0u || runs > EQ_APP_MAX_RUNS) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    int32_t status = 0;
    for (uint32_t i = 0; i < warmup && status == 0; ++i) {
        restore_inputs();
        status = (int32_t)edgeq_model_invoke();
    }
    g_app.n_runs = 0;
    for (uint32_t i = 0; i < runs && status == 0; ++i) {
        restore_inputs();
        memset(g_app.layer_counts, 0, sizeof g_app.layer_counts);
        EQ_MARKER_HIGH(); /* the marker pin brackets exactly what the counter measures */
        eq_counter_start();
        status = (int32_t)edgeq_model_invoke();
        g_app.run_counts[i] = eq_counter_now();
        EQ_MARKER_LOW();
        g_app.n_runs = (uint16_t)(i + 1u);
    }
    REPLY_PAYLOAD[0] = (uint8_t)status;
    put_u16(REPLY_PAYLOAD + 1, g_app.n_runs);
    return reply(f->code | EQP_REPLY, f->seq, 3, out, cap);
}

static size_t cmd_read_output(const eqp_frame *f, uint8_t *out, size_t cap)
{
    if (f->payload_len != 7u) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    uint32_t idx = f->payload[0];
    uint32_t offset = get_u32(f->payload + 1);
    uint32_t count = get_u16(f->payload + 5);
    if (idx >= (uint32_t)EDGEQ_MODEL_NUM_OUTPUTS || count > EQP_MAX_PAYLOAD) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    uint32_t bytes = (uint32_t)edgeq_model_output_info[idx].bytes;
    if (offset > bytes || count > bytes - offset) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    memcpy(REPLY_PAYLOAD, (const uint8_t *)edgeq_model_output((int32_t)idx) + offset, count);
    return reply(f->code | EQP_REPLY, f->seq, count, out, cap);
}

static size_t cmd_read_timing(const eqp_frame *f, uint8_t *out, size_t cap)
{
    if (f->payload_len != 5u) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    uint32_t kind = f->payload[0];
    uint32_t first = get_u16(f->payload + 1);
    uint32_t count = get_u16(f->payload + 3);
    const uint32_t *values;
    uint32_t total;
    if (kind == 0u) {
        values = g_app.run_counts;
        total = g_app.n_runs;
    } else if (kind == 1u) {
        values = g_app.layer_counts;
        total = (uint32_t)EDGEQ_MODEL_NUM_LAYERS;
    } else {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    if (first > total || count > total - first || count > EQP_MAX_PAYLOAD / 4u) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    for (uint32_t i = 0; i < count; ++i) {
        put_u32(REPLY_PAYLOAD + 4u * i, values[first + i]);
    }
    return reply(f->code | EQP_REPLY, f->seq, 4u * count, out, cap);
}

static size_t cmd_layer_info(const eqp_frame *f, uint8_t *out, size_t cap)
{
    if (f->payload_len != 2u) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
#if EDGEQ_MODEL_NUM_LAYERS > 0 /* a TFLite Micro firmware has no layer table */
    uint32_t layer = get_u16(f->payload);
    if (layer >= (uint32_t)EDGEQ_MODEL_NUM_LAYERS) {
        return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
    }
    put_u32(REPLY_PAYLOAD, edgeq_model_layer_macs[layer]);
    const char *name = edgeq_model_layer_names[layer];
    size_t n = strlen(name);
    if (n > EQP_MAX_PAYLOAD - 4u) {
        n = EQP_MAX_PAYLOAD - 4u;
    }
    memcpy(REPLY_PAYLOAD + 4, name, n);
    return reply(f->code | EQP_REPLY, f->seq, 4u + n, out, cap);
#else
    return error_reply(EQP_E_ARG, f->code, f->seq, out, cap);
#endif
}

size_t eq_app_handle_rx(const eqp_rx *rx, int event, uint8_t *out, size_t cap)
{
    if (event == EQP_RX_OVERSIZE) {
        return error_reply(EQP_E_OVERSIZE, 0, 0, out, cap);
    }
    if (event == EQP_RX_BAD) {
        return error_reply(EQP_E_FRAMING, 0, 0, out, cap);
    }
    if (event != EQP_RX_FRAME) {
        return 0;
    }
    eqp_frame f;
    int err = eqp_parse_rx(rx, &f);
    if (err != 0) {
        return error_reply((uint8_t)err, f.code, f.seq, out, cap);
    }
    switch (f.code) {
    case EQP_CMD_HELLO:
        return cmd_hello(f.seq, out, cap);
    case EQP_CMD_LOAD_INPUT:
        return cmd_load_input(&f, out, cap);
    case EQP_CMD_INVOKE:
        return cmd_invoke(&f, out, cap);
    case EQP_CMD_READ_OUTPUT:
        return cmd_read_output(&f, out, cap);
    case EQP_CMD_READ_TIMING:
        return cmd_read_timing(&f, out, cap);
    case EQP_CMD_LAYER_INFO:
        return cmd_layer_info(&f, out, cap);
    default:
        return error_reply(EQP_E_UNKNOWN_CMD, f.code, f.seq, out, cap);
    }
}
