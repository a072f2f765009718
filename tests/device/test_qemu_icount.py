"""Exact instruction counts from the TCG plugin agree with the firmware's SysTick counts."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_device import build_echo, echo_reference

from edgeq.device.icount import build_plugin, plugin_args, read_counts, symbol_address
from edgeq.device.qemu import QemuInstance
from edgeq.device.session import DeviceSession
from edgeq.errors import DeviceError


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("icount")
    return build_echo("mps2-an386", root / "fw"), build_plugin(root / "plugin"), root


def test_exact_counts_match_systick_within_one_tick(setup, tmp_path):
    fw, plugin, _ = setup
    counts_file = tmp_path / "counts.txt"
    rng = np.random.default_rng(2)
    with QemuInstance("mps2-an386", fw.elf, extra_args=plugin_args(fw.elf, plugin,
                                                                   counts_file)) as q:
        s = DeviceSession(q.port, alive=q.check_alive)
        systick = []
        for _ in range(4):
            x = rng.integers(-128, 128, size=(1, 8, 8, 1), dtype=np.int8)
            (y,), res = s.infer([x], runs=2, warmup=1)
            np.testing.assert_array_equal(y, echo_reference(x))
            systick += res.counts
        exact = read_counts(counts_file)
    assert len(exact) == len(systick) == 8
    for e, t in zip(exact, systick, strict=True):
        assert abs(e - t) <= 60, (exact, systick)  # one 40-instruction tick + call overhead
    assert exact[0] == exact[1] and exact[2] == exact[3]  # same input, same count, exactly


def test_missing_symbol_is_reported(setup):
    fw, _, _ = setup
    assert symbol_address(fw.elf, "edgeq_model_invoke") % 2 == 0
    with pytest.raises(DeviceError, match="has no symbol nope"):
        symbol_address(fw.elf, "nope")
