"""Input transfer speed to the device: a 96x96x3 (27,648-byte) input into QEMU firmware.

Builds the bulk-transfer fixture (tests/fixtures/fw_bulk_model: output = CRC-32 of the input,
checked against zlib) for an emulated board over both host links — semihosting (the default
for emulated boards) and the board's UART model — and prints the measured throughput of
``DeviceSession.load_input`` (acknowledged 2 KB frames), median of ``--repeats`` inputs.
It also prints what the frame format costs on a real UART: payload bytes per wire byte, and
the fraction of line rate a stop-and-wait link reaches for a given reply turnaround.

    .venv/bin/python benchmarks/link_throughput.py [--board mps2-an386] [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
INPUT_BYTES = 96 * 96 * 3


def measure_link(board_name: str, link: str, repeats: int, work: Path) -> dict[str, float]:
    from edgeq.device.qemu import QemuInstance
    from edgeq.device.session import DeviceSession
    from edgeq.toolchain.boards import resolve_target
    from edgeq.toolchain.compiler import build_firmware

    board = resolve_target(board=board_name)
    fw = build_firmware(board, FIXTURES / "fw_bulk_model", work / link,
                        runtime_dir=FIXTURES / "fw_echo_model" / "runtime",
                        input_bytes=INPUT_BYTES, link=link)
    rng = np.random.default_rng(0)
    rates = []
    with QemuInstance(board.qemu_machine or "", fw.elf) as q:
        s = DeviceSession(q.port, name=f"QEMU {board.qemu_machine}", alive=q.check_alive,
                          timeout=20)
        for _ in range(repeats):
            x = rng.integers(-128, 128, size=(1, 96, 96, 3), dtype=np.int8)
            t0 = time.perf_counter()
            s.load_input(0, x.tobytes())
            rates.append(INPUT_BYTES / (time.perf_counter() - t0))
        (y,), _ = s.infer([x])
        crc = int(np.array(zlib.crc32(x.tobytes()), dtype=np.uint32).view(np.int32))
        if int(y.reshape(-1)[0]) != crc:
            raise SystemExit(f"{link}: the device's CRC of the input differs from zlib's")
        max_payload = s.max_payload
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
            "max_payload": max_payload}


def uart_efficiency(max_payload: int, baud: int, turnaround_s: float) -> tuple[float, float]:
    """(payload/wire bytes, fraction of line rate) for LOAD_INPUT frames of ``max_payload``."""
    from edgeq.device import protocol as P

    chunk = max_payload - 5
    wire = len(b"\x00" + P.encode_frame(P.CMD_LOAD_INPUT, 1, bytes(5) + bytes([1]) * chunk))
    byte_s = 10 / baud  # 8N1
    frame_s = wire * byte_s
    return chunk / wire, chunk * byte_s / (frame_s + turnaround_s)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="mps2-an386")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--links", nargs="+", default=["semihosting", "uart"])
    args = ap.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for link in args.links:
            print(f"measuring {link} on {args.board} ...", file=sys.stderr)
            rows[link] = measure_link(args.board, link, args.repeats, Path(tmp))
    print(f"input transfer into QEMU firmware ({args.board}), {INPUT_BYTES:,}-byte input, "
          "every input acknowledged chunk by chunk, CRC-checked")
    print(f"{'link':<12} {'frame payload':>14} {'median KB/s':>12} {'min KB/s':>10} "
          f"{'max KB/s':>10} {'s/input':>8}")
    for link, r in rows.items():
        print(f"{link:<12} {r['max_payload']:>14,} {r['median'] / 1e3:>12,.1f} "
              f"{r['min'] / 1e3:>10,.1f} {r['max'] / 1e3:>10,.1f} "
              f"{INPUT_BYTES / r['median']:>8.3f}")
    print("\nreal UART (8N1), stop-and-wait 2 KB frames: fraction of line rate for a reply "
          "turnaround (USB VCP latency + firmware CRC/copy) of")
    from edgeq.device import protocol as P

    for baud in (115_200, 921_600, 2_000_000):
        eff, _ = uart_efficiency(P.MAX_PAYLOAD, baud, 0.0)
        cells = "  ".join(f"{t * 1e3:.0f} ms: {100 * uart_efficiency(P.MAX_PAYLOAD, baud, t)[1]:5.1f}%"
                          for t in (0.001, 0.002, 0.004))
        print(f"  {baud:>9,} baud  payload/wire {100 * eff:.1f}%   {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
