/* SysTick as the counter under QEMU -icount shift=0 (where DWT->CYCCNT reads 0).
 *
 * The virtual clock advances 1 ns per instruction, so processor-clock ticks count instructions
 * (1 tick = 1e9 / clock_hz instructions; the host converts). The 24-bit counter is widened with
 * a wrap count kept by the SysTick interrupt. eq_counter_start() rewrites VAL, which realigns the
 * tick phase to the instruction stream, so a measured duration is identical run after run. */
#include "eq_hal.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define ICSR (*(volatile uint32_t *)0xE000ED04u)
#define PENDSTCLR (1u << 25)
#define RELOAD 0x00FFFFFFu

static volatile uint32_t g_wraps;

void SysTick_Handler(void)
{
    g_wraps++;
}

void eq_counter_init(void)
{
    SYST_CSR = 0u;
    SYST_RVR = RELOAD;
    SYST_CVR = 0u;
    g_wraps = 0u;
    SYST_CSR = 0x7u; /* enable, interrupt, processor clock */
}

void eq_counter_start(void)
{
    SYST_CVR = 0u; /* reads 0 until the next tick reloads it: wait for that edge */
    while (SYST_CVR == 0u) {
    }
    ICSR = PENDSTCLR;
    g_wraps = 0u;
}

uint32_t eq_counter_now(void)
{
    uint32_t wraps, val;
    do {
        wraps = g_wraps;
        val = SYST_CVR;
    } while (wraps != g_wraps);
    return wraps * (RELOAD + 1u) + (RELOAD - val);
}

uint32_t eq_counter_kind(void)
{
    return EQ_COUNTER_INSTRUCTIONS;
}
