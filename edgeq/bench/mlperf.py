"""Measuring through the MLPerf Tiny harness (``--protocol mlperf`` firmware): accuracy of a
model over the protocol against the host oracle, and latency from the harness's own
``m-lap-us`` timestamps (the figure the MLPerf Tiny runner reports)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.artifacts import BuildDir
from edgeq.device.connect import connect_harness
from edgeq.device.mlperf import MlperfClient
from edgeq.errors import DeviceError
from edgeq.toolchain.boards import Board

log = logging.getLogger(__name__)


def dequantized(y: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    return (y - zero_point) * scale if scale else y


def harness_results(y: np.ndarray, scale: float, zero_point: int) -> tuple[float, ...]:
    """What the harness prints for output ``y``: each dequantized value as ``%.3f``."""
    return tuple(float(f"{v:.3f}") for v in dequantized(y, scale, zero_point))


def harness_mse(x: np.ndarray, y: np.ndarray, in_q: tuple[float, int],
                out_q: tuple[float, int]) -> tuple[float, ...]:
    """What the autoencoder harness prints: mean squared error of the dequantized
    reconstruction against the dequantized input, as ``%.3f``."""
    d = dequantized(y, *out_q) - dequantized(x, *in_q)
    return (float(f"{float(np.mean(d * d)):.3f}"),)


def validate_harness(client: MlperfClient, x: np.ndarray, expected: np.ndarray,
                     out_scale: float, out_zero_point: int,
                     labels: np.ndarray | None, *,
                     mse_input_q: tuple[float, int] | None = None,
                     input_offset: int = 0) -> dict[str, Any]:
    """Each sample through ``db`` + ``infer 1 0``: the printed results against the host
    oracle's output (dequantized, three decimals; for an autoencoder, with ``mse_input_q``
    the input's quantization, the reconstruction error) and, with labels, top-1 on both
    sides. The firmware adds ``input_offset`` to every db byte, so the bytes sent are the
    input's minus it (a uint8 dataset for an int8 model: offset -128)."""
    mismatched, first = 0, None
    device_pred, host_pred, laps = [], [], []
    sent, t_send = 0, 0.0
    for k in range(len(x)):
        raw = np.frombuffer(np.ascontiguousarray(x[k]).tobytes(), dtype=np.uint8)
        data = (raw.astype(np.int64) - input_offset).astype(np.uint8).tobytes() if input_offset \
            else raw.tobytes()
        t0 = time.perf_counter()
        client.load(data)
        t_send += time.perf_counter() - t0
        sent += len(data)
        r = client.infer(1, 0)
        want = (harness_results(expected[k], out_scale, out_zero_point) if mse_input_q is None
                else harness_mse(x[k], expected[k], mse_input_q, (out_scale, out_zero_point)))
        if r.results != want:
            mismatched += 1
            first = k if first is None else first
        device_pred.append(int(np.argmax(r.results)))
        host_pred.append(int(np.argmax(dequantized(expected[k], out_scale, out_zero_point))))
        if r.us_per_inference is not None:
            laps.append(r.us_per_inference)
    out: dict[str, Any] = {
        "protocol": "mlperf", "samples": len(x), "results_equal": mismatched == 0,
        "mismatched_samples": mismatched, "first_mismatch": first,
        "us_per_inference": float(np.median(laps)) if laps else None,
        "transfer": {"bytes": sent, "seconds": t_send,
                     "bytes_per_s": sent / t_send if t_send > 0 else None},
    }
    if labels is not None and mse_input_q is None and len(np.asarray(expected[0]).reshape(-1)) > 1:
        y = np.asarray(labels[:len(x)])
        out["device_accuracy"] = float(np.mean(np.array(device_pred) == y))
        out["host_accuracy"] = float(np.mean(np.array(host_pred) == y))
    return out


def bench_harness(board: Board, *, build_dir: Path, port: str | None = None,
                  emulator: bool = False, runs: int = 20, warmup: int = 1) -> dict[str, Any]:
    """``edgeq bench --protocol mlperf``: name, profile, and the latency of ``runs`` inferences
    between the harness's two timestamps, on the build's first test sample."""
    if runs <= 0:
        raise DeviceError("--runs must be positive")
    with connect_harness(board, elf=BuildDir(build_dir).elf, port=port,
                         emulator=emulator) as c:
        name, profile = c.name_(), c.profile()
        x = _first_input(build_dir)
        t0 = time.perf_counter()
        c.load(x)
        seconds = time.perf_counter() - t0
        r = c.infer(runs, warmup)
    return {"board": board.name, "protocol": "mlperf", "name": name, "profile": profile,
            "runs": runs, "warmup": warmup, "laps_us": list(r.laps_us),
            "us_per_inference": r.us_per_inference, "results": list(r.results),
            "transfer": {"bytes": len(x), "seconds": seconds,
                         "bytes_per_s": len(x) / seconds if seconds > 0 else None}}


def _first_input(build_dir: Path) -> bytes:
    """The first test sample as db bytes (minus the firmware's input offset, from the manifest)."""
    from edgeq.quantize.numerics import quantized_test_inputs

    bd = BuildDir(build_dir)
    tflite = bd.model
    if not tflite.is_file():
        raise DeviceError(f"{tflite} not found; run `edgeq build --protocol mlperf` first")
    offset = int(bd.manifest_section("build").get("firmware", {}).get("mlperf_input_offset", 0))
    x, _ = quantized_test_inputs(tflite, None, 1)
    raw = np.frombuffer(np.ascontiguousarray(x[0]).tobytes(), dtype=np.uint8)
    return (raw.astype(np.int64) - offset).astype(np.uint8).tobytes()


def render_harness_bench(r: dict[str, Any]) -> str:
    us = r["us_per_inference"]
    t = r["transfer"]
    lines = [f"{r['name']} ({r['profile'].get('model', '?')}, {r['profile'].get('profile', '?')})",
             f"latency: {us:,.1f} us/inference over {r['runs']} inferences (m-lap-us; "
             f"{r['warmup']} warm-up)" if us is not None else
             "latency: energy mode (timestamps are GPIO pulses, no m-lap-us)",
             f"results: [{', '.join(f'{v:.3f}' for v in r['results'])}]"]
    if t.get("bytes_per_s"):
        lines.append(f"input transfer: {t['bytes']:,} bytes in {t['seconds'] * 1e3:.1f} ms = "
                     f"{t['bytes_per_s'] / 1e3:,.1f} KB/s (hex db commands)")
    return "\n".join(lines)


def is_autoencoder(info: Any) -> bool:
    """One input and one output of the same element count: the MLPerf harness then reports
    the reconstruction error instead of the output vector."""
    ins, outs = info.input_tensors, info.output_tensors
    return (len(ins) == 1 and len(outs) == 1
            and int(np.prod(ins[0].shape)) == int(np.prod(outs[0].shape)))


def harness_defines(info: Any, input_offset: int = 0,
                    model_id: str | None = None) -> tuple[str, ...]:
    """Compiler defines that configure ``eq_mlperf.c`` for a model (``info``: its tflite)."""
    from edgeq.errors import BuildError

    out = [f"EQ_MLPERF_INPUT_OFFSET={int(input_offset)}"]
    if model_id:
        if not model_id.replace("_", "").isalnum() or not model_id.isascii():
            raise BuildError(f"--mlperf-model {model_id!r}: use letters and digits, e.g. ic01, "
                             "kws01, vww01, ad01")
        out.append(f'EQ_MLPERF_MODEL="{model_id}"')
    if is_autoencoder(info):
        out.append("EQ_MLPERF_RESULT_MSE=1")
    return tuple(out)


def run_harness_validation(board: Board, elf: Path, tflite: Path, *, data: str | None,
                           samples: int, port: str | None,
                           input_offset: int = 0) -> dict[str, Any]:
    """The build's test samples through the harness: printed results must equal the oracle's."""
    from edgeq.oracles import run_tflm
    from edgeq.quantize.numerics import quantized_test_inputs
    from edgeq.tflite import read_tflite

    info = read_tflite(tflite)
    x, y = quantized_test_inputs(tflite, data, samples)
    expected = run_tflm(tflite, x)[0]

    def q(t: Any) -> tuple[float, int]:
        return (float(t.quant.scale[0]), int(t.quant.zero_point[0])) if t.quant else (0.0, 0)

    out_q, in_q = q(info.output_tensors[0]), q(info.input_tensors[0])
    where = f"QEMU ({board.qemu_machine})" if board.emulated else f"{board.name} at {port}"
    log.info("running %d samples through the MLPerf Tiny harness on %s", len(x), where)
    with connect_harness(board, elf=elf, port=None if board.emulated else port,
                         emulator=board.emulated) as client:
        rep = validate_harness(client, x, expected, *out_q, y,
                               mse_input_q=in_q if is_autoencoder(info) else None,
                               input_offset=input_offset)
    if not rep["results_equal"]:
        raise DeviceError(f"harness results differ from the TFLM reference on "
                          f"{rep['mismatched_samples']}/{rep['samples']} samples (first: sample "
                          f"{rep['first_mismatch']}); report this edgeq bug with the model")
    return {"ran": True, "harness": rep}
