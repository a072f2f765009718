"""Talking to boards: transports (serial port, QEMU socket), the framed protocol, QEMU, flashing."""
