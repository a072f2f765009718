"""Protocol constants are defined once, in firmware/include/eq_proto.h: the C compiler's view of
the header and the host module's values must agree, name by name."""

from __future__ import annotations

import re
import shutil
import subprocess

from edgeq.device import protocol as P

HOST_NAMES = {  # protocol.py attribute -> header name
    "VERSION": "EQP_VERSION", "MAX_PAYLOAD": "EQP_MAX_PAYLOAD",
    "HEADER_BYTES": "EQP_HEADER_BYTES", "CRC_BYTES": "EQP_CRC_BYTES",
    "CMD_HELLO": "EQP_CMD_HELLO", "CMD_LOAD_INPUT": "EQP_CMD_LOAD_INPUT",
    "CMD_INVOKE": "EQP_CMD_INVOKE", "CMD_READ_OUTPUT": "EQP_CMD_READ_OUTPUT",
    "CMD_READ_TIMING": "EQP_CMD_READ_TIMING", "CMD_LAYER_INFO": "EQP_CMD_LAYER_INFO",
    "ERROR": "EQP_ERROR", "REPLY": "EQP_REPLY", "E_CRC": "EQP_E_CRC",
    "E_VERSION": "EQP_E_VERSION", "E_OVERSIZE": "EQP_E_OVERSIZE", "E_FRAMING": "EQP_E_FRAMING",
    "E_UNKNOWN_CMD": "EQP_E_UNKNOWN_CMD", "E_ARG": "EQP_E_ARG", "E_INVOKE": "EQP_E_INVOKE",
    "E_SHORT": "EQP_E_SHORT",
}


def _compiled_values(tmp_path, names: list[str], header=P.PROTO_HEADER) -> dict[str, int]:
    """Each constant as the C compiler evaluates the header (an oracle independent of the
    host's regex reader)."""
    gcc = shutil.which("gcc")
    assert gcc is not None, "host gcc is needed (make setup installs it)"
    src = tmp_path / "consts.c"
    body = "".join(f'    printf("{n}=%lld\\n", (long long)({n}));\n' for n in names)
    src.write_text(f'#include <stdio.h>\n#include "{header.name}"\nint main(void) {{\n{body}'
                   "    return 0;\n}\n")
    exe = tmp_path / "consts"
    proc = subprocess.run([gcc, "-std=c99", "-Wall", "-Werror", f"-I{header.parent}",
                           str(src), "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, v in (line.split("=") for line in out.split())}


def test_every_header_constant_is_read_by_the_host(tmp_path):
    text = re.sub(r"/\*.*?\*/", " ", P.PROTO_HEADER.read_text(), flags=re.S)
    defined = set(re.findall(r"#define\s+(EQP_\w+)\s+\S", text))
    defined |= set(re.findall(r"\b(EQP_\w+)\s*=", text))
    defined -= {"EQP_MAX_RAW", "EQP_MAX_ENCODED"}  # expressions, derived on each side
    assert defined <= set(P.header_constants()), defined - set(P.header_constants())
    compiled = _compiled_values(tmp_path, sorted(defined))
    assert P.header_constants().items() >= compiled.items()
    assert {k: v for k, v in P.header_constants().items() if k in compiled} == compiled


def test_host_module_values_are_the_headers(tmp_path):
    compiled = _compiled_values(tmp_path, sorted(HOST_NAMES.values()))
    for attr, name in HOST_NAMES.items():
        assert getattr(P, attr) == compiled[name], attr
    assert set(P.ERROR_NAMES) == {compiled[n] for n in HOST_NAMES.values() if "_E_" in n}


def test_a_changed_header_value_reaches_the_host(tmp_path):
    """The host reads the header (nothing is copied): edit a value and the reader follows."""
    changed = tmp_path / "eq_proto.h"
    changed.write_text(P.PROTO_HEADER.read_text().replace("EQP_CMD_LAYER_INFO = 0x06",
                                                          "EQP_CMD_LAYER_INFO = 0x16"))
    assert P.header_constants(changed)["EQP_CMD_LAYER_INFO"] == 0x16
    assert P.header_constants()["EQP_CMD_LAYER_INFO"] == 0x06


def test_handshake_counter_kinds_and_dtypes_are_the_firmwares(tmp_path):
    """HELLO carries eq_hal.h counter kinds and edgeq_rt.h dtypes: the host names them from
    the same headers."""
    kinds = _compiled_values(tmp_path, ["EQ_COUNTER_INSTRUCTIONS", "EQ_COUNTER_CYCLES"],
                             P.HAL_HEADER)
    assert P.COUNTER_KINDS == {kinds["EQ_COUNTER_INSTRUCTIONS"]: "instructions",
                               kinds["EQ_COUNTER_CYCLES"]: "cycles"}
    names = ["EQ_INT8", "EQ_INT16", "EQ_FLOAT32", "EQ_INT32", "EQ_UINT8"]
    dtypes = _compiled_values(tmp_path, names, P.RUNTIME_HEADER)
    assert P.DTYPES == {dtypes[n]: n.removeprefix("EQ_").lower() for n in names}
