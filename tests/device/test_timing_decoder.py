"""The plugin's instruction decoder against arm-none-eabi-objdump on a real model firmware.

Every instruction QEMU translates while the digits-like fixture model runs is classified by the
plugin from its bytes; objdump disassembles the same ELF independently, and the mnemonic gives the
class the TRM table prices (written out here). Thousands of instructions of compiled kernels,
startup, protocol and libc code must agree.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from helpers_device import build_echo

from edgeq.device.icount import build_plugin, plugin_args
from edgeq.device.qemu import QemuInstance
from edgeq.device.session import DeviceSession
from edgeq.device.timing import CLASSES

CONDS = {"eq", "ne", "cs", "cc", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt",
         "le", "al"}
LOADS = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrex", "ldrexb", "ldrexh", "pld", "ldrt"}
STORES = {"str", "strb", "strh", "strex", "strexb", "strexh"}
MULS = {"mul", "mla", "mls", "smull", "umull", "smlal", "umlal", "smmul", "smmla", "smmls",
        "smlad", "smladx", "smlsd", "smuad", "smusd", "smlald", "smlsld", "umaal", "smulbb",
        "smulbt", "smultb", "smultt", "smulwb", "smulwt", "smlabb", "smlabt", "smlatb", "smlatt",
        "smlawb", "smlawt", "smlalbb", "smmulr", "smmlar"}
BRANCHES = {"b", "bl", "bx", "blx", "cbz", "cbnz"}
VFP_MAC = {"vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"}
VFP = {"vadd", "vsub", "vmul", "vnmul", "vabs", "vneg", "vcmp", "vcmpe", "vcvt", "vcvtr", "vmov",
       "vmrs", "vmsr", "vcvtb", "vcvtt"}
KNOWN = LOADS | STORES | MULS | BRANCHES | VFP_MAC | VFP | {
    "ldrd", "strd", "ldm", "ldmia", "ldmdb", "ldmfd", "stm", "stmia", "stmdb", "stmea", "push",
    "pop", "tbb", "tbh", "sdiv", "udiv", "vdiv", "vsqrt", "vldr", "vstr", "vldmia", "vldmdb",
    "vstmia", "vstmdb", "vpush", "vpop"}


def base_mnemonic(m: str) -> str:
    """``ldrne.w`` -> ``ldr``, ``muls`` -> ``mul``, ``vadd.f32`` -> ``vadd``."""
    m = m.split(".")[0]
    for cand in (m, m[:-2] if m[-2:] in CONDS else None, m[:-1] if m.endswith("s") else None,
                 m[:-3] if m[-3:-1] in CONDS and m.endswith("s") else None):
        if cand and cand in KNOWN:
            return cand
    return m


def expected_class(mnemonic: str, operands: str) -> str:
    m = base_mnemonic(mnemonic)
    if m in LOADS:
        return "load"
    if m in STORES:  # register offset: [rN, rM...]
        return "store_reg" if re.search(r"\[\w+, (r\d+|ip|lr|sl|fp|sb)\b", operands) else "store"
    if m in ("ldrd", "strd"):
        return "ldrd"
    if m.startswith(("ldm", "stm")) or m in ("push", "pop"):
        return "ldm"
    if m in ("tbb", "tbh"):
        return "table_branch"
    if m in BRANCHES:
        return "branch"
    if m in ("sdiv", "udiv"):
        return "div"
    if m in MULS:
        return "mul"
    if m in VFP_MAC:
        return "vfp_mac"
    if m in ("vdiv", "vsqrt"):
        return "vfp_div"
    if m == "vldr":
        return "vfp_load"
    if m == "vstr":
        return "vfp_store"
    if m.startswith(("vldm", "vstm")) or m in ("vpush", "vpop"):
        return "vfp_ldm"
    if m in VFP:
        return "vfp"
    if re.match(r"(mov|add)\b", m) and re.match(r"pc\b", operands):
        return "branch"
    return "alu"


def disassembly(elf) -> dict[int, tuple[str, str]]:
    out = subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    insns = {}
    for line in out.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(\S+)\s*([^;@]*)", line)
        if m and not m.group(2).startswith("."):
            insns[int(m.group(1), 16)] = (m.group(2), m.group(3).strip())
    return insns


@pytest.fixture(scope="module")
def classified(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoder")
    fw = build_echo("mps2-an386", root / "fw")
    classes = root / "classes.txt"
    args = plugin_args(fw.elf, build_plugin(root / "plugin"), root / "counts.txt")
    args[1] += f",classes={classes}"
    with QemuInstance("mps2-an386", fw.elf, extra_args=args) as q:
        s = DeviceSession(q.port, alive=q.check_alive)
        s.infer([np.arange(64, dtype=np.int8).reshape(1, 8, 8, 1)], runs=2, warmup=1)
    got = {}
    for line in classes.read_text().split("\n"):
        if line:
            pc, cls = line.split()
            name = CLASSES[int(cls)]
            got[int(pc, 16)] = name.replace("_pipelined", "")  # pipelining is positional
    return got, disassembly(fw.elf)


def test_every_translated_instruction_is_classified_like_objdump(classified):
    got, dis = classified
    checked, wrong = 0, []
    for pc, cls in got.items():
        if pc not in dis:
            continue  # data decoded as code by objdump's gaps, or literal pools
        mnem, ops = dis[pc]
        want = expected_class(mnem, ops)
        checked += 1
        if want != cls:
            wrong.append(f"{pc:#x} {mnem} {ops}: plugin {cls}, objdump {want}")
    assert checked > 500
    assert not wrong, "\n".join(wrong[:20])
    assert {"load", "store", "ldm", "branch", "mul", "alu"} <= set(got.values())
