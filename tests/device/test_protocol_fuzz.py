"""Fuzz the firmware's frame receiver, codec and command dispatcher on the host.

The same C sources the firmware links (eq_proto.c, eq_app.c) are compiled with the host gcc,
AddressSanitizer and UBSan around the echo model, then fed a bounded random stream of bit-flipped,
truncated, oversized, garbage and valid frames. The harness asserts that every reply is a valid
frame within its buffer and that a clean HELLO is still answered after each burst of garbage.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from helpers_device import ECHO_MODEL, ECHO_RUNTIME, FUZZ_DIR

from edgeq.toolchain.compiler import FIRMWARE_DIR


@pytest.fixture(scope="module")
def fuzz_binary(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("host gcc not installed")
    out = tmp_path_factory.mktemp("fuzz") / "fuzz"
    cmd = [gcc, "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           f"-I{FUZZ_DIR}", f"-I{FIRMWARE_DIR / 'include'}", f"-I{ECHO_MODEL}",
           f"-I{ECHO_RUNTIME / 'include'}", str(FUZZ_DIR / "fuzz_main.c"),
           str(FIRMWARE_DIR / "proto" / "eq_proto.c"), str(FIRMWARE_DIR / "app" / "eq_app.c"),
           str(ECHO_MODEL / "model.c"), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_firmware_parser_survives_random_streams(fuzz_binary, seed):
    proc = subprocess.run([str(fuzz_binary), "4000", str(seed)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = dict(kv.split("=") for kv in proc.stdout.split()[1:])
    assert proc.stdout.startswith("OK")
    # the stream exercised both paths: error replies for damaged frames, real replies for valid
    # ones (answers excludes the clean HELLO after each round, which alone would reach 4000)
    assert int(counts["errors"]) > 1000
    assert int(counts["answers"]) > 300
