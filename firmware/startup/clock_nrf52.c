/* nRF52840 clock: the core always runs at 64 MHz; HFCLK moves from the internal RC (HFINT) to
 * the 32 MHz crystal (HFXO) for an accurate clock and UART baud (product specification, CLOCK:
 * clear EVENTS_HFCLKSTARTED, trigger TASKS_HFCLKSTART, wait for the event, HFCLKSTAT.SRC = Xtal).
 * The NVMC instruction cache is off after reset and turned on first. */
#include "clock_util.h"

#define CLOCK 0x40000000u
#define TASKS_HFCLKSTART (CLOCK + 0x000u)
#define EVENTS_HFCLKSTARTED (CLOCK + 0x100u)
#define HFCLKSTAT (CLOCK + 0x40Cu)
#define NVMC_ICACHECNF 0x4001E540u

uint32_t eq_clock_init(void) {
#if EQ_CLOCK_ART_ICACHE
    eq_modify(NVMC_ICACHECNF, 0u, 1u); /* CACHEEN */
#endif
    REG32(EVENTS_HFCLKSTARTED) = 0u;
    REG32(TASKS_HFCLKSTART) = 1u;
    if (!eq_wait_field(EVENTS_HFCLKSTARTED, 1u, 1u)) {
        return EQ_CLOCK_FAIL_SOURCE; /* still on HFINT: 64 MHz, less accurate */
    }
    if ((REG32(HFCLKSTAT) & 0x10001u) != 0x10001u) { /* STATE running, SRC = Xtal */
        return EQ_CLOCK_FAIL_SWITCH;
    }
    return EQ_CLOCK_OK;
}
