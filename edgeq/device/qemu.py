"""QEMU launcher: run a firmware ELF on an emulated board and connect to its host link.

Two links, chosen by the firmware (``edgeq.toolchain.compiler`` ``link=``): the board's UART
model on a local TCP port, or — the default for emulated boards — ARM semihosting on QEMU's
stdin/stdout pipes. QEMU's UART models accept one byte per pass of the emulator's main loop
(~20 us measured, ~45 KB/s at best); semihosting reads whatever the pipe holds in one trap.

``-icount shift=0`` makes the virtual clock advance 1 ns per instruction, so the firmware's
SysTick counts instructions deterministically. Each run gets a free port (tests run in
parallel); an emulator that exits before or during the session is reported with its stderr.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
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


SEMIHOST_MARKER = b"edgeq-link:semihosting"


def firmware_link(kernel: Path) -> str:
    """``semihosting`` if the firmware was built with the emulator-only semihosting link."""
    try:
        return "semihosting" if SEMIHOST_MARKER in kernel.read_bytes() else "uart"
    except OSError:
        return "uart"


def find_qemu() -> str:
    """Path of qemu-system-arm, or a DeviceError saying how to install it."""
    exe = shutil.which(QEMU)
    if exe is None:
        raise DeviceError(f"{QEMU} not found on PATH; {INSTALL_HINT}")
    return exe


def qemu_command(machine: str, kernel: Path, port: int, extra: Sequence[str] = (), *,
                 link: str = "uart") -> list[str]:
    """The emulator command line; the host link (UART or semihosting console) on a TCP port."""
    exe = find_qemu()
    if link == "semihosting":  # the console (":tt") is QEMU's own stdin/stdout in QEMU 7.2
        wire = ["-serial", "null", "-semihosting-config", "enable=on,target=native"]
    elif link == "pty":  # the UART on a pseudo-terminal, opened like a board's serial port
        wire = ["-serial", "pty"]
    else:
        wire = ["-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"]
    return [exe, "-M", machine, "-display", "none", "-monitor", "none", "-icount", "shift=0",
            "-kernel", str(kernel), *wire, *extra]


@functools.lru_cache(maxsize=4)
def known_machines(exe: str) -> frozenset[str]:
    """Machine names this QEMU emulates (``-M help``), asked once per executable."""
    try:
        out = subprocess.run([exe, "-M", "help"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(line.split()[0] for line in out.splitlines()[1:] if line.strip())


class PipeLink:
    """A pyserial-like port over QEMU's stdin/stdout (the semihosting console)."""

    def __init__(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._w, self._r = proc.stdin.fileno(), proc.stdout.fileno()
        self._proc = proc
        self.timeout = timeout
        os.set_blocking(self._r, False)

    @property
    def in_waiting(self) -> int:
        import termios

        buf = bytearray(4)
        fcntl.ioctl(self._r, termios.FIONREAD, buf)
        return int.from_bytes(buf, "little")

    def read(self, size: int = 1) -> bytes:
        out = bytearray()
        deadline = time.monotonic() + (self.timeout or 0.0)
        while len(out) < size:
            left = deadline - time.monotonic()
            if not select.select([self._r], [], [], max(0.0, left))[0]:
                break
            chunk = os.read(self._r, size - len(out))
            if not chunk:
                raise OSError("QEMU closed its console")
            out += chunk
        return bytes(out)

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            select.select([], [self._w], [])
            view = view[os.write(self._w, view):]
        return len(data)

    def reset_input_buffer(self) -> None:
        while select.select([self._r], [], [], 0)[0]:
            if not os.read(self._r, 65536):
                break

    def close(self) -> None:
        """Close the console: the firmware sees end-of-file and ends the emulator."""
        for stream in (self._proc.stdin, self._proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


# Every emulator this process started and has not stopped yet. SIGTERM is turned into SystemExit
# while any is alive (so ``with`` blocks and ``finally`` run, as they do for Ctrl-C), the kernel
# kills QEMU if this process dies without cleaning up (PR_SET_PDEATHSIG), and atexit stops the
# rest: no exit path leaves a qemu-system-arm behind.
_live: set[QemuInstance] = set()
_live_lock = threading.Lock()
_saved_sigterm: Any = None


def _on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _register(q: QemuInstance) -> None:
    global _saved_sigterm
    with _live_lock:
        if not _live and threading.current_thread() is threading.main_thread():
            _saved_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
        _live.add(q)


def _unregister(q: QemuInstance) -> None:
    global _saved_sigterm
    with _live_lock:
        _live.discard(q)
        if not _live and _saved_sigterm is not None and \
                threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _saved_sigterm)
            _saved_sigterm = None


@atexit.register
def stop_all() -> None:
    """Stop every emulator still running (interpreter exit, or a caller's own cleanup)."""
    for q in list(_live):
        q.close()


def _death_signal() -> Any:
    """PR_SET_PDEATHSIG fires when the *thread* that forked exits: only the main thread (which
    lives as long as the process) may ask for it."""
    return _die_with_parent if threading.current_thread() is threading.main_thread() else None


def _die_with_parent() -> None:  # runs in the forked child before exec
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class QemuInstance:
    """Context manager: start QEMU, connect to its UART, and always shut it down."""

    def __init__(self, machine: str, kernel: str | Path, *, connect_timeout: float = 10.0,
                 read_timeout: float = 2.0, extra_args: Sequence[str] = (),
                 pty: bool = False, paused: bool = False) -> None:
        self.machine = machine
        self.kernel = Path(kernel)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.extra_args = tuple(extra_args)  # e.g. ("-plugin", "counter.so,...")
        self.link = firmware_link(self.kernel)
        if pty:
            if self.link == "semihosting":
                raise DeviceError(f"{self.kernel} talks over semihosting, not a UART; rebuild "
                                  "it with link uart to use a pty")
            self.link = "pty"
        self.pty_path: str | None = None  # with pty=True: open it as a serial port
        # pty=True, paused=True: the core waits (-S) until resume(), so a client that opens
        # the pty first sees everything from the first byte (QEMU drops output to an unopened
        # pty, as a board's USB bridge drops what it sends before the port is opened)
        self.paused = paused and pty
        self._monitor_pty: str | None = None
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
        """Start and connect; on any failure or interrupt (even mid-connect) QEMU is stopped."""
        _register(self)
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        import serial

        if not self.kernel.is_file():
            raise DeviceError(f"firmware {self.kernel} not found; run `edgeq build` first")
        for _ in range(5):
            self.tcp_port = free_port()
            extra = self.extra_args
            if self.paused:
                extra = (*extra, "-S", "-monitor", "pty")  # replaces -monitor none
            cmd = qemu_command(self.machine, self.kernel, self.tcp_port, extra, link=self.link)
            if self.paused:
                del cmd[cmd.index("-monitor"):cmd.index("-monitor") + 2]
            _register(self)  # again after a retry's close()
            log.debug("starting %s", " ".join(cmd))
            self._stderr = tempfile.TemporaryFile()
            # append-only: our reads (seek 0) never move where QEMU's next message lands
            fd = self._stderr.fileno()
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
            if self.link == "semihosting":
                # No connection to wait for, so catch the usual early exit before starting.
                machines = known_machines(cmd[0])
                if machines and self.machine not in machines:
                    raise DeviceError(f"QEMU ({self.machine}) exited early: unsupported machine "
                                      f"type {self.machine!r} (see {QEMU} -M help)")
                self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=self._stderr, bufsize=0,
                                             preexec_fn=_death_signal())
                self.port = PipeLink(self.proc, self.read_timeout)
                return
            # with -serial pty, QEMU names the pty on stdout: keep it with the messages
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=self._stderr if self.link == "pty"
                                         else subprocess.DEVNULL, stderr=self._stderr,
                                         preexec_fn=_death_signal())
            deadline = time.monotonic() + self.connect_timeout
            if self.link == "pty":
                self._wait_for_pty(deadline)
                return
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

    def _wait_for_pty(self, deadline: float) -> None:
        """QEMU names its pseudo-terminal ("char device redirected to /dev/pts/N")."""
        import re

        assert self.proc is not None
        while time.monotonic() < deadline:
            text = self.stderr_text()
            serial_pty = re.search(r"redirected to (/dev/\S+) \(label serial0\)", text)
            monitor_pty = re.search(r"redirected to (/dev/\S+) \(label compat_monitor0\)", text)
            if serial_pty and (monitor_pty or not self.paused):
                self.pty_path = serial_pty.group(1)
                self._monitor_pty = monitor_pty.group(1) if monitor_pty else None
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        err = self.stderr_text()
        self.close()
        raise DeviceError(f"QEMU ({self.machine}) did not open a pty: "
                          f"{err.splitlines()[-1] if err else 'no message'}")

    def resume(self) -> None:
        """Start the core of an instance created with ``paused=True`` (monitor ``cont``)."""
        if not self.paused or self._monitor_pty is None:
            return
        fd = os.open(self._monitor_pty, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, b"cont\n")
            deadline = time.monotonic() + 5.0
            seen = b""
            while b"cont" not in seen and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.1)[0]:
                    seen += os.read(fd, 4096)
        finally:
            os.close(fd)
        self.paused = False

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
        _unregister(self)
