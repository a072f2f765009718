/* Cortex-M startup: vector table, FPU (CPACR + lazy stacking), Cortex-M7 caches, the board's
 * clock tree (clock_<tree>.c, when the board config has one), .data copy, .bss zero, board
 * register init and the timing-marker pin, then main.
 *
 * Faults reset the core (AIRCR.SYSRESETREQ) instead of spinning, so a host talking to a board
 * sees a fresh firmware rather than a silent hang.
 */
#include <stdint.h>

#include "board_config.h"
#include "eq_hal.h"
#include "eq_marker.h"

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_top__;

int main(void);
void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

#define REG32(addr) (*(volatile uint32_t *)(addr))
#define SCB_CPACR 0xE000ED88u
#define SCB_AIRCR 0xE000ED0Cu
#define SCB_CCR 0xE000ED14u
#define SCB_CCSIDR 0xE000ED80u
#define SCB_CSSELR 0xE000ED84u
#define FPU_FPCCR 0xE000EF34u
#define SCB_ICIALLU 0xE000EF50u
#define SCB_DCISW 0xE000EF60u
#define CCR_DC (1u << 16)
#define CCR_IC (1u << 17)
#define FPCCR_ASPEN (1u << 31) /* save FP context automatically on exception entry ... */
#define FPCCR_LSPEN (1u << 30) /* ... lazily: space reserved, registers stored on first FP use */

typedef struct {
    uint32_t addr, clear, set;
} eq_reg_write;

#if EQ_BOARD_INIT_COUNT > 0
static const eq_reg_write k_board_init[] = EQ_BOARD_INIT_WRITES;
#endif
#if EQ_MARKER_INIT_COUNT > 0
static const eq_reg_write k_marker_init[] = EQ_MARKER_INIT_WRITES;
#endif

static uint32_t g_clock_status; /* in .bss: stored after the .bss is zeroed */

uint32_t eq_clock_status(void) { return g_clock_status; }

uint32_t eq_clock_hz(void) { return g_clock_status == EQ_CLOCK_OK ? EQ_CLOCK_HZ : EQ_CLOCK_RESET_HZ; }

#if EQ_BOARD_INIT_COUNT > 0 || EQ_MARKER_INIT_COUNT > 0
static void apply_writes(const eq_reg_write *w, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) {
        volatile uint32_t *reg = (volatile uint32_t *)w[i].addr;
        *reg = (*reg & ~w[i].clear) | w[i].set;
    }
}
#endif

#if defined(EQ_MARKER_SET_ADDR)
/* MLPerf Tiny energy mode (eq_mlperf.c): a timestamp is a falling edge on the marker pin, made
 * by a short high pulse (the pin idles low). */
void eq_timestamp_marker(void) {
    EQ_MARKER_HIGH();
    for (volatile uint32_t i = 0; i < 16u; ++i) {
    }
    EQ_MARKER_LOW();
}
#endif

#if EQ_M7_ICACHE || EQ_M7_DCACHE
/* Cortex-M7 L1 caches: invalidate, then enable (ARMv7-M cache maintenance by set/way). Nothing
 * but the core touches the arena (the UART is polled; its registers are Device memory, never
 * cached), so no clean/invalidate is needed later. */
static void enable_m7_caches(void) {
    __asm volatile("dsb\n\tisb" ::: "memory");
#if EQ_M7_ICACHE
    REG32(SCB_ICIALLU) = 0u;
    __asm volatile("dsb\n\tisb" ::: "memory");
    REG32(SCB_CCR) |= CCR_IC;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
#if EQ_M7_DCACHE
    REG32(SCB_CSSELR) = 0u; /* level 1 data cache */
    __asm volatile("dsb" ::: "memory");
    uint32_t ccsidr = REG32(SCB_CCSIDR);
    uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    uint32_t line_shift = (ccsidr & 0x7u) + 4u;
    uint32_t way_shift = ways > 1u ? (uint32_t)__builtin_clz(ways - 1u) : 0u;
    for (uint32_t set = 0; set < sets; ++set) {
        for (uint32_t way = 0; way < ways; ++way) {
            REG32(SCB_DCISW) = (way << way_shift) | (set << line_shift);
        }
    }
    __asm volatile("dsb" ::: "memory");
    REG32(SCB_CCR) |= CCR_DC;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
}
#endif

__attribute__((section(".isr_vector"), used)) static void (*const k_vectors[16])(void) = {
    (void (*)(void))(&__stack_top__),
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    Fault_Handler, /* SecureFault (v8-M) */
    0,
    0,
    0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
};

void Reset_Handler(void) {
#if defined(__ARM_FP)
    /* Exception entry must preserve the interrupted code's FP registers once a handler uses the
     * FPU (the hard-float ABI keeps live values there): automatic + lazy FP context saving. */
    REG32(FPU_FPCCR) |= FPCCR_ASPEN | FPCCR_LSPEN;
    REG32(SCB_CPACR) |= 0xFu << 20; /* CP10/CP11 full access */
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
#if EQ_M7_ICACHE || EQ_M7_DCACHE
    enable_m7_caches();
#endif
    /* The clock tree first (it touches no .data/.bss), so the copies below run at full speed. */
#if EQ_CLOCK_SETUP
    uint32_t clock_status = eq_clock_init();
#endif
    uint32_t *src = &__data_load__;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0u;
    }
#if EQ_CLOCK_SETUP
    g_clock_status = clock_status;
#endif
#if EQ_BOARD_INIT_COUNT > 0
    apply_writes(k_board_init, EQ_BOARD_INIT_COUNT);
#endif
#if EQ_MARKER_INIT_COUNT > 0
    apply_writes(k_marker_init, EQ_MARKER_INIT_COUNT);
    EQ_MARKER_LOW();
#endif
    (void)main();
    Fault_Handler();
}

void Fault_Handler(void) {
    REG32(SCB_AIRCR) = 0x05FA0004u;
    for (;;) {
    }
}

void Default_Handler(void) {}
