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

/* Clock tree (firmware/startup/clock_<tree>.c): Reset_Handler runs eq_clock_init() before main.
 * Every ready-bit wait has a timeout; on one the part stays at (or returns to) its reset clock
 * and the step that failed is kept for main to report. */
#define EQ_CLOCK_OK 0u
#define EQ_CLOCK_FAIL_SOURCE 1u  /* oscillator (HSE/HSI/HFXO) never became ready */
#define EQ_CLOCK_FAIL_VOLTAGE 2u /* regulator scaling / over-drive / boost never became ready */
#define EQ_CLOCK_FAIL_FLASH 3u   /* flash latency did not read back */
#define EQ_CLOCK_FAIL_PLL 4u     /* PLL never locked */
#define EQ_CLOCK_FAIL_SWITCH 5u  /* SYSCLK switch not confirmed by the SWS status field */

uint32_t eq_clock_init(void);   /* EQ_CLOCK_OK or the failed step */
uint32_t eq_clock_status(void); /* what eq_clock_init returned at boot */
uint32_t eq_clock_hz(void);     /* core clock now running (the operating point or the reset clock) */

/* MLPerf energy-mode timestamp: one falling edge on the timing-marker pin (eq_marker.h). */
void eq_timestamp_marker(void);

#endif
