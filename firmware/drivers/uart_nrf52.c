/* Nordic nRF52 UARTE (EasyDMA), polled with one-byte transfers. */
#include "board_config.h"
#include "eq_hal.h"

#define UARTE(off) (*(volatile uint32_t *)(EQ_UART_BASE + (off)))
#define TASKS_STARTRX 0x000u
#define TASKS_STARTTX 0x008u
#define EVENTS_ENDRX 0x110u
#define EVENTS_ENDTX 0x120u
#define ENABLE 0x500u
#define PSEL_TXD 0x50Cu
#define PSEL_RXD 0x514u
#define BAUDRATE 0x524u
#define RXD_PTR 0x534u
#define RXD_MAXCNT 0x538u
#define TXD_PTR 0x544u
#define TXD_MAXCNT 0x548u
#define CONFIG 0x56Cu

static volatile uint8_t g_rx_byte;
static volatile uint8_t g_tx_byte;

static void start_rx(void) {
    UARTE(RXD_PTR) = (uint32_t)(uintptr_t)&g_rx_byte;
    UARTE(RXD_MAXCNT) = 1u;
    UARTE(TASKS_STARTRX) = 1u;
}

void eq_uart_init(void) {
    UARTE(PSEL_TXD) = EQ_UART_TX_PIN;
    UARTE(PSEL_RXD) = EQ_UART_RX_PIN;
    UARTE(BAUDRATE) = EQ_UART_DIVISOR;
    UARTE(CONFIG) = 0u;
    UARTE(ENABLE) = 8u;
    UARTE(EVENTS_ENDRX) = 0u;
    start_rx();
}

void eq_uart_putc(uint8_t c) {
    g_tx_byte = c;
    UARTE(TXD_PTR) = (uint32_t)(uintptr_t)&g_tx_byte;
    UARTE(TXD_MAXCNT) = 1u;
    UARTE(EVENTS_ENDTX) = 0u;
    UARTE(TASKS_STARTTX) = 1u;
    while (UARTE(EVENTS_ENDTX) == 0u) {
    }
}

void eq_uart_write(const uint8_t *data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        eq_uart_putc(data[i]);
    }
}

int eq_uart_getc(uint8_t *c) {
    if (UARTE(EVENTS_ENDRX) == 0u) {
        return 0;
    }
    UARTE(EVENTS_ENDRX) = 0u;
    *c = g_rx_byte;
    start_rx();
    return 1;
}
