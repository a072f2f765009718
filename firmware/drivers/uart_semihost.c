/* The host link over ARM semihosting, for emulated boards only.
 *
 * QEMU's UART models hold one received byte and take one pass of the emulator's main loop per
 * byte (~20 us measured), which caps a frame at ~50 KB/s. Semihosting SYS_READ on the console
 * (QEMU -semihosting-config chardev=...) hands over whatever the host sent, up to the buffer,
 * in one trap, so the same protocol runs at the speed of the emulator instead. A real board
 * never links this file: a BKPT 0xAB without a debugger attached would fault. */
#include <stddef.h>

#include "eq_hal.h"

#define SYS_OPEN 0x01u
#define SYS_WRITE 0x05u
#define SYS_READ 0x06u
#define SYS_EXIT 0x18u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static uint8_t g_rx[1024];
static uint32_t g_rx_len, g_rx_pos;
static int32_t g_in = -1, g_out = -1;
/* edgeq.device.qemu finds this text in the ELF and starts QEMU with semihosting on. */
const char eq_link_marker[] = "edgeq-link:semihosting";

static int32_t semihost(uint32_t op, void *args) {
    register uint32_t r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = args;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

static int32_t open_console(uint32_t mode) {
    uint32_t args[3] = {(uint32_t)(uintptr_t) ":tt", mode, 3u};
    return semihost(SYS_OPEN, args);
}

void eq_uart_init(void) {
    if (*(const volatile char *)eq_link_marker == '\0') { /* keeps the marker in the image */
        return;
    }
    g_in = open_console(0u);  /* "r": the console input */
    g_out = open_console(4u); /* "w": the console output */
    g_rx_len = g_rx_pos = 0u;
}

void eq_uart_write(const uint8_t *data, size_t n) {
    while (n > 0u) {
        uint32_t args[3] = {(uint32_t)g_out, (uint32_t)(uintptr_t)data, (uint32_t)n};
        int32_t left = semihost(SYS_WRITE, args); /* bytes NOT written */
        if (left < 0 || (size_t)left >= n) {
            return;
        }
        data += n - (size_t)left;
        n = (size_t)left;
    }
}

void eq_uart_putc(uint8_t c) { eq_uart_write(&c, 1u); }

int eq_uart_getc(uint8_t *c) {
    if (g_rx_pos == g_rx_len) {
        /* Blocks (the emulated core halts) until the host sent at least one byte. */
        uint32_t args[3] = {(uint32_t)g_in, (uint32_t)(uintptr_t)g_rx, sizeof g_rx};
        int32_t left = semihost(SYS_READ, args); /* bytes NOT read */
        if (left == (int32_t)sizeof g_rx) {
            /* End of file: the host closed the link, so no orphaned emulator keeps spinning. */
            (void)semihost(SYS_EXIT, (void *)(uintptr_t)ADP_STOPPED_APPLICATION_EXIT);
        }
        if (left < 0 || (uint32_t)left >= sizeof g_rx) {
            return 0;
        }
        g_rx_len = sizeof g_rx - (uint32_t)left;
        g_rx_pos = 0u;
    }
    *c = g_rx[g_rx_pos++];
    return 1;
}
