"""Clock-tree startup per real board, measured under the unicorn instruction emulator.

For every board whose config has a [clock] tree: builds the echo firmware with the tree compiled
in, runs it from the reset vector to main's first UART poll (ready bits come after 3 polls), and
again with the PLL (nRF: HFXO) ready bit never coming. Prints the operating point, the
instructions spent in eq_clock_init, its register writes, the UART divisor, the time the
fallback path costs at the reset clock (instructions as a lower bound on cycles), and the speed
factor of the operating point over the reset clock (what a model gains in latency).

    PYTHONPATH=. .venv/bin/python benchmarks/clock_tree.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    from helpers_device import build_echo
    from helpers_mcu import MODELS, run_startup

    from edgeq.toolchain.boards import list_boards

    head = (f"{'board':<18} {'clock':>8} {'reset':>7} {'x':>5} {'WS':>3} {'voltage':<17} "
            f"{'instr':>6} {'baud reg':>10} {'fallback instr':>14} {'fallback ms':>11}")
    print(head)
    print("-" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for b in list_boards():
            if not b.clock.configured:
                continue
            fw = build_echo(b.name, Path(tmp) / b.name, clock_setup=True, link="uart")
            regs = MODELS[b.clock.tree](b)
            ok = run_startup(fw, regs)
            instr = regs.icount
            if b.clock.tree == "nrf52":
                brr = next(w.value for w in regs.writes if w.addr == b.uart_base + 0x524)
            else:
                off = 0x08 if b.uart_driver == "stm32_usart_v1" else 0x0C
                brr = [w.value for w in regs.writes if w.addr == b.uart_base + off][-1]
            bad = MODELS[b.clock.tree](b)
            bad.broken = {0x40000100} if b.clock.tree == "nrf52" else set()
            if b.clock.tree != "nrf52":
                pll = 1 << 25  # PLLRDY / PLL1RDY: the PLL never locks
                bad.rules = [r for r in bad.rules if r.ready != pll]
            run_startup(fw, bad)
            fb_ms = bad.icount / b.reset_clock_hz * 1e3
            print(f"{b.name:<18} {b.clock_hz / 1e6:>4g} MHz {b.reset_clock_hz / 1e6:>3g} MHz "
                  f"{b.clock_hz / b.reset_clock_hz:>5.1f} {b.clock.flash_ws:>3} "
                  f"{b.clock.voltage:<17} {instr:>6} {brr:>#10x} {bad.icount:>14,} "
                  f"{fb_ms:>11.1f}")
            assert ok.reached[-1] == "eq_uart_getc"
    print("\ninstr = instructions inside eq_clock_init on the normal path; fallback = the same "
          "when the PLL (nRF: HFXO) never reports ready: 100,000 polls, then back to reset clock")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
