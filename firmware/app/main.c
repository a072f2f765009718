/* Firmware entry: bring up the UART and counter, then serve protocol frames forever. */
#include "eq_app.h"
#include "eq_hal.h"

static eqp_rx g_rx;
static uint8_t g_tx[EQP_MAX_ENCODED + 1u];

int main(void) {
    eq_uart_init();
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
