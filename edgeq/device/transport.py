"""Opening a real serial port, with the errors a user can act on (absent, busy, no permission)."""

from __future__ import annotations

import logging
from typing import Any

from edgeq.errors import DeviceError

log = logging.getLogger(__name__)


def open_serial(port: str, baud: int = 115200, timeout: float = 1.0) -> Any:
    """An exclusive pyserial port; raises DeviceError naming the port and the fix."""
    import serial

    if port.startswith(("socket://", "rfc2217://", "loop://")):
        try:
            return serial.serial_for_url(port, baudrate=baud, timeout=timeout)
        except (serial.SerialException, ValueError) as exc:
            raise DeviceError(f"cannot open {port}: {exc}; check the address") from None
    try:
        ser = serial.Serial(port, baudrate=baud, timeout=timeout, exclusive=True)
    except serial.SerialException as exc:
        text = str(exc)
        if "No such file" in text or "could not open port" in text and "[Errno 2]" in text:
            raise DeviceError(f"serial port {port} not found; plug the board in and check "
                              "`ls /dev/ttyACM* /dev/ttyUSB*`") from None
        if "lock" in text.lower() or "busy" in text.lower() or "[Errno 16]" in text:
            raise DeviceError(f"serial port {port} is busy (another program has it open); close "
                              "that program (screen, minicom, an IDE monitor) and retry") from None
        if "Permission denied" in text or "[Errno 13]" in text:
            raise DeviceError(f"no permission to open {port}; add yourself to the dialout group "
                              "(sudo usermod -aG dialout $USER) and log in again") from None
        raise DeviceError(f"cannot open serial port {port}: {text}") from None
    _low_latency(ser, port)
    return ser


def _low_latency(ser: Any, port: str) -> None:
    """Ask the USB-serial driver to hand over bytes at once: FTDI bridges otherwise hold them
    up to 16 ms (their latency timer), which a stop-and-wait protocol pays on every reply.
    Drivers without the setting (CDC-ACM, ptys) refuse it, which is fine."""
    try:
        ser.set_low_latency_mode(True)
    except (AttributeError, ValueError, OSError) as exc:
        log.debug("%s: low-latency mode not available (%s)", port, exc)
