/* The benchmark/validation application: answers protocol frames around the edgeq-rt model. */
#ifndef EQ_APP_H
#define EQ_APP_H

#include <stddef.h>
#include <stdint.h>

#include "board_config.h"
#include "eq_proto.h"

#define EQ_APP_MAX_RUNS 64u
#define EQ_FW_VERSION_MAJOR 1u
#define EQ_FW_VERSION_MINOR 0u

#ifndef EQ_BOARD_NAME
#define EQ_BOARD_NAME "host"
#endif
#ifndef EQ_CLOCK_HZ
#define EQ_CLOCK_HZ 0u
#endif

void eq_app_init(void);
/* Answers one receiver event (eqp_rx_push's return): a decoded frame, or a damaged or
 * oversized one (an ERROR reply). Writes the encoded reply (with delimiter) into out and
 * returns its length (0: no reply). */
size_t eq_app_handle_rx(const eqp_rx *rx, int event, uint8_t *out, size_t cap);

#endif
