"""Analysis: accuracy and bit-exactness against the reference interpreters, per-layer numerics."""
