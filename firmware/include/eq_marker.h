/* Timing-marker GPIO (board config [marker]): driven high for exactly the timed window, so a
 * logic analyser or a power monitor's trigger input sees what the cycle counter counts. Plain
 * register stores from board_config.h, no call overhead; no-ops on boards without a marker. */
#ifndef EQ_MARKER_H
#define EQ_MARKER_H

#include <stdint.h>

#include "board_config.h"

#if defined(EQ_MARKER_SET_ADDR)
#define EQ_MARKER_HIGH() (*(volatile uint32_t *)EQ_MARKER_SET_ADDR = EQ_MARKER_SET_VALUE)
#define EQ_MARKER_LOW() (*(volatile uint32_t *)EQ_MARKER_CLEAR_ADDR = EQ_MARKER_CLEAR_VALUE)
#else
#define EQ_MARKER_HIGH() ((void)0)
#define EQ_MARKER_LOW() ((void)0)
#endif

#endif
