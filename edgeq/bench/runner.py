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
        from edgeq.quantize.numerics import quantized_test_vectors

        try:
            xs, _ = quantized_test_vectors(tflite, None, 1)
            return [x[0] for x in xs]  # one sample of every input
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
          monitor: str | None = None, monitor_port: str | None = None,
          power_model: str | None = None) -> dict[str, Any]:
    """Latency (median/min/max), optional per-layer counts, the energy estimate, and with a
    power ``monitor`` (real boards) the measured energy of a burst of ``runs`` inferences.

    ``elf`` is the firmware QEMU runs (default: the build's); for ``per_layer`` on the
    emulator pass the profiling firmware. In QEMU the latency is the plugin's exact instruction
    count with estimated cycles and ms at the board's clock (``edgeq.bench.latency``), and the
    energy is estimated for the real board ``power_model``.
    """
    from edgeq.bench.energy import estimate_energy
    from edgeq.bench.stats import latency_stats

    if runs <= 0:
        raise DeviceError("--runs must be positive")
    if power_model is not None and not emulator:
        raise DeviceError("--power-model is for emulated boards; a real board uses its own")
    bd = BuildDir(build_dir)
    if bd.manifest_section("build").get("firmware", {}).get("protocol") == "mlperf":
        raise DeviceError(f"{build_dir} holds MLPerf Tiny harness firmware; use `edgeq bench "
                          "--protocol mlperf` or rebuild without --protocol mlperf")
    fw = elf or bd.elf
    counter = None
    if emulator and fw.is_file():
        from edgeq.device.icount import PluginCounter

        counter = PluginCounter(board, fw, build_dir / "plugin")
    log.debug("%d timed runs after %d warm-up on %s", runs, warmup, board.name)
    with connect(board, elf=fw, port=port, emulator=emulator,
                 qemu_args=counter.args if counter else ()) as s:
        info = s.info
        from edgeq.bench.stats import clock_status

        clock_ok, clock_note = clock_status(board, info.clock_hz)
        if not clock_ok:
            log.warning(clock_note)
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
            measured = measure_energy(s, monitor, monitor_port, runs,
                                      use_marker=board.marker is not None)
        layers = layer_rows(s) if per_layer else None
    fw_built = bd.manifest_section("build").get("firmware", {})
    runtime = (f"TFLite Micro ({fw_built.get('tflm_kernels', '?')} kernels)"
               if fw_built.get("runtime") == "tflm" else "edgeq-rt")
    out: dict[str, Any] = {"board": board.name, "model": info.model_name, "runtime": runtime,
                           "model_hash": info.model_hash, "counter": info.counter,
                           "arena_bytes": info.arena_bytes, "measured_energy": measured,
                           "counts": res.counts, "layers": layers, "transfer": transfer,
                           "clock_hz": info.clock_hz, "clock_ok": clock_ok, "clock": clock_note}
    if counter is not None:
        from edgeq.bench.latency import emulator_latency

        windows = counter.windows()[-runs:]
        out["latency"], out["energy"], rows = emulator_latency(board, windows, power_model,
                                                               bd.model, layers)
        out["systick_counts"] = res.counts
        out["counts"] = [w.total.insns for w in windows]
        out["layers"] = rows
    else:
        from edgeq.bench.latency import measured_layer_rows

        stats = latency_stats(res.counts, res.unit, info.clock_hz)
        out["latency"] = stats.to_dict()
        out["energy"] = estimate_energy(board, stats.median, res.unit).to_dict()
        if layers is not None and res.unit == "cycles":
            out["layers"] = measured_layer_rows(layers, bd.model)
    return out


def measure_energy(session: DeviceSession, monitor: str, monitor_port: str | None,
                   runs: int, *, use_marker: bool = False) -> dict[str, Any]:
    """Bracket ``runs`` back-to-back inferences with the monitor: ∫V·I dt / N over the marker
    pin's high spans when the board has one and the monitor recorded it, else over the host's
    command window."""
    from edgeq.bench.energy import integrate_energy, marked_energy
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
        rec = mon.stop()
    if use_marker and rec.marker is not None and rec.marker.any():
        joules, span = marked_energy(rec.current_a, rec.voltage_v, rec.times_s, rec.marker, runs)
        return {"estimate": False, "monitor": monitor, "microjoules": joules * 1e6,
                "window": "marker pin", "window_s": span * runs, "inferences": runs}
    joules = integrate_energy(rec.current_a, rec.voltage_v, times_s=rec.times_s,
                              window=(t0, t1), inferences=runs)
    return {"estimate": False, "monitor": monitor, "microjoules": joules * 1e6,
            "window": "command", "window_s": t1 - t0, "inferences": runs}


def render_bench(r: dict[str, Any]) -> str:
    from edgeq.bench.latency import render_latency

    lat, e = r["latency"], r["energy"]
    lines = [f"{r['model']} on {r['board']} ({r.get('runtime', 'edgeq-rt')}): "
             f"{render_latency(lat)}"]
    if r.get("clock"):
        lines.append(f"clock: {r['clock']}" if r.get("clock_ok", True)
                     else f"WARNING: {r['clock']}")
    lines.append(f"energy: {e['microjoules']:.2f} uJ/inference ({e['note']})")
    t = r.get("transfer") or {}
    if t.get("bytes_per_s"):
        lines.append(f"input transfer: {t['bytes']:,} bytes in {t['seconds'] * 1e3:.1f} ms = "
                     f"{t['bytes_per_s'] / 1e3:,.1f} KB/s")
    if r.get("measured_energy"):
        m = r["measured_energy"]
        lines.append(f"measured energy: {m['microjoules']:.2f} uJ/inference ({m['monitor']}, "
                     f"{m['inferences']} inferences in {m['window_s']:.3f} s, "
                     f"{m.get('window', 'command')} window)")
    if r.get("layers"):
        lines.append(render_layer_dicts(r["layers"], lat["unit"]))
    return "\n".join(lines)


def render_layer_dicts(layers: list[dict[str, Any]], unit: str) -> str:
    """The per-layer table from a report's layer dicts (plugin rows or device counts)."""
    if "instructions" in layers[0]:
        from edgeq.bench.latency import LayerRow, render_layer_rows

        return render_layer_rows([LayerRow(x["index"], x["op"], x["shapes"], x["macs"],
                                           x["elements"], x["instructions"],
                                           x["cycles_estimate"]) for x in layers])
    if "cycles" in layers[0]:
        from edgeq.bench.latency import render_measured_layers

        return render_measured_layers(layers)
    from edgeq.bench.stats import layer_table, render_layers

    rows = layer_table([x["op"] for x in layers], [x["macs"] for x in layers],
                       [x["count"] for x in layers])
    return render_layers(rows, unit)


def run_input(board: Board, input_file: Path, *, build_dir: Path, port: str | None = None,
              emulator: bool = False) -> dict[str, Any]:
    """Run one sample and return the outputs: a ``.npy`` for a one-input model, or a ``.npz``
    with ``x_0``, ``x_1``, ... (one array per input); model dtype, or float to be quantized."""
    from edgeq.quantize.numerics import dequantize, quantize

    arrays = _sample_arrays(input_file)
    with connect(board, elf=BuildDir(build_dir).elf, port=port, emulator=emulator) as s:
        if len(arrays) != len(s.info.inputs):
            raise DataError(f"{input_file}: {len(arrays)} input array(s) for a model with "
                            f"{len(s.info.inputs)} inputs; pass a .npz with x_0 .. "
                            f"x_{len(s.info.inputs) - 1}")
        sample = []
        for k, (x, io) in enumerate(zip(arrays, s.info.inputs, strict=True)):
            if int(np.prod(x.shape)) != int(np.prod(io.shape)):
                raise DataError(f"{input_file}: input {k} has shape {x.shape}, the model input "
                                f"is {io.shape}")
            if x.dtype.kind == "f" and io.dtype != "float32":
                x = quantize(x, io.scale, io.zero_point, io.dtype)
            sample.append(x.reshape(io.shape).astype(io.dtype))
        outs, res = s.infer(sample)
        out_ios = s.info.outputs
    decoded = []
    for y, out_io in zip(outs, out_ios, strict=True):
        deq = dequantize(y, out_io.scale, out_io.zero_point) if out_io.scale else y
        decoded.append({"output": y.reshape(-1).tolist(),
                        "dequantized": np.asarray(deq).reshape(-1).tolist(),
                        "argmax": int(np.argmax(y))})
    return {**decoded[0], "outputs": decoded, "count": res.counts[0], "unit": res.unit}


def _sample_arrays(input_file: Path) -> list[np.ndarray]:
    """The arrays of one sample: a ``.npy``, or ``x_0``, ``x_1``, ... of a ``.npz``."""
    if not input_file.is_file() or input_file.suffix not in (".npy", ".npz"):
        raise DataError(f"{input_file}: expected an existing .npy file with one input sample "
                        "(or a .npz with x_0, x_1, ... for a model with several inputs)")
    try:
        loaded = np.load(input_file, allow_pickle=False)
        if input_file.suffix == ".npy":
            return [np.asarray(loaded)]
        with loaded as npz:
            keys = [f"x_{k}" for k in range(len(npz.files)) if f"x_{k}" in npz.files]
            if not keys:
                raise DataError(f"{input_file}: no array x_0; save one array per model input "
                                "as x_0, x_1, ...")
            return [np.asarray(npz[k]) for k in keys]
    except ValueError as exc:
        raise DataError(f"{input_file}: not a readable numpy file ({exc})") from None
