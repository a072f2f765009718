/* STM32L4R5/L4+ (RM0432) clock tree: SYSCLK = PLLR, Range 1 boost above 80 MHz.
 *
 * Order (RM0432 "dynamic voltage scaling management", Range 1 normal -> boost): PWR clock ->
 * oscillator ready -> VOS = Range 1, VOSF clear -> AHB /2 -> R1MODE = 0 (boost) -> flash wait
 * states for the target (read back) + ART -> PLL factors written while it is off -> PLLON,
 * PLLRDY -> SW = PLL, SWS confirms -> >= 1 us at HCLK/2 -> AHB to its target divider. */
#include "clock_util.h"

#define RCC 0x40021000u
#define RCC_CR (RCC + 0x00u)
#define RCC_CFGR (RCC + 0x08u)
#define RCC_PLLCFGR (RCC + 0x0Cu)
#define RCC_APB1ENR1 (RCC + 0x58u)
#define PWR_CR1 0x40007000u
#define PWR_SR2 0x40007014u
#define PWR_CR5 0x40007080u
#define FLASH_ACR 0x40022000u

#define CR_HSION (1u << 8)
#define CR_HSIRDY (1u << 10)
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define APB1ENR1_PWREN (1u << 28)
#define CR1_VOS_MASK (3u << 9)
#define CR1_VOS_RANGE1 (1u << 9)
#define SR2_VOSF (1u << 10)
#define CR5_R1MODE (1u << 8)
#define ACR_PRFTEN (1u << 8)
#define ACR_ICEN (1u << 9)
#define ACR_DCEN (1u << 10)
#define CFGR_SW_MASK 0x3u
#define CFGR_SWS_MASK 0xCu
#define CFGR_SW_PLL 0x3u
#define CFGR_HPRE_MASK (0xFu << 4)
#define CFGR_PPRE_MASK (0x3Fu << 8) /* PPRE1 [10:8], PPRE2 [13:11] */

/* PLLCFGR: PLLSRC [1:0] (01 MSI, 10 HSI16, 11 HSE), PLLM [7:4] = M - 1, PLLN [14:8],
 * PLLREN [24], PLLR [26:25] = R/2 - 1. The P and Q outputs stay disabled. */
#if defined(EQ_CLOCK_SOURCE_HSE)
#define PLL_SRC 3u
#elif defined(EQ_CLOCK_SOURCE_MSI)
#define PLL_SRC 1u
#else
#define PLL_SRC 2u
#endif
#define PLL_BITS                                                                                 \
    (PLL_SRC | ((EQ_CLOCK_PLL_M - 1u) << 4) | (EQ_CLOCK_PLL_N << 8) | (1u << 24) |              \
     ((EQ_CLOCK_PLL_R / 2u - 1u) << 25))

static uint32_t fall_back(uint32_t step) {
    eq_modify(RCC_CFGR, CFGR_SW_MASK, 0u); /* SYSCLK = MSI (reset source) */
    (void)eq_wait_field(RCC_CFGR, CFGR_SWS_MASK, 0u);
    eq_modify(RCC_CFGR, CFGR_HPRE_MASK | CFGR_PPRE_MASK, 0u);
    eq_modify(RCC_CR, CR_PLLON, 0u);
    return step; /* wait states and boost mode stay: both are valid at the reset clock */
}

uint32_t eq_clock_init(void) {
    eq_modify(RCC_APB1ENR1, 0u, APB1ENR1_PWREN);
    (void)REG32(RCC_APB1ENR1);
#if defined(EQ_CLOCK_SOURCE_HSE)
#if EQ_CLOCK_HSE_BYPASS
    eq_modify(RCC_CR, 0u, CR_HSEBYP);
#endif
    eq_modify(RCC_CR, 0u, CR_HSEON);
    if (!eq_wait_field(RCC_CR, CR_HSERDY, CR_HSERDY)) {
        return fall_back(EQ_CLOCK_FAIL_SOURCE);
    }
#elif !defined(EQ_CLOCK_SOURCE_MSI)
    eq_modify(RCC_CR, 0u, CR_HSION);
    if (!eq_wait_field(RCC_CR, CR_HSIRDY, CR_HSIRDY)) {
        return fall_back(EQ_CLOCK_FAIL_SOURCE);
    }
#endif
    eq_modify(PWR_CR1, CR1_VOS_MASK, CR1_VOS_RANGE1);
    if (!eq_wait_field(PWR_SR2, SR2_VOSF, 0u)) {
        return fall_back(EQ_CLOCK_FAIL_VOLTAGE);
    }
#if EQ_CLOCK_BOOST
    eq_modify(RCC_CFGR, CFGR_HPRE_MASK, EQ_HPRE_BITS(2u) << 4); /* HCLK = SYSCLK / 2 first */
    eq_modify(PWR_CR5, CR5_R1MODE, 0u);                         /* Range 1 boost */
#endif
    eq_modify(FLASH_ACR, 0xFu, EQ_CLOCK_FLASH_WS);
    if ((REG32(FLASH_ACR) & 0xFu) != EQ_CLOCK_FLASH_WS) {
        return fall_back(EQ_CLOCK_FAIL_FLASH);
    }
    eq_modify(FLASH_ACR, 0u, (EQ_CLOCK_PREFETCH ? ACR_PRFTEN : 0u) |
                                 (EQ_CLOCK_ART_ICACHE ? ACR_ICEN : 0u) |
                                 (EQ_CLOCK_ART_DCACHE ? ACR_DCEN : 0u));
    eq_modify(RCC_CR, CR_PLLON, 0u);
    if (!eq_wait_field(RCC_CR, CR_PLLRDY, 0u)) {
        return fall_back(EQ_CLOCK_FAIL_PLL);
    }
    REG32(RCC_PLLCFGR) = PLL_BITS;
    eq_modify(RCC_CR, 0u, CR_PLLON);
    if (!eq_wait_field(RCC_CR, CR_PLLRDY, CR_PLLRDY)) {
        return fall_back(EQ_CLOCK_FAIL_PLL);
    }
    eq_modify(RCC_CFGR, CFGR_PPRE_MASK,
              (EQ_PPRE_BITS(EQ_CLOCK_APB1_DIV) << 8) | (EQ_PPRE_BITS(EQ_CLOCK_APB2_DIV) << 11));
    eq_modify(RCC_CFGR, CFGR_SW_MASK, CFGR_SW_PLL);
    if (!eq_wait_field(RCC_CFGR, CFGR_SWS_MASK, CFGR_SW_PLL << 2)) {
        return fall_back(EQ_CLOCK_FAIL_SWITCH);
    }
#if EQ_CLOCK_BOOST
    /* >= 1 us at HCLK = SYSCLK/2 before the AHB prescaler goes to its target (RM0432). */
    for (uint32_t i = 0; i < EQ_CLOCK_HZ / 2000000u; ++i) {
        __asm volatile("nop");
    }
#endif
    eq_modify(RCC_CFGR, CFGR_HPRE_MASK, EQ_HPRE_BITS(EQ_CLOCK_AHB_DIV) << 4);
    return EQ_CLOCK_OK;
}
