/* Cortex-M startup: vector table, .data copy, .bss zero, FPU enable, board register init.
 *
 * Faults reset the core (AIRCR.SYSRESETREQ) instead of spinning, so a host talking to a board
 * sees a fresh firmware rather than a silent hang.
 */
#include <stdint.h>

#include "board_config.h"

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

typedef struct {
    uint32_t addr, clear, set;
} eq_reg_write;

#if EQ_BOARD_INIT_COUNT > 0
static const eq_reg_write k_board_init[] = EQ_BOARD_INIT_WRITES;
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
    uint32_t *src = &__data_load__;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0u;
    }
#if defined(__ARM_FP)
    REG32(SCB_CPACR) |= 0xFu << 20; /* CP10/CP11 full access */
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
#if EQ_BOARD_INIT_COUNT > 0
    for (uint32_t i = 0; i < EQ_BOARD_INIT_COUNT; ++i) {
        volatile uint32_t *reg = (volatile uint32_t *)k_board_init[i].addr;
        *reg = (*reg & ~k_board_init[i].clear) | k_board_init[i].set;
    }
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
