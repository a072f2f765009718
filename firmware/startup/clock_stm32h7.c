/* STM32H742/743/750/753 (RM0433) clock tree: CPU = PLL1P, VOS1.
 *
 * Order (RM0433 power control and RCC chapters): supply configuration (LDO) once after reset,
 * ACTVOSRDY -> VOS1, VOSRDY -> oscillator ready -> flash wait states + programming delay for
 * the AXI clock (read back) -> PLL1 source/M, N/P/Q/R and range written while PLL1 is off ->
 * PLL1ON, PLL1RDY -> D1/D2/D3 prescalers (HPRE, APBs) -> SW = PLL1, SWS confirms. */
#include "clock_util.h"

#define PWR 0x58024800u
#define PWR_CSR1 (PWR + 0x04u)
#define PWR_CR3 (PWR + 0x0Cu)
#define PWR_D3CR (PWR + 0x18u)
#define RCC 0x58024400u
#define RCC_CR (RCC + 0x00u)
#define RCC_CFGR (RCC + 0x10u)
#define RCC_D1CFGR (RCC + 0x18u)
#define RCC_D2CFGR (RCC + 0x1Cu)
#define RCC_D3CFGR (RCC + 0x20u)
#define RCC_PLLCKSELR (RCC + 0x28u)
#define RCC_PLLCFGR (RCC + 0x2Cu)
#define RCC_PLL1DIVR (RCC + 0x30u)
#define FLASH_ACR 0x52002000u

#define CR3_BYPASS (1u << 0)
#define CR3_LDOEN (1u << 1)
#define CR3_SCUEN (1u << 2)
#define CSR1_ACTVOSRDY (1u << 13)
#define D3CR_VOS_MASK (3u << 14)
#define D3CR_VOS1 (3u << 14)
#define D3CR_VOSRDY (1u << 13)
#define CR_HSION (1u << 0)
#define CR_HSIRDY (1u << 2)
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLL1ON (1u << 24)
#define CR_PLL1RDY (1u << 25)
#define CFGR_SW_MASK 0x7u
#define CFGR_SWS_MASK (0x7u << 3)
#define CFGR_SW_PLL1 0x3u

#if defined(EQ_CLOCK_SOURCE_HSE)
#define PLL_SRC 2u
#else
#define PLL_SRC 0u /* HSI */
#endif
/* PLL1 input range PLL1RGE [3:2] from the reference clock source/M: 1-2, 2-4, 4-8, 8-16 MHz. */
#define PLL_REF_HZ (EQ_CLOCK_SOURCE_HZ / EQ_CLOCK_PLL_M)
#define PLL_RGE (PLL_REF_HZ < 2000000u ? 0u : PLL_REF_HZ < 4000000u ? 1u : PLL_REF_HZ < 8000000u ? 2u : 3u)
/* PLLCFGR: PLL1FRACEN [0] = 0, PLL1VCOSEL [1] = 0 (wide VCO), PLL1RGE [3:2], DIVP1EN [16],
 * DIVQ1EN [17], DIVR1EN [18]. */
#define PLLCFGR_MASK (0xFu | (7u << 16))
#define PLLCFGR_BITS ((PLL_RGE << 2) | (1u << 16) | (1u << 17) | (1u << 18))
#define PLL1DIVR_BITS                                                                            \
    ((EQ_CLOCK_PLL_N - 1u) | ((EQ_CLOCK_PLL_P - 1u) << 9) | ((EQ_CLOCK_PLL_Q - 1u) << 16) |      \
     ((EQ_CLOCK_PLL_R - 1u) << 24))

static uint32_t fall_back(uint32_t step) {
    eq_modify(RCC_CFGR, CFGR_SW_MASK, 0u); /* SYSCLK = HSI */
    (void)eq_wait_field(RCC_CFGR, CFGR_SWS_MASK, 0u);
    eq_modify(RCC_D1CFGR, 0xF7Fu, 0u); /* D1CPRE, HPRE, D1PPRE undivided */
    eq_modify(RCC_D2CFGR, 0x770u, 0u);
    eq_modify(RCC_D3CFGR, 0x70u, 0u);
    eq_modify(RCC_CR, CR_PLL1ON, 0u);
    return step;
}

uint32_t eq_clock_init(void) {
    eq_modify(PWR_CR3, CR3_BYPASS | CR3_SCUEN, CR3_LDOEN); /* LDO supply; locks until reset */
    if (!eq_wait_field(PWR_CSR1, CSR1_ACTVOSRDY, CSR1_ACTVOSRDY)) {
        return fall_back(EQ_CLOCK_FAIL_VOLTAGE);
    }
    eq_modify(PWR_D3CR, D3CR_VOS_MASK, D3CR_VOS1);
    if (!eq_wait_field(PWR_D3CR, D3CR_VOSRDY, D3CR_VOSRDY)) {
        return fall_back(EQ_CLOCK_FAIL_VOLTAGE);
    }
#if defined(EQ_CLOCK_SOURCE_HSE)
#if EQ_CLOCK_HSE_BYPASS
    eq_modify(RCC_CR, 0u, CR_HSEBYP);
#endif
    eq_modify(RCC_CR, 0u, CR_HSEON);
    if (!eq_wait_field(RCC_CR, CR_HSERDY, CR_HSERDY)) {
        return fall_back(EQ_CLOCK_FAIL_SOURCE);
    }
#else
    eq_modify(RCC_CR, 0u, CR_HSION);
    if (!eq_wait_field(RCC_CR, CR_HSIRDY, CR_HSIRDY)) {
        return fall_back(EQ_CLOCK_FAIL_SOURCE);
    }
#endif
    eq_modify(FLASH_ACR, 0x3Fu, EQ_CLOCK_FLASH_WS | (EQ_CLOCK_FLASH_DELAY << 4));
    if ((REG32(FLASH_ACR) & 0x3Fu) != (EQ_CLOCK_FLASH_WS | (EQ_CLOCK_FLASH_DELAY << 4))) {
        return fall_back(EQ_CLOCK_FAIL_FLASH);
    }
    eq_modify(RCC_CR, CR_PLL1ON, 0u);
    if (!eq_wait_field(RCC_CR, CR_PLL1RDY, 0u)) {
        return fall_back(EQ_CLOCK_FAIL_PLL);
    }
    eq_modify(RCC_PLLCKSELR, 0x3u | (0x3Fu << 4), PLL_SRC | (EQ_CLOCK_PLL_M << 4));
    REG32(RCC_PLL1DIVR) = PLL1DIVR_BITS;
    eq_modify(RCC_PLLCFGR, PLLCFGR_MASK, PLLCFGR_BITS);
    eq_modify(RCC_CR, 0u, CR_PLL1ON);
    if (!eq_wait_field(RCC_CR, CR_PLL1RDY, CR_PLL1RDY)) {
        return fall_back(EQ_CLOCK_FAIL_PLL);
    }
    /* D1CPRE /1 (CPU = SYSCLK), HPRE = AHB/AXI divider, D1PPRE (APB3); D2PPRE1/2; D3PPRE. */
    eq_modify(RCC_D1CFGR, 0xF7Fu,
              EQ_HPRE_BITS(EQ_CLOCK_AHB_DIV) | (EQ_PPRE_BITS(EQ_CLOCK_APB1_DIV) << 4));
    eq_modify(RCC_D2CFGR, 0x770u,
              (EQ_PPRE_BITS(EQ_CLOCK_APB1_DIV) << 4) | (EQ_PPRE_BITS(EQ_CLOCK_APB2_DIV) << 8));
    eq_modify(RCC_D3CFGR, 0x70u, EQ_PPRE_BITS(EQ_CLOCK_APB1_DIV) << 4);
    eq_modify(RCC_CFGR, CFGR_SW_MASK, CFGR_SW_PLL1);
    if (!eq_wait_field(RCC_CFGR, CFGR_SWS_MASK, CFGR_SW_PLL1 << 3)) {
        return fall_back(EQ_CLOCK_FAIL_SWITCH);
    }
    return EQ_CLOCK_OK;
}
