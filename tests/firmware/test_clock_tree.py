"""Clock-tree startup of every STM32/nRF board, executed under the unicorn instruction emulator.

The linked echo firmware runs from its reset vector to the first UART poll in main. The
peripheral space is a register file whose reset values and ready bits (tests/helpers_mcu.py,
per family from the manuals) follow the enable bits the firmware writes, like the silicon's. The tests check the recorded write sequence against
each reference manual's procedure and the final register values against values composed here
from the RM field definitions (bit positions and encodings written out below, not taken from
the firmware or edgeq's generator), after checking the board config's operating point against
the RM/datasheet limits.
"""

from __future__ import annotations

import struct

import pytest
from helpers_device import build_echo
from helpers_mcu import MODELS, StartupRun, run_startup

from edgeq.device import protocol as P
from edgeq.toolchain.boards import Board, list_boards, resolve_target


def bits(value: int, hi: int, lo: int) -> int:
    """``value`` placed in register field [hi:lo] (fails if it does not fit)."""
    assert 0 <= value < 1 << (hi - lo + 1), (value, hi, lo)
    return value << lo


def field(reg: int, hi: int, lo: int) -> int:
    return (reg >> lo) & ((1 << (hi - lo + 1)) - 1)


HPRE = {1: 0b0000, 2: 0b1000, 4: 0b1001, 8: 0b1010, 16: 0b1011}  # AHB prescaler field
PPRE = {1: 0b000, 2: 0b100, 4: 0b101, 8: 0b110, 16: 0b111}  # APB prescaler field
SCB_CPACR, FPCCR, SCB_CCR, ICIALLU, DCISW = (0xE000ED88, 0xE000EF34, 0xE000ED14, 0xE000EF50,
                                             0xE000EF60)

CLOCKED = [b.name for b in list_boards() if b.clock.configured]
MARKED = [b.name for b in list_boards() if b.marker is not None]


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = build_echo(name, tmp_path_factory.mktemp(name) / "fw", clock_setup=True,
                                     link="uart")  # netduinoplus2 defaults to semihosting
        return cache[name]
    return get


def boot(fw, broken: set[int] = frozenset()) -> StartupRun:
    regs = MODELS[fw.board.clock.tree](fw.board)
    regs.broken = set(broken)
    return run_startup(fw, regs)


def uart_text(run: StartupRun, tx_addr: int) -> bytes:
    return bytes(w.value & 0xFF for w in run.regs.writes if w.addr == tx_addr)


def brr(run: StartupRun, board: Board, *, after: int = 0) -> int:
    """The last baud-register write; it must come after recorded write ``after``."""
    off = 0x08 if board.uart_driver == "stm32_usart_v1" else 0x0C
    idx = [i for i, w in enumerate(run.regs.writes) if w.addr == board.uart_base + off]
    assert idx and idx[-1] > after, "the UART baud divisor was set before the clock switch"
    return run.regs.writes[idx[-1]].value


def usart_div(clock_hz: int, baud: int, lpuart: bool) -> int:
    """RM: USART (16x oversampling) BRR = f_ck / baud; LPUART BRR = 256 x f_ck / baud."""
    return round(256 * clock_hz / baud) if lpuart else round(clock_hz / baud)


# ------------------------------------------------------------------------------------------
# What `edgeq boards` claims as verified in emulation is what this module (and the QEMU tests)
# check for that board.

COVERED = {
    "clock-tree": set(CLOCKED), "uart-baud": set(CLOCKED), "fpu": set(CLOCKED),
    "flash-ws": {"nucleo-f446re", "stm32f4-discovery", "netduinoplus2", "nucleo-l4r5zi",
                 "nucleo-h743zi"},
    "boost-mode": {"nucleo-l4r5zi"}, "over-drive": {"nucleo-f446re"}, "vos": {"nucleo-h743zi"},
    "m7-caches": {"nucleo-h743zi"},
    "marker-pin": set(MARKED),
    "protocol-qemu": {b.name for b in list_boards() if b.emulated},  # tests/device/test_qemu_*
}


def test_verified_claims_match_the_tests():
    for b in list_boards():
        claimed = set(b.verified_emulation)
        assert claimed <= set(COVERED), (b.name, claimed - set(COVERED))
        covered = {claim for claim, names in COVERED.items() if b.name in names}
        assert claimed == covered, b.name
        assert b.verified_hardware == ()  # nothing has run on a real board yet


# ------------------------------------------------------------------------------------------
# The operating points against the datasheet/RM limits (independent of the firmware).


def test_every_real_stm32_and_nrf_board_has_a_clock_tree():
    silicon = {b.name for b in list_boards() if not (b.qemu_machine or "").startswith("mps2")}
    assert silicon == set(CLOCKED)
    expect = {"nucleo-l4r5zi": 120, "nucleo-f446re": 180, "stm32f4-discovery": 168,
              "netduinoplus2": 168, "nucleo-h743zi": 400, "nrf52840dk": 64}
    assert {n: resolve_target(board=n).clock_hz // 1_000_000 for n in CLOCKED} == expect


@pytest.mark.parametrize("name", ["nucleo-f446re", "stm32f4-discovery", "netduinoplus2"])
def test_stm32f4_operating_point_within_rm_limits(name):
    c, b = resolve_target(board=name).clock, resolve_target(board=name)
    f446 = name == "nucleo-f446re"
    vco_in = c.source_hz / c.pll_m
    assert (0.95e6 if f446 else 1e6) <= vco_in <= (2.1e6 if f446 else 2e6)
    assert 100e6 <= vco_in * c.pll_n <= 432e6 and 50 <= c.pll_n <= 432 and 2 <= c.pll_m <= 63
    assert c.pll_p in (2, 4, 6, 8) and 2 <= c.pll_q <= 15
    sysclk = vco_in * c.pll_n / c.pll_p
    hclk = sysclk / c.ahb_div
    assert hclk == b.clock_hz <= (180e6 if f446 else 168e6)
    assert hclk / c.apb1_div <= (45e6 if f446 else 42e6)
    assert hclk / c.apb2_div <= (90e6 if f446 else 84e6)
    # Flash wait states at 2.7-3.6 V: one per started 30 MHz of HCLK (RM0090 table 10, RM0390
    # table 5), and scale 1 + over-drive above 168 MHz on the F446.
    assert c.flash_ws == -(-hclk // 30e6) - 1
    assert c.voltage == ("scale1-overdrive" if hclk > 168e6 else "scale1")


def test_stm32l4r5_operating_point_within_rm_limits():
    b = resolve_target(board="nucleo-l4r5zi")
    c = b.clock
    vco_in = c.source_hz / c.pll_m
    assert 2.66e6 <= vco_in <= 16e6 and 8 <= c.pll_n <= 127 and 1 <= c.pll_m <= 16
    assert 64e6 <= vco_in * c.pll_n <= 344e6 and c.pll_r in (2, 4, 6, 8)
    assert vco_in * c.pll_n / c.pll_r / c.ahb_div == b.clock_hz <= 120e6
    # Range 1 boost above 80 MHz; its table: 20 MHz per wait state (RM0432 table 12).
    assert c.voltage == "range1-boost" and c.flash_ws == -(-b.clock_hz // 20e6) - 1 == 5


def test_stm32h743_operating_point_within_rm_limits():
    b = resolve_target(board="nucleo-h743zi")
    c = b.clock
    ref = c.source_hz / c.pll_m
    assert 1e6 <= ref <= 16e6 and 192e6 <= ref * c.pll_n <= 836e6  # wide VCO
    assert c.pll_p % 2 == 0 and ref * c.pll_n / c.pll_p == b.clock_hz <= 400e6  # VOS1 maximum
    aclk = b.clock_hz / c.ahb_div
    assert aclk <= 200e6 and aclk / c.apb1_div <= 100e6 and aclk / c.apb2_div <= 100e6
    # VOS1 flash table (RM0433 table 17): <=70 0 WS, <=140 1, <=185 2 (delay 1), <=210 2 (2).
    ws, delay = next((w, d) for lim, w, d in ((70e6, 0, 0), (140e6, 1, 1), (185e6, 2, 1),
                                              (210e6, 2, 2), (225e6, 3, 2)) if aclk <= lim)
    assert (c.flash_ws, c.flash_delay, c.voltage) == (ws, delay, "vos1")


# ------------------------------------------------------------------------------------------
# The startup sequences, emulated.


@pytest.mark.parametrize("name", ["nucleo-f446re", "stm32f4-discovery", "netduinoplus2"])
def test_stm32f4_startup_sequence(firmware, name):
    fw = firmware(name)
    b, c = fw.board, fw.board.clock
    run = boot(fw)
    r = run.regs
    assert run.reached[:3] == ["eq_clock_init", "main", "eq_uart_init"]
    CR, PLLCFGR, CFGR, ACR, PWR_CR = 0x40023800, 0x40023804, 0x40023808, 0x40023C00, 0x40007000
    hse = c.source == "hse"
    osc_on = r.write_index(CR, 1 << 16, 1 << 16) if hse else r.write_index(CR, 1, 1)
    pwren = r.write_index(0x40023840, 1 << 28, 1 << 28)
    vos = r.write_index(PWR_CR, 0xC000, 0xC000) if c.voltage == "scale1-overdrive" else \
        r.write_index(PWR_CR, 0x4000, 0x4000)
    pll_cfg = r.write_index(PLLCFGR, 0x3F, c.pll_m)
    pll_on = r.write_index(CR, 1 << 24, 1 << 24)
    latency = r.write_index(ACR, 0xF, c.flash_ws)
    switch = r.write_index(CFGR, 0x3, 0b10)
    assert osc_on < pwren < vos < pll_cfg < pll_on < latency < switch
    assert r.value_before(pll_cfg, CR) & (1 << 24) == 0, "PLL factors written while the PLL runs"
    assert r.value_before(vos, CR) & (1 << 24) == 0, "VOS written while the PLL runs"
    if c.voltage == "scale1-overdrive":  # RM0390 5.1.4: ODEN/ODRDY, then ODSWEN/ODSWRDY
        oden = r.write_index(PWR_CR, 1 << 16, 1 << 16)
        odsw = r.write_index(PWR_CR, 1 << 17, 1 << 17)
        assert pll_on < oden < odsw < latency
    # the bus prescalers are in place before SYSCLK switches; PLLRDY was polled before it
    presc = r.write_index(CFGR, 0xFCF0, bits(HPRE[c.ahb_div], 7, 4) | bits(PPRE[c.apb1_div], 12, 10)
                          | bits(PPRE[c.apb2_div], 15, 13))
    assert presc < switch
    rdy_polls = [a for a in r.reads if a.addr == CR and a.value & (1 << 25)]
    assert rdy_polls and rdy_polls[0].icount < r.writes[switch].icount
    # SWS read back as PLL after the switch
    assert any(a.addr == CFGR and field(a.value, 3, 2) == 0b10 and a.icount >= r.writes[switch].icount
               for a in r.reads)
    # final values composed from the RM fields
    expect_pll = (bits(c.pll_m, 5, 0) | bits(c.pll_n, 14, 6) | bits(c.pll_p // 2 - 1, 17, 16)
                  | bits(int(hse), 22, 22) | bits(c.pll_q, 27, 24))
    pll_fields = 0x0F437FFF | (0x70000000 if c.pll_r else 0)
    if c.pll_r:
        expect_pll |= bits(c.pll_r, 30, 28)
    assert r.value(PLLCFGR) & pll_fields == expect_pll
    assert r.value(PLLCFGR) & ~pll_fields == 0x24003010 & ~pll_fields  # reserved bits kept
    assert r.value(ACR) == bits(c.flash_ws, 3, 0) | bits(1, 8, 8) | bits(1, 9, 9) | bits(1, 10, 10)
    assert field(r.value(CFGR), 1, 0) == 0b10
    assert r.value(CR) & (1 << 24)
    # FPU: CP10/CP11 full access, automatic + lazy FP state preservation
    assert field(r.value(SCB_CPACR), 23, 20) == 0xF and field(r.value(FPCCR), 31, 30) == 0b11
    # UART: divisor for the APB clock the USART sits on, written after the switch
    sysclk = c.source_hz // c.pll_m * c.pll_n // c.pll_p
    apb = {"apb1": c.apb1_div, "apb2": c.apb2_div}[b.raw["uart"]["bus"]]
    assert brr(run, b, after=switch) == usart_div(sysclk // c.ahb_div // apb, b.uart_baud, False)
    assert uart_text(run, b.uart_base + 0x04) == b""  # no failure report


def test_stm32l4r5_startup_sequence(firmware):
    fw = firmware("nucleo-l4r5zi")
    b, c = fw.board, fw.board.clock
    run = boot(fw)
    r = run.regs
    CR, CFGR, PLLCFGR, ACR = 0x40021000, 0x40021008, 0x4002100C, 0x40022000
    PWR_CR1, PWR_CR5 = 0x40007000, 0x40007080
    pwren = r.write_index(0x40021058, 1 << 28, 1 << 28)
    hsi = r.write_index(CR, 1 << 8, 1 << 8)
    vos = r.write_index(PWR_CR1, 0x600, 0x200)
    ahb2 = r.write_index(CFGR, 0xF0, bits(HPRE[2], 7, 4))  # RM0432 boost step 1: HCLK/2
    boost = r.write_index(PWR_CR5, 1 << 8, 0)  # step 2: R1MODE = 0
    latency = r.write_index(ACR, 0xF, c.flash_ws)  # step 3
    pll_cfg = r.write_index(PLLCFGR, 0x3, 0b10)
    pll_on = r.write_index(CR, 1 << 24, 1 << 24)
    switch = r.write_index(CFGR, 0x3, 0b11)  # step 4
    ahb1 = r.write_index(CFGR, 0xF0, bits(HPRE[c.ahb_div], 7, 4), start=switch)  # step 5
    assert pwren < hsi < vos < ahb2 < boost < latency < pll_cfg < pll_on < switch < ahb1
    assert r.value_before(pll_cfg, CR) & (1 << 24) == 0, "PLL factors written while PLL runs"
    # VOSF polled clear before the boost step; >= 1 us at HCLK = 60 MHz between switch and /1
    assert any(a.addr == 0x40007014 and not a.value & (1 << 10) and a.icount < r.writes[ahb2].icount
               for a in r.reads)
    assert r.writes[ahb1].icount - r.writes[switch].icount >= (c.pll_hz() // 2) // 1_000_000
    expect_pll = (bits(0b10, 1, 0) | bits(c.pll_m - 1, 7, 4) | bits(c.pll_n, 14, 8)
                  | bits(1, 24, 24) | bits(c.pll_r // 2 - 1, 26, 25))
    assert r.value(PLLCFGR) == expect_pll
    assert c.source_hz // c.pll_m * c.pll_n // c.pll_r == 120_000_000
    assert r.value(ACR) == bits(5, 3, 0) | bits(1, 8, 8) | bits(1, 9, 9) | bits(1, 10, 10)
    assert r.value(PWR_CR5) & (1 << 8) == 0 and field(r.value(PWR_CR1), 10, 9) == 0b01
    assert field(r.value(CFGR), 1, 0) == 0b11 and field(r.value(CFGR), 7, 4) == HPRE[1]
    assert field(r.value(SCB_CPACR), 23, 20) == 0xF and field(r.value(FPCCR), 31, 30) == 0b11
    assert brr(run, b, after=ahb1) == usart_div(120_000_000, b.uart_baud, True) == 266_667


def test_stm32h743_startup_sequence_and_m7_caches(firmware):
    fw = firmware("nucleo-h743zi")
    b, c = fw.board, fw.board.clock
    run = boot(fw)
    r = run.regs
    CR3, D3CR, CR, CFGR, ACR = 0x5802480C, 0x58024818, 0x58024400, 0x58024410, 0x52002000
    CKSEL, PLLCFGR, DIVR, D1, D2, D3 = (0x58024428, 0x5802442C, 0x58024430, 0x58024418,
                                        0x5802441C, 0x58024420)
    supply = r.write_index(CR3, 0x7, 0b010)  # LDOEN, no bypass, SCUEN cleared
    vos = r.write_index(D3CR, 3 << 14, 3 << 14)
    latency = r.write_index(ACR, 0x3F, bits(c.flash_ws, 3, 0) | bits(c.flash_delay, 5, 4))
    divr = r.write_index(DIVR, 0x1FF, c.pll_n - 1)
    pll_on = r.write_index(CR, 1 << 24, 1 << 24)
    hpre = r.write_index(D1, 0xF, HPRE[c.ahb_div])
    switch = r.write_index(CFGR, 0x7, 0b011)
    assert supply < vos < latency < divr < pll_on < hpre < switch
    assert r.value_before(divr, CR) & (1 << 24) == 0
    ref = c.source_hz // c.pll_m
    assert r.value(CKSEL) & 0x3F3 == bits(0b00, 1, 0) | bits(c.pll_m, 9, 4)
    assert r.value(DIVR) == (bits(c.pll_n - 1, 8, 0) | bits(c.pll_p - 1, 15, 9)
                             | bits(c.pll_q - 1, 22, 16) | bits(c.pll_r - 1, 30, 24))
    rge = 0b11 if 8e6 <= ref <= 16e6 else None
    assert field(r.value(PLLCFGR), 3, 2) == rge and field(r.value(PLLCFGR), 1, 0) == 0
    assert field(r.value(PLLCFGR), 16, 16) == 1
    assert r.value(ACR) & 0x3F == bits(2, 3, 0) | bits(2, 5, 4)
    assert field(r.value(D1), 11, 8) == 0 and field(r.value(D1), 3, 0) == HPRE[2]
    assert field(r.value(D2), 6, 4) == PPRE[2] and field(r.value(D2), 10, 8) == PPRE[2]
    assert field(r.value(D3), 6, 4) == PPRE[2]
    assert field(r.value(CFGR), 2, 0) == 0b011
    # Cortex-M7 caches: I-cache invalidated then enabled; D-cache invalidated set by set, way by
    # way (128 sets x 4 ways, set at bit 5, way at bit 30), then enabled; both before the clock.
    ic_inv = r.write_index(ICIALLU, 0, 0)
    ic_on = r.write_index(SCB_CCR, 1 << 17, 1 << 17)
    dc_ops = [w.value for w in r.writes if w.addr == DCISW]
    assert sorted(dc_ops) == sorted((way << 30) | (s << 5) for s in range(128) for way in range(4))
    dc_on = r.write_index(SCB_CCR, 1 << 16, 1 << 16)
    last_dcisw = max(i for i, w in enumerate(r.writes) if w.addr == DCISW)
    assert ic_inv < ic_on and last_dcisw < dc_on < supply
    assert field(r.value(SCB_CPACR), 23, 20) == 0xF and field(r.value(FPCCR), 31, 30) == 0b11
    assert brr(run, b, after=switch) == usart_div(100_000_000, b.uart_baud, False) == 868


def test_nrf52840_hfxo_and_cache(firmware):
    fw = firmware("nrf52840dk")
    run = boot(fw)
    r = run.regs
    clear = r.write_index(0x40000100, 1, 0)
    start = r.write_index(0x40000000, 1, 1)
    cache = r.write_index(0x4001E540, 1, 1)
    assert cache < clear < start
    assert any(a.addr == 0x4000040C and a.value & 0x10001 == 0x10001 for a in r.reads)
    # UARTE BAUDRATE for 115200 from the product specification's table (not the clock)
    assert [w.value for w in r.writes if w.addr == fw.board.uart_base + 0x524] == [0x01D7E000]
    assert r.dma_bytes == b""  # no failure report
    assert field(r.value(SCB_CPACR), 23, 20) == 0xF


# ------------------------------------------------------------------------------------------
# A ready bit that never comes: bounded wait, fall back to the reset clock, say so over UART.


FAILURES = [  # board, status register, ready bit that never comes, reported step
    ("nucleo-l4r5zi", 0x40021000, 1 << 10, "oscillator not ready"),  # HSIRDY
    ("nucleo-l4r5zi", 0x40007014, 1 << 10, "regulator not ready"),  # VOSF stays busy
    ("nucleo-l4r5zi", 0x40021000, 1 << 25, "PLL did not lock"),  # PLLRDY
    ("nucleo-f446re", 0x40007004, 1 << 16, "regulator not ready"),  # ODRDY
    ("nucleo-f446re", 0x40007004, 1 << 17, "regulator not ready"),  # ODSWRDY
    ("nucleo-f446re", 0x40023808, 0x3 << 2, "SYSCLK switch not confirmed"),  # SWS stays HSI
    ("stm32f4-discovery", 0x40023800, 1 << 17, "oscillator not ready"),  # HSERDY
    ("stm32f4-discovery", 0x40023800, 1 << 25, "PLL did not lock"),
    ("nucleo-h743zi", 0x58024804, 1 << 13, "regulator not ready"),  # ACTVOSRDY
    ("nucleo-h743zi", 0x58024818, 1 << 13, "regulator not ready"),  # VOSRDY
    ("nucleo-h743zi", 0x58024400, 1 << 25, "PLL did not lock"),  # PLL1RDY
]
RESET_SW = {"stm32f4": (0x40023808, 0x3), "stm32l4": (0x40021008, 0x3),
            "stm32h7": (0x58024410, 0x7)}  # CFGR and its SW field: 0 = reset source


@pytest.mark.parametrize("name,status,ready,reason", FAILURES,
                         ids=[f"{f[0]}-{f[3].split()[0]}-{f[2]:#x}" for f in FAILURES])
def test_missing_ready_bit_times_out_and_falls_back(firmware, name, status, ready, reason):
    fw = firmware(name)
    b = fw.board
    regs = MODELS[b.clock.tree](b)
    regs.never_ready(status, ready)
    run = run_startup(fw, regs)
    r = run.regs
    assert "main" in run.reached  # did not hang
    cfgr, sw_mask = RESET_SW[b.clock.tree]
    assert r.value(cfgr) & sw_mask == 0  # SYSCLK back on the reset source
    if b.clock.tree == "stm32h7":  # bus prescalers undivided
        assert r.value(0x58024418) & 0xF7F == 0 and r.value(0x5802441C) & 0x770 == 0
    else:
        assert field(r.value(cfgr), 15, 4) == 0
    tx = b.uart_base + (0x04 if b.uart_driver == "stm32_usart_v1" else 0x28)
    text = uart_text(run, tx)
    assert text.startswith(b"\x00edgeq: clock setup failed (" + reason.encode() + b")")
    assert f"reset clock, {b.reset_clock_hz} Hz".encode() in text and text.endswith(b"\r\n\x00")
    # the baud divisor follows the reset clock with undivided buses
    assert brr(run, b) == usart_div(b.reset_clock_hz, b.uart_baud, b.uart_lpuart)
    # the wait was bounded: the ready bit was polled many times, then given up
    polls = sum(1 for a in r.reads if a.addr == status)
    assert 10_000 <= polls <= 1_000_000


def test_hfxo_that_never_starts_reports_and_keeps_running(firmware):
    fw = firmware("nrf52840dk")
    run = boot(fw, broken={0x40000100})
    assert "main" in run.reached
    # UARTE transmits by EasyDMA from RAM: the bytes at TXD.PTR on each TASKS_STARTTX
    assert bytes(run.regs.dma_bytes) == (b"\x00edgeq: clock setup failed (oscillator not ready);"
                                         b" running at the reset clock, 64000000 Hz\r\n\x00")


# ------------------------------------------------------------------------------------------
# The timing marker brackets exactly the counted window.


@pytest.mark.parametrize("name", MARKED)
def test_marker_pin_brackets_the_counted_invoke(firmware, name):
    fw = firmware(name)
    b, m = fw.board, fw.board.marker
    regs = MODELS[b.clock.tree](b)
    run = run_startup(fw, regs)
    # output mode and port clock from the board config's port/pin (RM GPIO register layout)
    if b.clock.tree == "nrf52":
        assert regs.value(0x50000300 + 0x518) == 1 << m.pin  # P1.DIRSET
    else:
        port = ord(m.port[1]) - ord("A")
        gpio = {"stm32f4": 0x40020000, "stm32l4": 0x48000000,
                "stm32h7": 0x58020000}[b.clock.tree] + 0x400 * port
        assert field(regs.value(gpio), 2 * m.pin + 1, 2 * m.pin) == 0b01
        enr = {"stm32f4": 0x40023830, "stm32l4": 0x4002104C, "stm32h7": 0x580244E0}[b.clock.tree]
        assert regs.value(enr) & (1 << port)
    # now drive one INVOKE (1 warm-up, 2 runs) through the firmware's dispatcher
    run.call("eq_app_init")
    run.mark_calls("edgeq_model_invoke")
    frame = P.encode_frame(P.CMD_INVOKE, 7, struct.pack("<HH", 1, 2))  # with the delimiter
    rx = run.symbols["g_rx"][0]  # main's receiver state, fed byte by byte as main does
    out = b.ram.origin + b.ram.length - 0x4000  # unused RAM above the stack
    run.call("eqp_rx_reset", rx)
    regs.log.clear()
    n = 0
    for byte in frame:
        event = run.call("eqp_rx_push", rx, byte)
        if event != 0:  # EQP_RX_NONE
            n = run.call("eq_app_handle_rx", rx, event, out, 0x400)
    assert n > 0
    reply = P.decode_frame(bytes(run.uc.mem_read(out, n)).rstrip(b"\x00"))
    assert reply.code == P.CMD_INVOKE | P.REPLY and reply.payload[0] == 0  # status OK
    seq = [(a.kind, a.addr, a.value) for a in regs.log]
    set_w = [i for i, (kind, a, v) in enumerate(seq) if kind == "w" and a == m.set_addr
             and v == m.set_value]
    clr_w = [i for i, (kind, a, v) in enumerate(seq) if kind == "w" and a == m.clear_addr
             and v == m.clear_value]
    starts = [i for i, (kind, a, v) in enumerate(seq) if kind == "w" and a == 0xE0001004]
    reads = [i for i, (kind, a, v) in enumerate(seq) if kind == "r" and a == 0xE0001004]
    invokes = [i for i, (kind, _a, _v) in enumerate(seq) if kind == "call"]
    assert len(set_w) == len(clr_w) == 2 and len(invokes) == 3  # warm-up is not marked
    for k in range(2):  # high -> counter zeroed -> invoke -> counter read -> low
        assert set_w[k] < starts[k] < invokes[k + 1] < reads[k] < clr_w[k]
        assert starts[k] - set_w[k] == 1 and clr_w[k] - reads[k] == 1  # nothing else between
    assert invokes[0] < set_w[0]


def test_mlperf_energy_timestamp_is_one_falling_edge_on_the_marker(tmp_path):
    fw = build_echo("nucleo-l4r5zi", tmp_path / "ml", protocol="mlperf",
                    defines=("EQ_MLPERF_ENERGY_MODE=1",))
    b, m = fw.board, fw.board.marker
    regs = MODELS[b.clock.tree](b)
    run = run_startup(fw, regs)
    text = uart_text(run, b.uart_base + 0x28)
    assert b"m-timestamp-mode-energy" in text and b"e-[clock" not in text
    regs.log.clear()
    run.call("eq_timestamp_marker")  # what the `timestamp` command calls in energy mode
    marker = [(a.value, a.icount) for a in regs.log if a.kind == "w" and a.addr == m.set_addr]
    assert [v for v, _ in marker] == [m.set_value, m.clear_value]  # high, then low: one edge
