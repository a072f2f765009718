"""Input transfer speed to the device: a 96x96x3 (27,648-byte) input into QEMU firmware.

Builds the bulk-transfer fixture (tests/fixtures/fw_bulk_model: output = CRC-32 of the input,
checked against zlib) for an emulated board over both host links — semihosting (the default
for emulated boards) and the board's UART model — and prints the measured throughput of
``DeviceSession.load_input`` (acknowledged 4 KB frames), median of ``--repeats`` inputs.

For real boards it runs the same session through ``PacedLink``: a model of a UART behind a USB
virtual COM port that delivers every byte no sooner than the baud rate allows (10 bits a byte,
8N1) plus a fixed USB latency per direction, in front of the semihosting firmware (whose own
processing is then included, at QEMU's speed). It prints the achieved payload rate as a
fraction of line rate (baud / 10), which is what the frame format and the stop-and-wait
acknowledgements cost.

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


class PacedLink:
    """A port whose bytes move at ``baud`` (8N1) with ``latency_s`` added per direction."""

    def __init__(self, port: object, baud: int, latency_s: float) -> None:
        self.port, self.baud, self.latency = port, baud, latency_s
        self._reply_started = False

    @property
    def timeout(self) -> float:
        return self.port.timeout  # type: ignore[attr-defined]

    @timeout.setter
    def timeout(self, value: float) -> None:
        self.port.timeout = value  # type: ignore[attr-defined]

    @property
    def in_waiting(self) -> int:
        return self.port.in_waiting  # type: ignore[attr-defined]

    def reset_input_buffer(self) -> None:
        self.port.reset_input_buffer()  # type: ignore[attr-defined]

    def write(self, data: bytes) -> int:
        _sleep_until(time.perf_counter() + self.latency + len(data) * 10 / self.baud)
        self._reply_started = False
        return self.port.write(data)  # type: ignore[attr-defined]

    def read(self, n: int = 1) -> bytes:
        data = self.port.read(n)  # type: ignore[attr-defined]
        if data:
            wait = len(data) * 10 / self.baud
            if not self._reply_started:
                wait += self.latency
                self._reply_started = True
            _sleep_until(time.perf_counter() + wait)
        return data


def _sleep_until(t: float) -> None:
    """time.sleep overshoots by ~0.1 ms; spin for the last part so short waits stay exact."""
    while (left := t - time.perf_counter()) > 0:
        if left > 0.002:
            time.sleep(left - 0.001)


def measure_paced(board_name: str, work: Path, baud: int, latency_s: float,
                  repeats: int) -> float:
    """Fraction of line rate the protocol reaches through a PacedLink (median of repeats)."""
    from edgeq.device.qemu import QemuInstance
    from edgeq.device.session import DeviceSession
    from edgeq.toolchain.boards import resolve_target

    board = resolve_target(board=board_name)
    elf = work / "semihosting" / "fw.elf"
    rng = np.random.default_rng(1)
    fractions = []
    with QemuInstance(board.qemu_machine or "", elf) as q:
        s = DeviceSession(PacedLink(q.port, baud, latency_s), name="paced", timeout=20)
        s.hello()
        for _ in range(repeats):
            x = rng.integers(-128, 128, size=(1, 96, 96, 3), dtype=np.int8).tobytes()
            t0 = time.perf_counter()
            s.load_input(0, x)
            fractions.append(INPUT_BYTES / (time.perf_counter() - t0) / (baud / 10))
    return statistics.median(fractions)


def frame_instructions(board_name: str, work: Path) -> list[int]:
    """Exact instructions the firmware spends on each LOAD_INPUT frame of one input, from
    receiving the frame's delimiter to sending the reply (parse, copy, reply; COBS and CRC ran while the bytes arrived), by
    the TCG plugin (window: eq_app_handle_rx -> eq_uart_write)."""
    from edgeq.device.icount import build_plugin, read_counts, symbol_address
    from edgeq.device.qemu import QemuInstance
    from edgeq.device.session import DeviceSession
    from edgeq.toolchain.boards import resolve_target

    board = resolve_target(board=board_name)
    elf = work / "semihosting" / "fw.elf"
    counts = work / "frame_counts.txt"
    plugin = build_plugin(work / "plugin")
    start = symbol_address(elf, "eq_app_handle_rx")
    stop = symbol_address(elf, "eq_uart_write")
    extra = ["-plugin", f"{plugin},start={start:#x},stop={stop:#x},out={counts}"]
    with QemuInstance(board.qemu_machine or "", elf, extra_args=extra) as q:
        s = DeviceSession(q.port, name="plugin", alive=q.check_alive, timeout=20)
        s.hello()
        before = len(read_counts(counts))
        s.load_input(0, bytes(range(1, 256)) * (INPUT_BYTES // 255) + bytes(INPUT_BYTES % 255))
        time.sleep(0.2)
    return read_counts(counts)[before:]


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
    ap.add_argument("--latency-ms", type=float, nargs="+", default=[1.0, 2.0],
                    help="USB virtual COM port latency per direction for the paced link")
    args = ap.parse_args(argv)
    rows = {}
    paced: dict[tuple[int, float], float] = {}
    links = list(dict.fromkeys(["semihosting", *args.links]))
    with tempfile.TemporaryDirectory() as tmp:
        for link in links:
            print(f"measuring {link} on {args.board} ...", file=sys.stderr)
            rows[link] = measure_link(args.board, link, args.repeats, Path(tmp))
        frames = frame_instructions(args.board, Path(tmp))
        for baud in (921_600, 2_000_000):
            for lat in args.latency_ms:
                print(f"paced link {baud} baud, {lat} ms ...", file=sys.stderr)
                paced[(baud, lat)] = measure_paced(args.board, Path(tmp), baud, lat / 1e3,
                                                   max(2, args.repeats // 3))
    print(f"input transfer into QEMU firmware ({args.board}), {INPUT_BYTES:,}-byte input, "
          "every input acknowledged chunk by chunk, CRC-checked")
    print(f"{'link':<12} {'frame payload':>14} {'median KB/s':>12} {'min KB/s':>10} "
          f"{'max KB/s':>10} {'s/input':>8}")
    for link, r in rows.items():
        print(f"{link:<12} {r['max_payload']:>14,} {r['median'] / 1e3:>12,.1f} "
              f"{r['min'] / 1e3:>10,.1f} {r['max'] / 1e3:>10,.1f} "
              f"{INPUT_BYTES / r['median']:>8.3f}")
    from edgeq.device import protocol as P

    print(f"\nreal UART (8N1) through a paced link model, stop-and-wait {P.MAX_PAYLOAD:,}-byte "
          "frames, firmware in QEMU: payload rate / line rate (baud/10)")
    full = max(frames) if frames else 0
    fw_s = full / 80e6  # one instruction per cycle at 80 MHz: a lower bound on a Cortex-M4
    print(f"  firmware turnaround per full frame: {full:,} instructions ({full / (P.MAX_PAYLOAD - 5):.1f}"
          f"/byte; {fw_s * 1e3:.2f} ms at 80 MHz, 1 cycle/instruction); frames: {frames}")
    for (baud, lat), frac in paced.items():
        eff, model = uart_efficiency(P.MAX_PAYLOAD, baud, 2 * lat / 1e3 + fw_s)
        print(f"  {baud:>9,} baud, {lat:g} ms USB latency each way: measured {100 * frac:5.1f}% "
              f"(formula with that firmware time {100 * model:5.1f}%; payload/wire bytes "
              f"{100 * eff:.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
