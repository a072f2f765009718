"""A whole 96x96x3 (27,648-byte) input through the firmware in QEMU, over both host links.

The input holds non-zero runs of 253/254/255/508 bytes (COBS block boundaries) and zeros, so
every frame of it exercises the firmware's COBS decoder on the 0xFF code; the fixture model
answers with the CRC-32 of what arrived, checked against zlib.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers_device import build_bulk, bulk_reference

from edgeq.device import protocol as P
from edgeq.device.qemu import QemuInstance
from edgeq.device.session import DeviceSession


def _input(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=96 * 96 * 3).astype(np.int8)
    pos = 0
    for run in (253, 254, 255, 508, 254, 2047, 4000):
        pos += int(rng.integers(1, 300))
        x[pos - 1] = 0
        x[pos:pos + run] = rng.integers(1, 128, size=run).astype(np.int8)
        x[pos + run] = 0
        pos += run + 1
    return x.reshape(1, 96, 96, 3)


@pytest.fixture(scope="module")
def bulk_fw(tmp_path_factory):
    root = tmp_path_factory.mktemp("bulk_fw")
    return {link: build_bulk("mps2-an386", root / link, link=link)
            for link in ("semihosting", "uart")}


@pytest.mark.parametrize("link", ["semihosting", "uart"])
def test_whole_27k_input_arrives_intact(bulk_fw, link):
    with QemuInstance("mps2-an386", bulk_fw[link].elf) as q:
        s = DeviceSession(q.port, name="qemu", alive=q.check_alive, timeout=10)
        assert s.info.inputs[0].bytes == 27648 and s.max_payload == P.MAX_PAYLOAD == 4096
        for seed in (0, 1):
            x = _input(seed)
            (y,), _ = s.infer([x])
            np.testing.assert_array_equal(y, bulk_reference(x))
        assert s.transfer.bytes == 2 * 27648 and s.transfer.seconds > 0


def test_a_device_with_smaller_frames_gets_smaller_chunks(tmp_path):
    """A firmware built with a lower EQP_MAX_PAYLOAD says so in HELLO and still gets every byte."""
    fw = build_bulk("mps2-an386", tmp_path / "fw", defines=("EQP_MAX_PAYLOAD=200u",))
    with QemuInstance("mps2-an386", fw.elf) as q:
        s = DeviceSession(q.port, name="qemu", alive=q.check_alive)
        assert s.info.max_payload == 200 == s.max_payload
        x = _input(2)
        (y,), _ = s.infer([x])
        np.testing.assert_array_equal(y, bulk_reference(x))


def test_board_config_frame_payload_sets_the_firmware_frames(tmp_path):
    """[firmware] frame_payload in a board config (for boards short of RAM) reaches the
    firmware: HELLO reports it, and the protocol buffers shrink by 3 x the difference."""
    from edgeq.toolchain.boards import board_dir

    text = (board_dir() / "mps2-an386.toml").read_text()
    small = tmp_path / "small-frames.toml"
    small.write_text(text.replace('name = "mps2-an386"', 'name = "small-frames"')
                     .replace("default_for_core = true", "default_for_core = false")
                     .replace("stack_bytes = 16384", "stack_bytes = 16384\nframe_payload = 512"))
    fw_small = build_bulk(str(small), tmp_path / "small")
    fw_big = build_bulk("mps2-an386", tmp_path / "big")
    assert fw_big.size.bss - fw_small.size.bss >= 3 * (4096 - 512)
    with QemuInstance("mps2-an386", fw_small.elf) as q:
        s = DeviceSession(q.port, name="qemu", alive=q.check_alive)
        assert s.info.max_payload == 512 == s.max_payload
        x = _input(3)
        (y,), _ = s.infer([x])
        np.testing.assert_array_equal(y, bulk_reference(x))
