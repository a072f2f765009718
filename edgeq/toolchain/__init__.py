"""Firmware build: board configs, linker scripts, the arm-none-eabi-gcc driver and size report."""
