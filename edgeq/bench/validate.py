"""On-device validation: every output byte from the device against the host oracle (TFLM).

"Correct" for an int8 runtime is bit-exact with TFLite Micro's reference kernels, so the
comparison is exact equality on raw output bytes — never a tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edgeq.device.session import DeviceSession


@dataclass
class ValidationReport:
    samples: int
    mismatched_samples: int
    mismatched_bytes: int
    max_abs_diff: int
    first_mismatch: int | None
    counts: list[int] = field(default_factory=list)  # per sample, device unit
    unit: str = "instructions"
    device_outputs: list[np.ndarray] = field(default_factory=list, repr=False)  # output 0
    # every output: one array per model output, samples on the first axis
    all_outputs: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def bit_exact(self) -> bool:
        return self.samples > 0 and self.mismatched_samples == 0

    def to_dict(self) -> dict[str, object]:
        return {"samples": self.samples, "bit_exact": self.bit_exact,
                "mismatched_samples": self.mismatched_samples,
                "mismatched_bytes": self.mismatched_bytes, "max_abs_diff": self.max_abs_diff,
                "first_mismatch": self.first_mismatch, "unit": self.unit}


def validate_on_device(session: DeviceSession, inputs: Sequence[np.ndarray],
                       expected: Sequence[np.ndarray], *,
                       progress: bool = False) -> ValidationReport:
    """Run each sample on the device and compare every output byte with ``expected``.

    ``inputs``/``expected`` hold one array per model input/output, samples on the first axis
    (the layout ``edgeq.oracles.run_tflm`` takes and returns). ``progress`` draws a bar on
    stderr (samples/s and time left: a real board over a slow UART takes a while).
    """
    n = len(inputs[0])
    mismatched = mism_bytes = max_diff = 0
    first: int | None = None
    counts: list[int] = []
    outs_all: list[np.ndarray] = []
    per_output: list[list[np.ndarray]] = [[] for _ in expected]
    unit = session.info.counter
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc="validating on the device", unit="sample", leave=False)
    try:
        for k in range(n):
            sample = [np.asarray(x[k]).reshape(io.shape) for x, io in
                      zip(inputs, session.info.inputs, strict=True)]
            outs, res = session.infer(sample)
            if bar is not None:
                bar.update(1)
            counts.append(res.counts[0])
            bad = False
            for got, want in zip(outs, expected, strict=True):
                w = np.asarray(want[k]).reshape(got.shape)
                diff = got.astype(np.int64) != w.astype(np.int64)
                if diff.any():
                    bad = True
                    mism_bytes += int(diff.sum()) * got.dtype.itemsize
                    max_diff = max(max_diff, int(np.abs(got.astype(np.int64)
                                                        - w.astype(np.int64)).max()))
            outs_all.append(outs[0])
            for col, got in zip(per_output, outs, strict=True):
                col.append(got)
            if bad:
                mismatched += 1
                first = k if first is None else first
        if bar is not None:
            bar.refresh()  # the final count, even when the samples came faster than redraws
    finally:
        if bar is not None:
            bar.close()
    return ValidationReport(samples=n, mismatched_samples=mismatched, mismatched_bytes=mism_bytes,
                            max_abs_diff=max_diff, first_mismatch=first, counts=counts, unit=unit,
                            device_outputs=outs_all,
                            all_outputs=[_stacked(col) for col in per_output if col])


def _stacked(outputs: list[np.ndarray]) -> np.ndarray:
    """One output's per-sample arrays (batch 1 each) as ``(samples, ...)``, as the oracles give."""
    first = outputs[0]
    shape = first.shape[1:] if first.ndim and first.shape[0] == 1 else first.shape
    return np.stack([o.reshape(shape) for o in outputs])


def top1(outputs: Sequence[np.ndarray], labels: np.ndarray) -> float:
    """Top-1 accuracy of raw (quantized) classifier outputs; argmax is scale-invariant."""
    pred = np.array([int(np.argmax(o.reshape(-1))) for o in outputs])
    return float((pred == labels[:len(pred)]).mean())
