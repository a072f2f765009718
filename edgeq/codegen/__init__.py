"""Code generation: TFLite Micro C-array bundles and edgeq-rt ahead-of-time C models."""
