/* Firmware entry: bring up the UART and counter, then serve protocol frames forever. */
#include "eq_app.h"
#include "eq_hal.h"

static void put_text(const char *s) {
    while (*s != '\0') {
        eq_uart_putc((uint8_t)*s++);
    }
}

/* One text line, framed by 0x00 so a host's frame decoder drops it as a bad frame while a
 * terminal shows it: the board did not reach its operating point and runs at the reset clock. */
static void report_clock_failure(uint32_t step) {
    static const char *const k_step[] = {"", "oscillator not ready", "regulator not ready",
                                         "flash latency not accepted", "PLL did not lock",
                                         "SYSCLK switch not confirmed"};
    char hz[11];
    uint32_t v = eq_clock_hz();
    int n = 10;
    hz[n] = '\0';
    do {
        hz[--n] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u && n > 0);
    eq_uart_putc(0u);
    put_text("edgeq: clock setup failed (");
    put_text(step < sizeof k_step / sizeof k_step[0] ? k_step[step] : "unknown step");
    put_text("); running at the reset clock, ");
    put_text(&hz[n]);
    put_text(" Hz\r\n");
    eq_uart_putc(0u);
}

static eqp_rx g_rx;
static uint8_t g_tx[EQP_MAX_ENCODED + 1u];

int main(void) {
    eq_uart_init();
    if (eq_clock_status() != EQ_CLOCK_OK) {
        report_clock_failure(eq_clock_status());
    }
    eq_counter_init();
    eq_app_init();
    eqp_rx_reset(&g_rx);
    for (;;) {
        uint8_t byte;
        if (!eq_uart_getc(&byte)) {
            continue;
        }
        int event = eqp_rx_push(&g_rx, byte);
        if (event == EQP_RX_NONE) {
            continue;
        }
        size_t n = eq_app_handle_rx(&g_rx, event, g_tx, sizeof g_tx);
        eqp_rx_reset(&g_rx);
        if (n > 0u) {
            eq_uart_write(g_tx, n);
        }
    }
}
