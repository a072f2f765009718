/* STM32F405/F407 (RM0090) and STM32F446 (RM0390) clock tree: SYSCLK from the main PLL.
 *
 * Order (reference manual, "entering over-drive" and "increasing the CPU frequency"):
 * oscillator on and ready -> PWR clock, voltage scale 1 (written while the PLL is off) -> PLL
 * factors written while the PLL is off -> PLL on -> [F446: over-drive ODEN/ODRDY, then
 * ODSWEN/ODSWRDY] -> flash wait states (read back) + ART -> AHB/APB prescalers -> PLLRDY ->
 * SW = PLL, then SWS confirms. On a timeout the part is put back on HSI with undivided buses. */
#include "clock_util.h"

#define RCC 0x40023800u
#define RCC_CR (RCC + 0x00u)
#define RCC_PLLCFGR (RCC + 0x04u)
#define RCC_CFGR (RCC + 0x08u)
#define RCC_APB1ENR (RCC + 0x40u)
#define PWR_CR 0x40007000u
#define PWR_CSR 0x40007004u
#define FLASH_ACR 0x40023C00u

#define CR_HSION (1u << 0)
#define CR_HSIRDY (1u << 1)
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define APB1ENR_PWREN (1u << 28)
#define PWR_CR_VOS_SHIFT 14u
#define PWR_CR_ODEN (1u << 16)
#define PWR_CR_ODSWEN (1u << 17)
#define PWR_CSR_ODRDY (1u << 16)
#define PWR_CSR_ODSWRDY (1u << 17)
#define ACR_PRFTEN (1u << 8)
#define ACR_ICEN (1u << 9)
#define ACR_DCEN (1u << 10)
#define CFGR_SW_MASK 0x3u
#define CFGR_SWS_MASK 0xCu
#define CFGR_SW_PLL 0x2u
#define CFGR_BUS_MASK 0xFCF0u /* HPRE [7:4], PPRE1 [12:10], PPRE2 [15:13] */

/* PLLCFGR: PLLM [5:0], PLLN [14:6], PLLP [17:16] = P/2 - 1, PLLSRC [22], PLLQ [27:24],
 * (F446) PLLR [30:28]; PLLR is written only when the board config gives it. */
#if EQ_CLOCK_PLL_R > 0u
#define PLL_MASK 0x7F437FFFu
#define PLL_R_BITS (EQ_CLOCK_PLL_R << 28)
#else
#define PLL_MASK 0x0F437FFFu
#define PLL_R_BITS 0u
#endif
#if defined(EQ_CLOCK_SOURCE_HSE)
#define PLL_SRC_BITS (1u << 22)
#else
#define PLL_SRC_BITS 0u
#endif
#define PLL_BITS                                                                                 \
    (EQ_CLOCK_PLL_M | (EQ_CLOCK_PLL_N << 6) | ((EQ_CLOCK_PLL_P / 2u - 1u) << 16) | PLL_SRC_BITS | \
     (EQ_CLOCK_PLL_Q << 24) | PLL_R_BITS)

static uint32_t fall_back(uint32_t step) {
    eq_modify(RCC_CFGR, CFGR_SW_MASK, 0u); /* SYSCLK = HSI */
    (void)eq_wait_field(RCC_CFGR, CFGR_SWS_MASK, 0u);
    eq_modify(RCC_CFGR, CFGR_BUS_MASK, 0u); /* buses undivided: the UART runs at the reset clock */
    eq_modify(RCC_CR, CR_PLLON, 0u);
    return step; /* flash wait states stay raised: more than needed is always safe */
}

uint32_t eq_clock_init(void) {
#if defined(EQ_CLOCK_SOURCE_HSE)
#if EQ_CLOCK_HSE_BYPASS
    eq_modify(RCC_CR, 0u, CR_HSEBYP); /* external clock (ST-LINK MCO), written while HSE is off */
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
    eq_modify(RCC_APB1ENR, 0u, APB1ENR_PWREN);
    (void)REG32(RCC_APB1ENR); /* the PWR clock is on once this read returns */
#if EQ_CLOCK_OVERDRIVE
    eq_modify(PWR_CR, 3u << PWR_CR_VOS_SHIFT, 3u << PWR_CR_VOS_SHIFT); /* VOS[1:0] = scale 1 */
#else
    eq_modify(PWR_CR, 0u, 1u << PWR_CR_VOS_SHIFT); /* F405/F407 VOS bit: scale 1 */
#endif
    eq_modify(RCC_CR, CR_PLLON, 0u);
    if (!eq_wait_field(RCC_CR, CR_PLLRDY, 0u)) {
        return fall_back(EQ_CLOCK_FAIL_PLL);
    }
    eq_modify(RCC_PLLCFGR, PLL_MASK, PLL_BITS);
    eq_modify(RCC_CR, 0u, CR_PLLON);
#if EQ_CLOCK_OVERDRIVE
    eq_modify(PWR_CR, 0u, PWR_CR_ODEN);
    if (!eq_wait_field(PWR_CSR, PWR_CSR_ODRDY, PWR_CSR_ODRDY)) {
        return fall_back(EQ_CLOCK_FAIL_VOLTAGE);
    }
    eq_modify(PWR_CR, 0u, PWR_CR_ODSWEN);
    if (!eq_wait_field(PWR_CSR, PWR_CSR_ODSWRDY, PWR_CSR_ODSWRDY)) {
        return fall_back(EQ_CLOCK_FAIL_VOLTAGE);
    }
#endif
    eq_modify(FLASH_ACR, 0xFu, EQ_CLOCK_FLASH_WS);
    if ((REG32(FLASH_ACR) & 0xFu) != EQ_CLOCK_FLASH_WS) {
        return fall_back(EQ_CLOCK_FAIL_FLASH);
    }
    eq_modify(FLASH_ACR, 0u, (EQ_CLOCK_PREFETCH ? ACR_PRFTEN : 0u) |
                                 (EQ_CLOCK_ART_ICACHE ? ACR_ICEN : 0u) |
                                 (EQ_CLOCK_ART_DCACHE ? ACR_DCEN : 0u));
    eq_modify(RCC_CFGR, CFGR_BUS_MASK,
              (EQ_HPRE_BITS(EQ_CLOCK_AHB_DIV) << 4) | (EQ_PPRE_BITS(EQ_CLOCK_APB1_DIV) << 10) |
                  (EQ_PPRE_BITS(EQ_CLOCK_APB2_DIV) << 13));
    if (!eq_wait_field(RCC_CR, CR_PLLRDY, CR_PLLRDY)) {
        return fall_back(EQ_CLOCK_FAIL_PLL);
    }
    eq_modify(RCC_CFGR, CFGR_SW_MASK, CFGR_SW_PLL);
    if (!eq_wait_field(RCC_CFGR, CFGR_SWS_MASK, CFGR_SW_PLL << 2)) {
        return fall_back(EQ_CLOCK_FAIL_SWITCH);
    }
    return EQ_CLOCK_OK;
}
