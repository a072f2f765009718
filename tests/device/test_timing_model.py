"""The cycle model against micro-benchmarks whose cycle counts follow from the Cortex-M4 TRM.

Each benchmark is a small assembly loop, built with arm-none-eabi-gcc and run bare-metal on
mps2-an386 under the plugin. The expected cycles are computed here from the TRM's table (written
out below, not imported from edgeq) and the loop's shape; the model's estimate of a program with
an empty body is subtracted so that only the loop counts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edgeq.device.icount import build_plugin, plugin_args
from edgeq.device.timing import Events, estimate, read_windows
from edgeq.toolchain.boards import load_board_file, resolve_target

# Cortex-M4 TRM r0p1, table 3-1 / 7-1, as this test reads it (P = 2 refill cycles assumed)
TRM = {"alu": 1, "ldr": 2, "ldr_after_ldr": 1, "str_imm": 1, "str_reg": 2, "smlad": 1, "mul": 1,
       "ldm_base": 1, "per_reg": 1, "branch": 1, "refill": 2, "vadd": 1, "vmla": 3, "vdiv": 14,
       "vldr": 2, "sdiv_assumed": 7}
N = 50  # loop iterations

PROLOGUE = """
.syntax unified
.cpu cortex-m4
.fpu fpv4-sp-d16
.thumb
.text
.global reset
.word 0x20010000
.word reset
.thumb_func
reset:
  ldr r0, =0xE000ED88      @ CPACR: enable the FPU
  ldr r1, [r0]
  orr r1, r1, #0xF00000
  str r1, [r0]
  dsb
  isb
  ldr r5, =0x20000100      @ data in RAM
  ldr r6, =table           @ data in flash (code memory)
  movs r7, #4
  movs r8, #3
  movs r9, #7
  vmov s0, r7
  vmov s1, r8
  vmov s2, r9
  bl start_mark
"""
EPILOGUE = """
  bl stop_mark
  movs r0, #0x18           @ semihosting SYS_EXIT
  ldr r1, =0x20026
  bkpt 0xab
  b .
.thumb_func
start_mark: bx lr
.thumb_func
stop_mark: bx lr
.align 4                   @ table on a 16-byte cache line
table: .word 1, 2, 3, 4, 5, 6, 7, 8
.ltorg
"""


def loop(body: str) -> str:
    return f"  movs r4, #{N}\n1:\n{body}\n  subs r4, #1\n  bne 1b\n"


def loop_cycles(body_cycles: int) -> int:
    """movs + N x (body + subs + bne) + a refill for every taken bne (all but the last)."""
    return TRM["alu"] + N * (body_cycles + TRM["alu"] + TRM["branch"]) + (N - 1) * TRM["refill"]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    return build_plugin(tmp_path_factory.mktemp("plugin"))


def run_asm(source: str, work: Path, plugin: Path, name: str) -> Events:
    work.mkdir(parents=True, exist_ok=True)
    asm, elf, out = work / f"{name}.S", work / f"{name}.elf", work / f"{name}.txt"
    asm.write_text(PROLOGUE + source + EPILOGUE)
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16",
                    "-mfloat-abi=hard", "-nostdlib", "-nostartfiles", "-Wl,-Ttext=0x0",
                    "-Wl,--entry=reset", str(asm), "-o", str(elf)], check=True)
    args = plugin_args(elf, plugin, out, start="start_mark", stop="stop_mark",
                       flash=(0, 0x400000))
    subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor",
                    "none", "-semihosting-config", "enable=on,target=native", "-kernel",
                    str(elf), *args], check=True, timeout=60)
    (w,) = read_windows(out)
    return w.total


@pytest.fixture(scope="module")
def empty(plugin, tmp_path_factory):
    return run_asm("", tmp_path_factory.mktemp("empty"), plugin, "empty")


BENCHES = {
    # name: (loop body, cycles of one body per the TRM)
    "8_back_to_back_loads": ("\n".join(f"  ldr r{i % 4}, [r5, #{4 * i}]" for i in range(8)),
                             TRM["ldr"] + 7 * TRM["ldr_after_ldr"]),
    "4_loads_each_after_alu": ("\n".join(f"  ldr r0, [r5, #{4 * i}]\n  add r1, r1, r0"
                                         for i in range(4)),
                               4 * (TRM["ldr"] + TRM["alu"])),
    "byte_and_half_loads": ("  ldrb r0, [r5]\n  ldrsh r1, [r5, #2]\n  ldrsb r2, [r5, r7]",
                            TRM["ldr"] + 2 * TRM["ldr_after_ldr"]),
    "8_smlad": ("\n".join("  smlad r0, r1, r2, r0" for _ in range(8)), 8 * TRM["smlad"]),
    "mul_mla_smull": ("  mul r0, r1, r2\n  mla r0, r1, r2, r0\n  smull r0, r1, r2, r3\n"
                      "  smlabb r0, r1, r2, r0\n  sxtb16 r1, r2", 4 * TRM["mul"] + TRM["alu"]),
    "4_taken_branches": ("\n".join(f"  b 2{i}f\n  nop\n2{i}:" for i in range(4)),
                         4 * (TRM["branch"] + TRM["refill"])),
    "ldm_4_and_push_pop_3": ("  ldmia r5, {r0-r3}\n  push {r0, r1, r2}\n  pop {r0, r1, r2}",
                             3 * TRM["ldm_base"] + 10 * TRM["per_reg"]),
    "stores": ("  str r0, [r5]\n  strb r0, [r5, #5]\n  ldr r1, [r5]\n  str r1, [r5, r7]\n"
               "  str r1, [r5, r7]",
               2 * TRM["str_imm"] + TRM["ldr"] + TRM["ldr_after_ldr"] + TRM["str_reg"]),
    "vfp": ("  vadd.f32 s3, s0, s1\n  vmul.f32 s4, s0, s1\n  vmla.f32 s5, s0, s1\n"
            "  vdiv.f32 s6, s0, s1\n  vldr s7, [r5]", 2 * TRM["vadd"] + TRM["vmla"]
            + TRM["vdiv"] + TRM["vldr"]),
    "sdiv": ("  sdiv r0, r7, r8\n  udiv r1, r9, r7", 2 * TRM["sdiv_assumed"]),
}


@pytest.mark.parametrize("name", sorted(BENCHES))
def test_micro_benchmark_cycles_follow_the_trm(name, plugin, empty, tmp_path):
    body, per_iter = BENCHES[name]
    ev = run_asm(loop(body), tmp_path, plugin, name)
    board = resolve_target(board="mps2-an386")  # zero-wait-state SSRAM
    got = estimate(ev, board).cycles - estimate(empty, board).cycles
    assert got == loop_cycles(per_iter), (name, ev)
    executed = [ln for ln in body.splitlines() if ln.strip() and not ln.endswith(":")
                and ln.strip() != "nop"]  # the nops are branched over
    n_insns = len(executed)
    assert ev.insns - empty.insns == 1 + N * (n_insns + 2)


def test_flash_wait_states_cost_only_without_a_cache(plugin, empty, tmp_path):
    """Loads from flash pay the wait states at the board clock; an ART-like cache hides them."""
    body = "\n".join(f"  ldr r{i}, [r6, #{4 * i}]" for i in range(4))  # r6 -> table in flash
    ev = run_asm(loop(body), tmp_path, plugin, "flash_loads")
    assert ev.flash_reads - empty.flash_reads == 4 * N
    assert ev.flash_line_misses - empty.flash_line_misses == 1  # 16 bytes = one cache line
    base = resolve_target(board="mps2-an386")
    src = base.path.read_text()
    no_ws = loop_cycles(TRM["ldr"] + 3 * TRM["ldr_after_ldr"])
    for caches, ws, clock_mhz, expect_ws in ((False, 3, 100, 3), (True, 3, 100, 3),
                                            (False, 0, 25, 0), (False, 1, 25, 1)):
        toml = tmp_path / "mps2-an386.toml"
        on = "true" if caches else "false"
        toml.write_text(src.replace("hz = 25_000_000", f"hz = {clock_mhz}_000_000")
                        .replace("max_hz = 25_000_000", f"max_hz = {clock_mhz}_000_000")
                        .replace("[clock]", f"[clock]\nflash_ws = {ws}\nicache = {on}\n"
                                            f"dcache = {on}"))
        board = load_board_file(toml)
        est, est0 = estimate(ev, board), estimate(empty, board)
        assert est.wait_states == expect_ws
        # without caches: 4 reads per iteration + a refetch of the loop head per taken branch
        extra = expect_ws * (1 if caches else 4 * N + (N - 1))
        assert est.cycles - est0.cycles == no_ws + extra, (caches, ws)
        assert est.ms == pytest.approx(est.cycles / (clock_mhz * 1e3))
        # at twice the clock the access time is the same, so (ws + 1) doubles
        assert estimate(ev, board, 2 * clock_mhz * 1_000_000).wait_states == 2 * (ws + 1) - 1
