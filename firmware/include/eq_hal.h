/* The few board services the application needs; one driver file of each kind is linked. */
#ifndef EQ_HAL_H
#define EQ_HAL_H

#include <stddef.h>
#include <stdint.h>

void eq_uart_init(void);
void eq_uart_putc(uint8_t c);
void eq_uart_write(const uint8_t *data, size_t n); /* a whole reply frame */
/* 1 and the byte if one was received, else 0; never blocks on a UART (the emulator-only
 * semihosting link halts the core until the host sends something). */
int eq_uart_getc(uint8_t *c);

/* Counter kinds reported in the handshake. */
#define EQ_COUNTER_INSTRUCTIONS 0u /* SysTick ticks under QEMU -icount shift=0 */
#define EQ_COUNTER_CYCLES 1u       /* DWT->CYCCNT */

void eq_counter_init(void);
void eq_counter_start(void);    /* zero the counter (and align SysTick's phase) */
uint32_t eq_counter_now(void);  /* counts since eq_counter_start */
uint32_t eq_counter_kind(void);

#endif
