/* ARM CMSDK APB UART (MPS2 boards). */
#include "board_config.h"
#include "eq_hal.h"

#define UART(off) (*(volatile uint32_t *)(EQ_UART_BASE + (off)))
#define UART_DATA 0x00u
#define UART_STATE 0x04u
#define UART_CTRL 0x08u
#define UART_BAUDDIV 0x10u
#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u

void eq_uart_init(void) {
    UART(UART_BAUDDIV) = EQ_UART_DIVISOR;
    UART(UART_CTRL) = 0x3u; /* TX and RX enable, no interrupts */
}

void eq_uart_putc(uint8_t c) {
    while (UART(UART_STATE) & STATE_TX_FULL) {
    }
    UART(UART_DATA) = c;
}

void eq_uart_write(const uint8_t *data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        eq_uart_putc(data[i]);
    }
}

int eq_uart_getc(uint8_t *c) {
    if ((UART(UART_STATE) & STATE_RX_FULL) == 0u) {
        return 0;
    }
    *c = (uint8_t)UART(UART_DATA);
    return 1;
}
