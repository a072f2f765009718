/* Bounded random fuzz of the firmware frame receiver, COBS/CRC codec and command dispatcher,
 * compiled for the host with sanitizers by tests/test_protocol_fuzz.py.
 *
 * Each round feeds a random mutation of valid frames plus garbage through eqp_rx_push and
 * eq_app_handle_encoded exactly as main.c does, then checks that: every reply fits its buffer
 * and is itself a valid frame; and a clean HELLO afterwards still gets a HELLO reply (the
 * firmware keeps serving). Exit code 0 = all checks passed; prints counters for the test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eq_app.h"
#include "eq_hal.h"

void eq_uart_init(void) {}
void eq_uart_putc(uint8_t c) { (void)c; }
int eq_uart_getc(uint8_t *c) { (void)c; return 0; }
void eq_counter_init(void) {}
void eq_counter_start(void) {}
uint32_t eq_counter_now(void) { return 0; }
uint32_t eq_counter_kind(void) { return EQ_COUNTER_INSTRUCTIONS; }

static uint64_t g_state = 88172645463325252ull;
static uint32_t rnd(void) {
    g_state ^= g_state << 13;
    g_state ^= g_state >> 7;
    g_state ^= g_state << 17;
    return (uint32_t)g_state;
}

static eqp_rx g_rx;
static uint8_t g_out[EQP_MAX_ENCODED + 1];
static long g_replies, g_errors, g_frames;

static int check_reply(size_t n, int *code_out) {
    if (n > sizeof g_out) return 0;
    if (n == 0) return 1;
    if (g_out[n - 1] != 0) return 0;
    for (size_t i = 0; i + 1 < n; ++i) if (g_out[i] == 0) return 0;
    uint8_t raw[EQP_MAX_RAW];
    size_t r = eqp_cobs_decode(g_out, n - 1, raw, sizeof raw);
    if (r == (size_t)-1) return 0;
    eqp_frame f;
    if (eqp_parse(raw, r, &f) != 0) return 0;
    if (code_out) *code_out = f.code;
    g_replies++;
    if (f.code == EQP_ERROR) g_errors++;
    return 1;
}

static int feed(const uint8_t *bytes, size_t n, int *last_code) {
    for (size_t i = 0; i < n; ++i) {
        int ev = eqp_rx_push(&g_rx, bytes[i]);
        size_t out = 0;
        if (ev == EQP_RX_FRAME) {
            if (g_rx.len > sizeof g_rx.buf) return 0;
            out = eq_app_handle_encoded(g_rx.buf, g_rx.len, g_out, sizeof g_out);
            eqp_rx_reset(&g_rx);
            g_frames++;
        } else if (ev == EQP_RX_OVERSIZE) {
            out = eq_app_oversize_reply(g_out, sizeof g_out);
        }
        if (!check_reply(out, last_code)) return 0;
    }
    return 1;
}

static size_t make_frame(uint8_t code, uint8_t seq, const uint8_t *p, size_t n, uint8_t *out,
                         size_t cap) {
    uint8_t scratch[EQP_MAX_RAW];
    return eqp_build(code, seq, p, n, scratch, sizeof scratch, out, cap);
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 2000;
    if (argc > 2) g_state ^= (uint64_t)atoll(argv[2]) * 0x9E3779B97F4A7C15ull;
    eq_app_init();
    eqp_rx_reset(&g_rx);
    static uint8_t stream[4096];
    uint8_t frame[EQP_MAX_ENCODED + 1], payload[EQP_MAX_PAYLOAD];
    for (long r = 0; r < rounds; ++r) {
        size_t n = 0;
        int pieces = 1 + (int)(rnd() % 4);
        for (int k = 0; k < pieces; ++k) {
            size_t plen = rnd() % (EQP_MAX_PAYLOAD + 1);
            for (size_t i = 0; i < plen; ++i) payload[i] = (uint8_t)rnd();
            uint8_t code = (uint8_t)(1 + rnd() % 7);
            if (code == EQP_CMD_INVOKE && plen >= 4) { payload[2] = (uint8_t)(rnd() % 3); payload[3] = 0; plen = 4; payload[0] = 0; payload[1] = 0; }
            size_t fl = make_frame(code, (uint8_t)rnd(), payload, plen, frame, sizeof frame);
            if (fl == 0) return 2;
            switch (rnd() % 6) {
            case 0: /* bit flip */
                frame[rnd() % fl] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 1: /* truncate */
                fl = 1 + rnd() % fl;
                break;
            case 2: { /* pure garbage */
                fl = rnd() % sizeof frame;
                for (size_t i = 0; i < fl; ++i) frame[i] = (uint8_t)rnd();
                break;
            }
            case 3: { /* oversized: a long run without delimiter */
                size_t extra = EQP_MAX_ENCODED + rnd() % 600;
                for (size_t i = 0; i < extra && n < sizeof stream; ++i) stream[n++] = (uint8_t)(1 + rnd() % 255);
                break;
            }
            default: /* valid */
                break;
            }
            for (size_t i = 0; i < fl && n < sizeof stream; ++i) stream[n++] = frame[i];
        }
        if (!feed(stream, n, NULL)) { printf("FAIL round %ld: bad reply\n", r); return 1; }
        /* the firmware must still answer a clean HELLO */
        uint8_t hello[EQP_MAX_ENCODED + 2];
        hello[0] = 0;
        size_t hl = make_frame(EQP_CMD_HELLO, 7, NULL, 0, hello + 1, sizeof hello - 1);
        int code = -1;
        if (!feed(hello, hl + 1, &code) || code != (EQP_CMD_HELLO | EQP_REPLY)) {
            printf("FAIL round %ld: no HELLO reply after garbage (code %d)\n", r, code);
            return 1;
        }
    }
    printf("OK rounds=%ld frames=%ld replies=%ld errors=%ld\n", rounds, g_frames, g_replies, g_errors);
    return 0;
}
