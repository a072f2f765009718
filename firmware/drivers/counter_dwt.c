/* DWT cycle counter (real Cortex-M3/M4/M7/M33 silicon). */
#include "eq_hal.h"

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)

void eq_counter_init(void)
{
    DEMCR |= 1u << 24;     /* TRCENA */
    DWT_LAR = 0xC5ACCE55u; /* unlock (Cortex-M7); ignored elsewhere */
    DWT_CYCCNT = 0u;
    DWT_CTRL |= 1u;
}

void eq_counter_start(void)
{
    DWT_CYCCNT = 0u;
}

uint32_t eq_counter_now(void)
{
    return DWT_CYCCNT;
}

uint32_t eq_counter_kind(void)
{
    return EQ_COUNTER_CYCLES;
}
