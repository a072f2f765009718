"""Host validation of phone models with LiteRT's default CPU path (XNNPACK), as apps run them.

Accuracy and top-1 agreement are measured on the test split; latency is the median of N timed
invocations after a warm-up, with 1 and 2 threads. These are host CPU figures, not a phone's:
they rank the variants, they do not predict a device.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeq.errors import ExportError, first_line

LATENCY_LABEL = "host CPU, not a phone"
THREADS = (1, 2)


@dataclass(frozen=True)
class IoDetails:
    dtype: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "shape": list(self.shape),
            "scale": self.scale,
            "zero_point": self.zero_point,
        }


def default_interpreter(model: bytes, threads: int = 1) -> Any:
    """LiteRT's default interpreter (XNNPACK on CPU), tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter

    from edgeq.tfenv import quiet_native_output

    try:
        with quiet_native_output():
            interp = Interpreter(model_content=model, num_threads=threads)
            interp.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        first = first_line(exc, None)
        raise ExportError(f"LiteRT cannot load the exported model: {first}") from None
    return interp


def _details(d: dict[str, Any]) -> IoDetails:
    scale, zp = d.get("quantization", (0.0, 0))
    return IoDetails(
        np.dtype(d["dtype"]).name, tuple(int(s) for s in d["shape"]), float(scale), int(zp)
    )


def io_details(model: bytes) -> tuple[IoDetails, IoDetails]:
    interp = default_interpreter(model)
    return _details(interp.get_input_details()[0]), _details(interp.get_output_details()[0])


def to_model_input(x: np.ndarray, io: IoDetails) -> np.ndarray:
    """Normalized float samples -> the input tensor's dtype (quantized when it is integer)."""
    dt = np.dtype(io.dtype)
    if dt.kind == "f":
        return x.astype(dt)
    if io.scale == 0.0:
        raise ExportError(f"integer model input ({io.dtype}) has no quantization scale")
    info = np.iinfo(dt)
    q = np.round(x / io.scale) + io.zero_point
    return np.clip(q, info.min, info.max).astype(dt)


def predict(model: bytes, x: np.ndarray) -> np.ndarray:
    """Output 0 for every sample (batch 1 each, as an app runs it); dequantized to float."""
    interp = default_interpreter(model)
    din, dout = interp.get_input_details()[0], interp.get_output_details()[0]
    inp, out = _details(din), _details(dout)
    xq = to_model_input(x, inp)
    rows = []
    for k in range(len(xq)):
        interp.set_tensor(din["index"], xq[k : k + 1].reshape(din["shape"]))
        interp.invoke()
        rows.append(np.array(interp.get_tensor(dout["index"])).reshape(-1))
    y = np.stack(rows).astype(np.float32)
    if np.dtype(out.dtype).kind in "iu" and out.scale:
        y = (y - out.zero_point) * out.scale
    return y


def latency_ms(
    model: bytes, sample: np.ndarray, *, threads: int, runs: int, warmup: int = 5
) -> float:
    """Median wall time of one ``invoke`` in milliseconds."""
    interp = default_interpreter(model, threads)
    din = interp.get_input_details()[0]
    interp.set_tensor(din["index"], to_model_input(sample, _details(din)).reshape(din["shape"]))
    for _ in range(warmup):
        interp.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        interp.invoke()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e6


def host_description() -> dict[str, Any]:
    """Where the latency was measured (so nobody mistakes it for a phone)."""
    import os
    import platform
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        litert = metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:  # pragma: no cover
        litert = "unknown"
    return {
        "label": LATENCY_LABEL,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "runtime": f"ai-edge-litert {litert}, default interpreter (XNNPACK)",
    }
