/* MLPerf Tiny / EEMBC test-harness mode: the text protocol the MLPerf Tiny runner speaks.
 *
 * Commands arrive as text terminated by '%', words separated by spaces; every command is
 * answered by zero or more lines and then "m-ready", each line ended by "\r\n":
 *   name                -> m-name-dut-[edgeq <board>]
 *   profile             -> m-profile-[...], m-model-[<model version>]
 *   timestamp           -> m-lap-us-<microseconds> (performance mode), or a pulse on the
 *                          timing marker hook (energy mode, EQ_MLPERF_ENERGY_MODE=1)
 *   db load N           -> m-[Expecting N bytes]      (start filling the input buffer)
 *   db HEX...           -> m-load-done once N bytes arrived
 *   db print            -> m-buffer-xx-xx-... (8 bytes a line)
 *   infer N W           -> m-warmup-start-W, m-warmup-done, m-infer-start-N, two timestamps
 *                          around the N inferences, m-infer-done, then the results line
 *   results             -> m-results-[v0,v1,...]: the dequantized outputs with 3 decimals, or
 *                          for an autoencoder (EQ_MLPERF_RESULT_MSE=1) the mean squared error
 *                          between the dequantized reconstruction and input
 *   help                -> the command list
 * Errors are reported as e-[...]. The db bytes are the model's input tensor bytes (plus
 * EQ_MLPERF_INPUT_OFFSET each, e.g. -128 to feed a uint8 dataset to an int8 model). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "board_config.h"
#include "eq_hal.h"
#include "model.h"

#ifndef EQ_BOARD_NAME
#define EQ_BOARD_NAME "host"
#endif
#ifndef EQ_CLOCK_HZ
#define EQ_CLOCK_HZ 1000000u
#endif
#ifndef EQ_MLPERF_MODEL
#define EQ_MLPERF_MODEL EDGEQ_MODEL_NAME
#endif
#ifndef EQ_MLPERF_ENERGY_MODE
#define EQ_MLPERF_ENERGY_MODE 0
#endif
#ifndef EQ_MLPERF_RESULT_MSE
#define EQ_MLPERF_RESULT_MSE 0
#endif
#ifndef EQ_MLPERF_INPUT_OFFSET
#define EQ_MLPERF_INPUT_OFFSET 0
#endif
#ifndef EQ_APP_STAGING_BYTES
#define EQ_APP_STAGING_BYTES EDGEQ_MODEL_ARENA_BYTES
#endif
#define CMD_CAP 1024u
#define PROFILE "edgeq MLPerf Tiny harness 1.0"

typedef struct {
    char cmd[CMD_CAP + 1u];
    uint32_t cmd_len;
    uint8_t db[EQ_APP_STAGING_BYTES];
    uint32_t db_size, db_pos;
    uint32_t last_count;
    uint64_t elapsed_us_x; /* counter units * 1e6, divided by the clock when printed */
} eq_mlperf_state;

static eq_mlperf_state g_ml;

/* Called at each timestamp in energy mode: a board with a timing-marker pin drives it here. */
__attribute__((weak)) void eq_timestamp_marker(void) {}

static void put(const char *s) { eq_uart_write((const uint8_t *)s, strlen(s)); }

static void put_u64(uint64_t v) {
    char buf[21];
    size_t i = sizeof buf;
    do {
        buf[--i] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    eq_uart_write((const uint8_t *)buf + i, sizeof buf - i);
}

static void put_hex2(uint8_t b) {
    static const char k_hex[] = "0123456789abcdef";
    char s[2] = {k_hex[b >> 4], k_hex[b & 0xFu]};
    eq_uart_write((const uint8_t *)s, 2u);
}

/* v with three decimals like printf("%.3f") (ties to even), without newlib's float printf */
static void put_milli(double v) {
    if (v != v) {
        put("nan");
        return;
    }
    int neg = v < 0.0;
    double a = (neg ? -v : v) * 1000.0;
    if (a >= 1.8e19) {
        put(neg ? "-inf" : "inf");
        return;
    }
    uint64_t m = (uint64_t)a;
    double frac = a - (double)m;
    if (frac > 0.5 || (frac == 0.5 && (m & 1u) != 0u)) {
        ++m;
    }
    if (neg) {
        put("-");
    }
    put_u64(m / 1000u);
    char digits[4] = {'.', (char)('0' + (int)(m / 100u % 10u)),
                      (char)('0' + (int)(m / 10u % 10u)), (char)('0' + (int)(m % 10u))};
    eq_uart_write((const uint8_t *)digits, 4u);
}

static void timestamp(void) {
    uint32_t now = eq_counter_now();
    g_ml.elapsed_us_x += (uint64_t)(uint32_t)(now - g_ml.last_count) * 1000000u;
    g_ml.last_count = now;
#if EQ_MLPERF_ENERGY_MODE
    eq_timestamp_marker();
#else
    put("m-lap-us-");
    put_u64(g_ml.elapsed_us_x / (uint64_t)eq_clock_hz()); /* reset clock if setup failed */
    put("\r\n");
#endif
}

static uint32_t input_bytes(void) {
    uint32_t n = 0;
    for (int32_t i = 0; i < EDGEQ_MODEL_NUM_INPUTS; ++i) {
        n += (uint32_t)edgeq_model_input_info[i].bytes;
    }
    return n;
}

static int parse_u32(const char *s, uint32_t *out) {
    uint32_t v = 0;
    if (s == NULL || *s == '\0') {
        return 0;
    }
    for (; *s; ++s) {
        if (*s < '0' || *s > '9' || v > 100000000u) {
            return 0;
        }
        v = v * 10u + (uint32_t)(*s - '0');
    }
    *out = v;
    return 1;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static void load_tensor(void) {
    uint32_t off = 0;
    for (int32_t i = 0; i < EDGEQ_MODEL_NUM_INPUTS; ++i) {
        uint8_t *dst = (uint8_t *)edgeq_model_input(i);
        uint32_t n = (uint32_t)edgeq_model_input_info[i].bytes;
        for (uint32_t k = 0; k < n; ++k) {
            dst[k] = (uint8_t)(g_ml.db[off + k] + (uint8_t)(EQ_MLPERF_INPUT_OFFSET));
        }
        off += n;
    }
}

static double dequant(const eq_io_info *io, const void *base, uint32_t k) {
    double q;
    switch (io->dtype) {
    case EQ_INT8:
        q = (double)((const int8_t *)base)[k];
        break;
    case EQ_UINT8:
        q = (double)((const uint8_t *)base)[k];
        break;
    case EQ_INT16:
        q = (double)((const int16_t *)base)[k];
        break;
    case EQ_INT32:
        q = (double)((const int32_t *)base)[k];
        break;
    default:
        return (double)((const float *)base)[k];
    }
    return io->scale != 0.0f ? (q - (double)io->zero_point) * (double)io->scale : q;
}

static uint32_t elements(const eq_io_info *io) {
    uint32_t size = io->dtype == EQ_INT8 || io->dtype == EQ_UINT8 ? 1u
                    : io->dtype == EQ_INT16                     ? 2u
                                                                : 4u;
    return (uint32_t)io->bytes / size;
}

static void results(void) {
    const eq_io_info *out = &edgeq_model_output_info[0];
    const void *y = edgeq_model_output(0);
    put("m-results-[");
#if EQ_MLPERF_RESULT_MSE
    /* the staged input (db bytes) against the reconstruction, both dequantized */
    const eq_io_info *in = &edgeq_model_input_info[0];
    uint32_t n = elements(out) < elements(in) ? elements(out) : elements(in);
    double sum = 0.0;
    for (uint32_t k = 0; k < n; ++k) {
        double x;
        if (in->bytes == (int32_t)elements(in)) { /* one byte per element: apply the offset */
            uint8_t b = (uint8_t)(g_ml.db[k] + (uint8_t)EQ_MLPERF_INPUT_OFFSET);
            x = dequant(in, &b, 0u);
        } else {
            x = dequant(in, g_ml.db, k);
        }
        double d = dequant(out, y, k) - x;
        sum += d * d;
    }
    put_milli(n > 0u ? sum / (double)n : 0.0);
#else
    uint32_t n = elements(out);
    for (uint32_t k = 0; k < n; ++k) {
        if (k > 0u) {
            put(",");
        }
        put_milli(dequant(out, y, k));
    }
#endif
    put("]\r\n");
}

static void cmd_db(char *arg, char *rest) {
    uint32_t n;
    if (arg == NULL) {
        put("e-[Command 'db' requires a subcommand]\r\n");
    } else if (strcmp(arg, "load") == 0) {
        if (!parse_u32(rest, &n) || n == 0u) {
            put("e-[Command 'db load' requires a byte count > 0]\r\n");
        } else if (n > sizeof g_ml.db) {
            put("e-[db load ");
            put_u64(n);
            put(" exceeds the buffer of ");
            put_u64(sizeof g_ml.db);
            put(" bytes]\r\n");
        } else {
            g_ml.db_size = n;
            g_ml.db_pos = 0;
            put("m-[Expecting ");
            put_u64(n);
            put(" bytes]\r\n");
        }
    } else if (strcmp(arg, "print") == 0) {
        for (uint32_t i = 0; i < g_ml.db_pos; ++i) {
            put(i % 8u == 0u ? "m-buffer-" : "-");
            put_hex2(g_ml.db[i]);
            if (i % 8u == 7u || i + 1u == g_ml.db_pos) {
                put("\r\n");
            }
        }
    } else {
        size_t len = strlen(arg);
        if (len % 2u != 0u) {
            put("e-[Insufficient number of hex digits]\r\n");
            return;
        }
        for (size_t i = 0; i < len; i += 2u) {
            int hi = hex_digit(arg[i]), lo = hex_digit(arg[i + 1u]);
            if (hi < 0 || lo < 0) {
                put("e-[Invalid hex digit]\r\n");
                return;
            }
            if (g_ml.db_pos >= g_ml.db_size) {
                put("e-[More bytes than db load announced]\r\n");
                return;
            }
            g_ml.db[g_ml.db_pos++] = (uint8_t)(hi << 4 | lo);
            if (g_ml.db_pos == g_ml.db_size) {
                put("m-load-done\r\n");
            }
        }
    }
}

static void cmd_infer(char *a, char *b) {
    uint32_t n = 1, w = 10;
    if ((a != NULL && (!parse_u32(a, &n) || n == 0u)) || (b != NULL && !parse_u32(b, &w))) {
        put("e-[infer N W: N > 0 inferences after W >= 0 warm-up runs]\r\n");
        return;
    }
    if (g_ml.db_pos < input_bytes()) {
        put("e-[Input has ");
        put_u64(g_ml.db_pos);
        put(" bytes, the model takes ");
        put_u64(input_bytes());
        put(": send db load and db first]\r\n");
        return;
    }
    int status = 0;
    put("m-warmup-start-");
    put_u64(w);
    put("\r\n");
    for (uint32_t i = 0; i < w && status == 0; ++i) {
        load_tensor();
        status = (int)edgeq_model_invoke();
    }
    put("m-warmup-done\r\nm-infer-start-");
    put_u64(n);
    put("\r\n");
    timestamp();
    for (uint32_t i = 0; i < n && status == 0; ++i) {
        load_tensor(); /* the planner may reuse the input's bytes during inference */
        status = (int)edgeq_model_invoke();
    }
    timestamp();
    put("m-infer-done\r\n");
    if (status != 0) {
        put("e-[Inference failed]\r\n");
        return;
    }
    results();
}

static void dispatch(char *line) {
    char *words[4] = {NULL, NULL, NULL, NULL};
    size_t nw = 0, len = strlen(line);
    for (size_t i = 0; i < len; ++i) {
        if (line[i] == ' ' || line[i] == '\r' || line[i] == '\n' || line[i] == '\t') {
            line[i] = '\0';
        }
    }
    for (size_t i = 0; i < len && nw < 4u; ++i) {
        if (line[i] != '\0' && (i == 0u || line[i - 1u] == '\0')) {
            words[nw++] = line + i;
        }
    }
    const char *c = words[0];
    if (c == NULL) {
        /* an empty command: just m-ready */
    } else if (strcmp(c, "name") == 0) {
        put("m-name-dut-[edgeq " EQ_BOARD_NAME "]\r\n");
    } else if (strcmp(c, "profile") == 0) {
        put("m-profile-[" PROFILE "]\r\nm-model-[" EQ_MLPERF_MODEL "]\r\n");
    } else if (strcmp(c, "timestamp") == 0) {
        timestamp();
    } else if (strcmp(c, "db") == 0) {
        cmd_db(words[1], words[2]);
    } else if (strcmp(c, "infer") == 0) {
        cmd_infer(words[1], words[2]);
    } else if (strcmp(c, "results") == 0) {
        results();
    } else if (strcmp(c, "help") == 0) {
        put(PROFILE "\r\n\r\n"
            "help         : Print this information\r\n"
            "name         : Print the name of the device\r\n"
            "timestamp    : Generate a timestamp\r\n"
            "db SUBCMD    : Manipulate a generic byte buffer\r\n"
            "  load N     : Allocate N bytes and set load counter\r\n"
            "  db HH[HH]* : Load 8-bit hex byte(s) until N bytes\r\n"
            "  print      : Print the loaded bytes as hex\r\n"
            "infer N [W=10]: Load input, execute N inferences after W warmup loops\r\n"
            "results      : Return the result vector\r\n");
    } else {
        put("e-[Unknown command: ");
        put(c);
        put("]\r\n");
    }
    put("m-ready\r\n");
}

int main(void) {
    eq_uart_init();
    if (eq_clock_status() != EQ_CLOCK_OK) {
        put("e-[clock setup failed: running at the reset clock]\r\n");
    }
    eq_counter_init();
    eq_counter_start();
    g_ml.last_count = eq_counter_now();
    put(EQ_MLPERF_ENERGY_MODE ? "m-timestamp-mode-energy\r\n" : "m-timestamp-mode-performance\r\n");
    put("m-init-done\r\nm-ready\r\n");
    for (;;) {
        uint8_t c;
        if (!eq_uart_getc(&c)) {
            continue;
        }
        if (c == '%') {
            if (g_ml.cmd_len > CMD_CAP) {
                put("e-[Command too long]\r\nm-ready\r\n");
            } else {
                g_ml.cmd[g_ml.cmd_len] = '\0';
                dispatch(g_ml.cmd);
            }
            g_ml.cmd_len = 0;
        } else if (g_ml.cmd_len < CMD_CAP) {
            g_ml.cmd[g_ml.cmd_len++] = (char)c;
        } else {
            g_ml.cmd_len = CMD_CAP + 1u; /* overlong: drop until the next '%' */
        }
    }
}
