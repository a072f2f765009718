"""The one way to open a session with a firmware: a serial port, a ``socket://`` address, or a
QEMU instance started here and always stopped (even when the session raises). ``connect``
talks edgeq's protocol; ``connect_harness`` the MLPerf Tiny harness (``--protocol mlperf``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from edgeq.device.mlperf import MlperfClient
from edgeq.device.session import DeviceSession
from edgeq.errors import DeviceError
from edgeq.toolchain.boards import Board

log = logging.getLogger(__name__)


def _check_target(board: Board, elf: Path | None, port: str | None, emulator: bool,
                  build_hint: str) -> None:
    """One line before anything starts: exactly one target, and for QEMU an emulated board
    and firmware that exists (``build_hint`` says how to make it)."""
    if emulator == (port is not None):
        raise DeviceError("pass exactly one of --port PORT or --emulator")
    if not emulator:
        return
    if not board.emulated:
        raise DeviceError(f"{board.name} has no emulator; use --port with the real board")
    if elf is None or not elf.is_file():
        raise DeviceError(f"firmware {elf} not found; {build_hint}")


@contextlib.contextmanager
def connect(board: Board, *, elf: Path | None = None, port: str | None = None,
            emulator: bool = False, qemu_args: Sequence[str] = ()) -> Iterator[DeviceSession]:
    """A session with the firmware: QEMU running ``elf`` for ``emulator``, else ``port``
    (a serial device such as ``/dev/ttyACM0`` or a pyserial URL such as ``socket://host:1234``).
    ``qemu_args`` go to the emulator (e.g. the counting plugin of ``edgeq.device.icount``).
    """
    _check_target(board, elf, port, emulator,
                  f"run `edgeq build --board {board.name}` first or pass --build-dir")
    if emulator:
        from edgeq.device.qemu import QemuInstance

        log.debug("starting QEMU %s with %s", board.qemu_machine, elf)
        with QemuInstance(board.qemu_machine or "", elf, extra_args=qemu_args) as q:
            yield DeviceSession(q.port, name=f"QEMU {board.qemu_machine}", alive=q.check_alive)
    else:
        from edgeq.device.transport import open_serial

        log.debug("opening %s at %d baud", port, board.uart_baud)
        ser = open_serial(port or "", board.uart_baud)
        try:
            yield DeviceSession(ser, name=f"{board.name} at {port}")
        finally:
            ser.close()


@contextlib.contextmanager
def connect_harness(board: Board, *, elf: Path | None = None, port: str | None = None,
                    emulator: bool = False) -> Iterator[MlperfClient]:
    """A synced MLPerf Tiny harness client: QEMU's UART running ``elf`` for ``emulator``, else
    the board's serial ``port``."""
    _check_target(board, elf, port, emulator,
                  f"run `edgeq build --protocol mlperf --board {board.name}` first")
    if emulator:
        from edgeq.device.qemu import QemuInstance

        with QemuInstance(board.qemu_machine or "", elf) as q:
            if q.link != "uart":
                raise DeviceError(f"{elf} is not MLPerf harness firmware; rebuild with "
                                  "`edgeq build --protocol mlperf`")
            client = MlperfClient(q.port, name=f"QEMU {board.qemu_machine}")
            client.sync()
            yield client
    else:
        from edgeq.device.transport import open_serial

        ser = open_serial(port or "", board.uart_baud)
        try:
            client = MlperfClient(ser, name=f"{board.name} at {port}")
            client.sync()
            yield client
        finally:
            ser.close()
