"""``edgeq bench`` and ``edgeq run``: measure a built firmware on QEMU or a real board.

Bench only measures: it opens a session (``edgeq.device.connect``), reads the build directory
(``edgeq.artifacts``), and never generates or compiles anything — the per-layer profiling
firmware is built by ``edgeq.pipeline.profiling_firmware`` and passed in as ``elf``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.artifacts import BuildDir
from edgeq.device.connect import connect
from edgeq.device.session import DeviceSession
from edgeq.errors import DataError, DeviceError
from edgeq.toolchain.boards import Board

log = logging.getLogger(__name__)


def layer_rows(session: DeviceSession) -> list[dict[str, Any]]:
    """Per-layer counts of the last inference with each layer's op name and MACs
    (needs firmware built with per-layer profiling)."""
    rows = []
    for i, c in enumerate(session.layer_counts()):
        name, macs = session.layer_info(i)
        rows.append({"index": i, "op": name, "count": c, "macs": macs})
    return rows


def bench_input(session: DeviceSession, build_dir: Path) -> list[np.ndarray]:
    """The first test sample when the dataset is known, else a fixed pseudo-random input."""
    tflite = BuildDir(build_dir).model
    if tflite.is_file():
        from edgeq.quantize.numerics import quantized_test_inputs

        try:
            x, _ = quantized_test_inputs(tflite, None, 1)
            return [x[0]]
        except DataError:
            pass
    rng = np.random.default_rng(0)
    out = []
    for io in session.info.inputs:
        dt = np.dtype(io.dtype)
        lo, hi = (np.iinfo(dt).min, np.iinfo(dt).max) if dt.kind in "iu" else (-1, 1)
        out.append(rng.integers(lo, hi + 1, size=io.shape).astype(dt) if dt.kind in "iu"
                   else rng.uniform(lo, hi, size=io.shape).astype(dt))
    return out


def bench(board: Board, *, build_dir: Path, elf: Path | None = None, port: str | None = None,
          emulator: bool = False, runs: int = 20, warmup: int = 1, per_layer: bool = False,
          monitor: str | None = None, monitor_port: str | None = None) -> dict[str, Any]:
    """Latency (median/min/max), optional per-layer counts, the energy estimate, and with a
    power ``monitor`` (real boards) the measured energy of a burst of ``runs`` inferences.

    ``elf`` is the firmware QEMU runs (default: the build's); for ``per_layer`` on the
    emulator pass the profiling firmware.
    """
    from edgeq.bench.energy import estimate_energy
    from edgeq.bench.stats import latency_stats

    if runs <= 0:
        raise DeviceError("--runs must be positive")
    bd = BuildDir(build_dir)
    if bd.manifest_section("build").get("firmware", {}).get("protocol") == "mlperf":
        raise DeviceError(f"{build_dir} holds MLPerf Tiny harness firmware; use `edgeq bench "
                          "--protocol mlperf` or rebuild without --protocol mlperf")
    log.debug("%d timed runs after %d warm-up on %s", runs, warmup, board.name)
    with connect(board, elf=elf or bd.elf, port=port, emulator=emulator) as s:
        info = s.info
        expect = bd.manifest_section("codegen").get("model_hash")
        if expect:
            s.check_model(expect)
        inputs = bench_input(s, build_dir)
        _, res = s.infer(inputs, runs=runs, warmup=warmup)
        transfer = s.transfer.to_dict()
        measured = None
        if monitor is not None:
            if emulator:
                raise DeviceError("a power monitor measures a real board; drop --emulator")
            measured = measure_energy(s, monitor, monitor_port, runs)
        layers = layer_rows(s) if per_layer else None
    stats = latency_stats(res.counts, res.unit, info.clock_hz)
    return {"board": board.name, "model": info.model_name, "model_hash": info.model_hash,
            "counter": info.counter, "arena_bytes": info.arena_bytes,
            "latency": stats.to_dict(), "counts": res.counts,
            "energy": estimate_energy(board, stats.median, res.unit).to_dict(),
            "layers": layers, "measured_energy": measured, "transfer": transfer}


def measure_energy(session: DeviceSession, monitor: str, monitor_port: str | None,
                   runs: int) -> dict[str, Any]:
    """Bracket ``runs`` back-to-back inferences with the monitor: ∫V·I dt over the window / N."""
    from edgeq.bench.energy import integrate_energy
    from edgeq.bench.monitors import open_monitor

    mon = open_monitor(monitor, monitor_port)
    mon.start()
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        session.invoke(runs=runs)
        t1 = time.monotonic()
        time.sleep(0.2)
    finally:
        times, current, voltage = mon.stop()
    joules = integrate_energy(current, voltage, times_s=times, window=(t0, t1), inferences=runs)
    return {"estimate": False, "monitor": monitor, "microjoules": joules * 1e6,
            "window_s": t1 - t0, "inferences": runs}


def render_bench(r: dict[str, Any]) -> str:
    from edgeq.bench.stats import layer_table, render_layers

    lat, e = r["latency"], r["energy"]
    line = (f"{r['model']} on {r['board']}: {lat['median']:,.0f} {lat['unit']}/inference "
            f"(median of {lat['runs']}; min {lat['min']:,}, max {lat['max']:,})")
    if lat.get("median_ms") is not None:
        line += f" = {lat['median_ms']:.3f} ms"
    lines = [line, f"energy: {e['microjoules']:.2f} uJ/inference ({e['note']})"]
    t = r.get("transfer") or {}
    if t.get("bytes_per_s"):
        lines.append(f"input transfer: {t['bytes']:,} bytes in {t['seconds'] * 1e3:.1f} ms = "
                     f"{t['bytes_per_s'] / 1e3:,.1f} KB/s")
    if r.get("measured_energy"):
        m = r["measured_energy"]
        lines.append(f"measured energy: {m['microjoules']:.2f} uJ/inference ({m['monitor']}, "
                     f"{m['inferences']} inferences in {m['window_s']:.3f} s)")
    if r.get("layers"):
        rows = layer_table([x["op"] for x in r["layers"]], [x["macs"] for x in r["layers"]],
                           [x["count"] for x in r["layers"]])
        lines.append(render_layers(rows, lat["unit"]))
    return "\n".join(lines)


def run_input(board: Board, input_file: Path, *, build_dir: Path, port: str | None = None,
              emulator: bool = False) -> dict[str, Any]:
    """Run one input (.npy, model dtype or float to be quantized) and return the outputs."""
    from edgeq.quantize.numerics import dequantize, quantize

    if not input_file.is_file() or input_file.suffix != ".npy":
        raise DataError(f"{input_file}: expected an existing .npy file with one input sample")
    try:
        x = np.load(input_file, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{input_file}: not a readable .npy array ({exc})") from None
    with connect(board, elf=BuildDir(build_dir).elf, port=port, emulator=emulator) as s:
        io = s.info.inputs[0]
        if int(np.prod(x.shape)) != int(np.prod(io.shape)):
            raise DataError(f"{input_file}: shape {x.shape} does not match the model input "
                            f"{io.shape}")
        if x.dtype.kind == "f" and io.dtype != "float32":
            x = quantize(x, io.scale, io.zero_point, io.dtype)
        outs, res = s.infer([x.reshape(io.shape).astype(io.dtype)])
        out_io = s.info.outputs[0]
    y = outs[0]
    deq = dequantize(y, out_io.scale, out_io.zero_point) if out_io.scale else y
    return {"output": y.reshape(-1).tolist(), "dequantized": np.asarray(deq).reshape(-1).tolist(),
            "argmax": int(np.argmax(y)), "count": res.counts[0], "unit": res.unit}
