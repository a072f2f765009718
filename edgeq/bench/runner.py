"""``edgeq bench`` and ``edgeq run``: talk to a built firmware on QEMU or a real board."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.device.session import DeviceSession
from edgeq.errors import DataError, DeviceError
from edgeq.toolchain.boards import Board

log = logging.getLogger(__name__)

def default_build_dir(board: Board, model: str = "digits_cnn") -> Path:
    return Path("build") / f"{model}-{board.name}"


@contextlib.contextmanager
def open_device(board: Board, *, elf: Path | None, port: str | None,
                emulator: bool) -> Iterator[DeviceSession]:
    """A session with the firmware: QEMU for ``emulator``, else the serial ``port``."""
    if emulator == (port is not None):
        raise DeviceError("pass exactly one of --port PORT or --emulator")
    if emulator:
        if not board.emulated:
            raise DeviceError(f"{board.name} has no emulator; use --port with the real board")
        from edgeq.device.qemu import QemuInstance

        if elf is None or not elf.is_file():
            raise DeviceError(f"firmware {elf} not found; run `edgeq build --board {board.name}` "
                              "first or pass --build-dir")
        with QemuInstance(board.qemu_machine or "", elf) as q:
            yield DeviceSession(q.port, name=f"QEMU {board.qemu_machine}", alive=q.check_alive)
    else:
        from edgeq.device.transport import open_serial

        ser = open_serial(port or "", board.uart_baud)
        try:
            yield DeviceSession(ser, name=f"{board.name} at {port}")
        finally:
            ser.close()


def _manifest(build_dir: Path) -> dict[str, Any]:
    path = build_dir / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def profiled_firmware(board: Board, build_dir: Path) -> Path:
    """The per-layer firmware ELF, built from the generated C in ``build_dir`` if needed."""
    from edgeq.codegen.edgeq_rt import generate_edgeq_rt
    from edgeq.tflite import read_tflite
    from edgeq.toolchain.compiler import build_firmware

    built = _manifest(build_dir).get("build", {}).get("firmware", {})
    if built.get("per_layer") and Path(built.get("elf", "")).is_file():
        return Path(built["elf"])
    tflite = build_dir / "model_int8.tflite"
    if not tflite.is_file():
        raise DeviceError(f"{tflite} not found; run `edgeq build --board {board.name}` first")
    name = _manifest(build_dir).get("codegen", {}).get("model_name")
    gen = generate_edgeq_rt(tflite, build_dir / "edgeq_rt", name=name)
    inputs = sum(t.nbytes for t in read_tflite(tflite).input_tensors)
    fw = build_firmware(board, build_dir / "edgeq_rt", build_dir / "firmware_profile",
                        profile_layers=True, input_bytes=inputs,
                        kernel_sources=gen.kernel_sources)
    return fw.elf


def bench_input(session: DeviceSession, build_dir: Path) -> list[np.ndarray]:
    """The first test sample when the dataset is known, else a fixed pseudo-random input."""
    tflite = build_dir / "model_int8.tflite"
    if tflite.is_file():
        from edgeq.bench.validate import quantized_test_inputs

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


def bench(board: Board, *, build_dir: Path, port: str | None = None, emulator: bool = False,
          runs: int = 20, warmup: int = 1, per_layer: bool = False,
          monitor: str | None = None, monitor_port: str | None = None) -> dict[str, Any]:
    """Latency (median/min/max), optional per-layer counts, the energy estimate, and with a
    power ``monitor`` (real boards) the measured energy of a burst of ``runs`` inferences."""
    from edgeq.bench.energy import estimate_energy
    from edgeq.bench.stats import latency_stats

    if runs <= 0:
        raise DeviceError("--runs must be positive")
    elf = profiled_firmware(board, build_dir) if per_layer and emulator else \
        build_dir / "firmware" / "fw.elf"
    with open_device(board, elf=elf, port=port, emulator=emulator) as s:
        info = s.info
        from edgeq.bench.stats import clock_status

        clock_ok, clock_note = clock_status(board, info.clock_hz)
        if not clock_ok:
            log.warning(clock_note)
        expect = _manifest(build_dir).get("codegen", {}).get("model_hash")
        if expect:
            s.check_model(expect)
        inputs = bench_input(s, build_dir)
        _, res = s.infer(inputs, runs=runs, warmup=warmup)
        measured = None
        if monitor is not None:
            if emulator:
                raise DeviceError("a power monitor measures a real board; drop --emulator")
            measured = measure_energy(s, monitor, monitor_port, runs,
                                      use_marker=board.marker is not None)
        layers = None
        if per_layer:
            counts = s.layer_counts()
            layers = []
            for i, c in enumerate(counts):
                name, macs = s.layer_info(i)
                layers.append({"index": i, "op": name, "count": c, "macs": macs})
    stats = latency_stats(res.counts, res.unit, info.clock_hz)
    return {"board": board.name, "model": info.model_name, "model_hash": info.model_hash,
            "counter": info.counter, "arena_bytes": info.arena_bytes,
            "clock_hz": info.clock_hz, "clock_ok": clock_ok, "clock": clock_note,
            "latency": stats.to_dict(), "counts": res.counts,
            "energy": estimate_energy(board, stats.median, res.unit).to_dict(),
            "layers": layers, "measured_energy": measured}


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
    from edgeq.bench.stats import layer_table, render_layers

    lat, e = r["latency"], r["energy"]
    line = (f"{r['model']} on {r['board']}: {lat['median']:,.0f} {lat['unit']}/inference "
            f"(median of {lat['runs']}; min {lat['min']:,}, max {lat['max']:,})")
    if lat.get("median_ms") is not None:
        line += f" = {lat['median_ms']:.3f} ms"
    lines = [line]
    if r.get("clock"):
        lines.append(f"clock: {r['clock']}" if r.get("clock_ok", True)
                     else f"WARNING: {r['clock']}")
    lines.append(f"energy: {e['microjoules']:.2f} uJ/inference ({e['note']})")
    if r.get("measured_energy"):
        m = r["measured_energy"]
        lines.append(f"measured energy: {m['microjoules']:.2f} uJ/inference ({m['monitor']}, "
                     f"{m['inferences']} inferences in {m['window_s']:.3f} s, "
                     f"{m.get('window', 'command')} window)")
    if r.get("layers"):
        rows = layer_table([x["op"] for x in r["layers"]], [x["macs"] for x in r["layers"]],
                           [x["count"] for x in r["layers"]])
        lines.append(render_layers(rows, lat["unit"]))
    return "\n".join(lines)


def run_input(board: Board, input_file: Path, *, build_dir: Path, port: str | None = None,
              emulator: bool = False) -> dict[str, Any]:
    """Run one input (.npy, model dtype or float to be quantized) and return the outputs."""
    if not input_file.is_file() or input_file.suffix != ".npy":
        raise DataError(f"{input_file}: expected an existing .npy file with one input sample")
    try:
        x = np.load(input_file, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{input_file}: not a readable .npy array ({exc})") from None
    with open_device(board, elf=build_dir / "firmware" / "fw.elf", port=port,
                     emulator=emulator) as s:
        io = s.info.inputs[0]
        if int(np.prod(x.shape)) != int(np.prod(io.shape)):
            raise DataError(f"{input_file}: shape {x.shape} does not match the model input "
                            f"{io.shape}")
        if x.dtype.kind == "f" and io.dtype != "float32":
            info = np.iinfo(np.dtype(io.dtype))
            x = np.clip(np.round(x / io.scale) + io.zero_point, info.min, info.max)
        outs, res = s.infer([x.reshape(io.shape).astype(io.dtype)])
        out_io = s.info.outputs[0]
    y = outs[0]
    deq = (y.astype(np.float64) - out_io.zero_point) * out_io.scale if out_io.scale else y
    return {"output": y.reshape(-1).tolist(), "dequantized": np.asarray(deq).reshape(-1).tolist(),
            "argmax": int(np.argmax(y)), "count": res.counts[0], "unit": res.unit}
