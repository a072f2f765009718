"""QEMU launcher: run a firmware ELF on an emulated board with its UART on a local TCP port.

``-icount shift=0`` makes the virtual clock advance 1 ns per instruction, so the firmware's
SysTick counts instructions deterministically. Each run gets a free port (tests run in
parallel); an emulator that exits before or during the session is reported with its stderr.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from edgeq.errors import DeviceError

log = logging.getLogger(__name__)

QEMU = "qemu-system-arm"
INSTALL_HINT = ("install it (Debian/Ubuntu: sudo apt-get install qemu-system-arm, or run "
                "`make setup`)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_qemu() -> str:
    """Path of qemu-system-arm, or a DeviceError saying how to install it."""
    exe = shutil.which(QEMU)
    if exe is None:
        raise DeviceError(f"{QEMU} not found on PATH; {INSTALL_HINT}")
    return exe


def qemu_command(machine: str, kernel: Path, port: int, extra: Sequence[str] = ()) -> list[str]:
    exe = find_qemu()
    return [exe, "-M", machine, "-display", "none", "-monitor", "none", "-icount", "shift=0",
            "-kernel", str(kernel), "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
            *extra]


class QemuInstance:
    """Context manager: start QEMU, connect to its UART, and always shut it down."""

    def __init__(self, machine: str, kernel: str | Path, *, connect_timeout: float = 10.0,
                 read_timeout: float = 2.0, extra_args: Sequence[str] = ()) -> None:
        self.machine = machine
        self.kernel = Path(kernel)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.extra_args = tuple(extra_args)  # e.g. ("-plugin", "counter.so,...")
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: Any = None
        self.tcp_port = 0
        self._stderr: Any = None

    def __enter__(self) -> QemuInstance:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        import serial

        if not self.kernel.is_file():
            raise DeviceError(f"firmware {self.kernel} not found; run `edgeq build` first")
        for _ in range(5):
            self.tcp_port = free_port()
            cmd = qemu_command(self.machine, self.kernel, self.tcp_port, self.extra_args)
            log.debug("starting %s", " ".join(cmd))
            self._stderr = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=self._stderr)
            deadline = time.monotonic() + self.connect_timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    self.port = serial.serial_for_url(f"socket://127.0.0.1:{self.tcp_port}",
                                                      timeout=self.read_timeout)
                    sock = getattr(self.port, "_socket", None)
                    if sock is not None:  # small frames both ways: no Nagle delay
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    return
                except serial.SerialException:
                    time.sleep(0.05)
            err = self.stderr_text()
            self.close()
            if "in use" in err:
                continue  # another test grabbed the port between our probe and QEMU's bind
            if not err:
                raise DeviceError(f"QEMU ({self.machine}) did not open its UART within "
                                  f"{self.connect_timeout:g} s; check the machine name")
            raise DeviceError(f"QEMU ({self.machine}) exited early: {err.splitlines()[-1]}")
        raise DeviceError("could not find a free TCP port for QEMU's UART; retry")

    def stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace").strip()

    def check_alive(self) -> None:
        """Raise if the emulator has exited (used by the session while waiting for replies)."""
        if self.proc is not None and self.proc.poll() is not None:
            err = self.stderr_text()
            detail = f": {err.splitlines()[-1]}" if err else ""
            raise DeviceError(f"QEMU ({self.machine}) exited with code {self.proc.returncode} "
                              f"during the session{detail}")

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            except Exception:  # noqa: BLE001 - closing a dead socket
                pass
            self.port = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
