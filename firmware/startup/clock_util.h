/* Shared by the clock_<tree>.c files: register access, bounded waits, STM32 divider encodings. */
#ifndef EQ_CLOCK_UTIL_H
#define EQ_CLOCK_UTIL_H

#include <stdint.h>

#include "board_config.h"
#include "eq_hal.h"

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* 1 once (reg & mask) == value, 0 after EQ_CLOCK_TIMEOUT_POLLS reads: no wait can hang. */
static inline int eq_wait_field(uint32_t addr, uint32_t mask, uint32_t value) {
    for (uint32_t n = EQ_CLOCK_TIMEOUT_POLLS; n != 0u; --n) {
        if ((REG32(addr) & mask) == value) {
            return 1;
        }
    }
    return 0;
}

static inline void eq_modify(uint32_t addr, uint32_t clear, uint32_t set) {
    REG32(addr) = (REG32(addr) & ~clear) | set;
}

/* STM32 AHB prescaler field (HPRE): 0xxx = /1, 1000 = /2, 1001 = /4, 1010 = /8, 1011 = /16. */
#define EQ_HPRE_BITS(div)                                                                        \
    ((div) == 1u ? 0u : (div) == 2u ? 8u : (div) == 4u ? 9u : (div) == 8u ? 10u : 11u)
/* STM32 APB prescaler field (PPRE): 0xx = /1, 100 = /2, 101 = /4, 110 = /8, 111 = /16. */
#define EQ_PPRE_BITS(div)                                                                        \
    ((div) == 1u ? 0u : (div) == 2u ? 4u : (div) == 4u ? 5u : (div) == 8u ? 6u : 7u)

#endif
