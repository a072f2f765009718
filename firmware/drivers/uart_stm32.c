/* STM32 USART/LPUART, polled. Two register layouts:
 *   EQ_STM32_USART_V1 (F1/F2/F4): SR 0x00, DR 0x04, BRR 0x08, CR1 0x0C (UE bit 13)
 *   EQ_STM32_USART_V2 (L4/F7/H7): CR1 0x00 (UE bit 0), BRR 0x0C, ISR 0x1C, ICR 0x20, RDR 0x24, TDR 0x28
 * The status bits TXE (7), RXNE (5) and ORE (3) sit at the same positions in both. */
#include "board_config.h"
#include "eq_hal.h"

#define USART(off) (*(volatile uint32_t *)(EQ_UART_BASE + (off)))
#define ST_TXE (1u << 7)
#define ST_RXNE (1u << 5)
#define ST_ORE (1u << 3)
#define CR1_TE (1u << 3)
#define CR1_RE (1u << 2)

#if defined(EQ_STM32_USART_V1)
#define R_STATUS 0x00u
#define R_RX 0x04u
#define R_TX 0x04u
#define R_BRR 0x08u
#define R_CR1 0x0Cu
#define CR1_UE (1u << 13)
#elif defined(EQ_STM32_USART_V2)
#define R_CR1 0x00u
#define R_BRR 0x0Cu
#define R_STATUS 0x1Cu
#define R_ICR 0x20u
#define R_RX 0x24u
#define R_TX 0x28u
#define CR1_UE (1u << 0)
#else
#error "define EQ_STM32_USART_V1 or EQ_STM32_USART_V2"
#endif

void eq_uart_init(void) {
    USART(R_CR1) = 0u;
    /* the baud divisor follows the clock actually running (the reset clock if setup failed) */
    USART(R_BRR) = eq_clock_status() == EQ_CLOCK_OK ? EQ_UART_DIVISOR : EQ_UART_DIVISOR_RESET;
    USART(R_CR1) = CR1_TE | CR1_RE;
    USART(R_CR1) = CR1_TE | CR1_RE | CR1_UE;
}

void eq_uart_putc(uint8_t c) {
    while ((USART(R_STATUS) & ST_TXE) == 0u) {
    }
    USART(R_TX) = c;
}

void eq_uart_write(const uint8_t *data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        eq_uart_putc(data[i]);
    }
}

int eq_uart_getc(uint8_t *c) {
    uint32_t status = USART(R_STATUS);
    if ((status & ST_RXNE) == 0u) {
        if (status & ST_ORE) { /* overrun: clear it so reception resumes */
#if defined(EQ_STM32_USART_V2)
            USART(R_ICR) = ST_ORE;
#else
            (void)USART(R_RX);
#endif
        }
        return 0;
    }
    *c = (uint8_t)USART(R_RX);
    return 1;
}
