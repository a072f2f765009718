"""Opening a real serial port, with the errors a user can act on (absent, busy, no permission)."""

from __future__ import annotations

from typing import Any

from edgeq.errors import DeviceError


def open_serial(port: str, baud: int = 115200, timeout: float = 1.0) -> Any:
    """An exclusive pyserial port; raises DeviceError naming the port and the fix."""
    import serial

    if port.startswith(("socket://", "rfc2217://", "loop://")):
        try:
            return serial.serial_for_url(port, baudrate=baud, timeout=timeout)
        except (serial.SerialException, ValueError) as exc:
            raise DeviceError(f"cannot open {port}: {exc}; check the address") from None
    try:
        return serial.Serial(port, baudrate=baud, timeout=timeout, exclusive=True)
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
