"""Quantization: PTQ, calibration, QAT, mixed precision, and the integer numerics they share."""
