"""Emulator latency as a user reads it: exact instructions from the QEMU plugin, and estimated
cycles and milliseconds at the board's clock (``edgeq.device.timing``), per inference and per
layer.

Per-layer rows follow the field's convention: MACs only for convolution, depthwise, fully
connected and transpose convolution; every other op (ADD, pooling, ...) is counted in output
elements, so the MAC total equals the graph's.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.device.timing import Events, TimingEstimate, Window, estimate
from edgeq.errors import DeviceError
from edgeq.toolchain.boards import Board

log = logging.getLogger(__name__)

MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def exact_latency(windows: list[Window], board: Board) -> dict[str, Any]:
    """Median/min/max exact instructions of the timed runs and the median run's estimate."""
    if not windows:
        raise DeviceError("the QEMU plugin recorded no timed run; rebuild the firmware with edgeq")
    counts = [w.total.insns for w in windows]
    median = statistics.median(counts)
    mid = min(windows, key=lambda w: abs(w.total.insns - median))
    est = estimate(mid.total, board)
    return {"unit": "instructions", "source": "QEMU plugin (exact)", "runs": len(counts),
            "median": float(median), "min": min(counts), "max": max(counts), "median_ms": None,
            "estimate": est.to_dict(), "events": vars(mid.total)}


def emulator_latency(board: Board, windows: list[Window], power_model: str | None,
                     tflite: Path | None, device_layers: list[dict[str, Any]] | None
                     ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]] | None]:
    """(latency, energy estimate, per-layer rows) of plugin windows from an emulated board.

    Every window is one timed run; ``device_layers`` are the firmware's (op, MACs, count) rows of
    the last run, whose plugin marks give the per-layer counts."""
    from edgeq.bench.energy import estimate_energy_for, power_board_for

    lat = exact_latency(windows, board)
    mid = min(windows, key=lambda w: abs(w.total.insns - lat["median"]))
    power_board = power_board_for(board, power_model)
    energy = estimate_energy_for(power_board, estimate(mid.total, power_board).cycles, board)
    rows = None
    if device_layers is not None:
        graph = graph_layers(tflite) if tflite is not None and tflite.is_file() else None
        plugin_rows = layer_rows([(x["op"], x["macs"]) for x in device_layers],
                                 windows[-1].layers(), board, graph)
        rows = [{**r.to_dict(), "count": r.instructions, "device_count": x["count"]}
                for r, x in zip(plugin_rows, device_layers, strict=True)]
    return lat, energy.to_dict(), rows


def render_latency(lat: dict[str, Any]) -> str:
    text = (f"{lat['median']:,.0f} {lat['unit']}/inference (median of {lat['runs']}; min "
            f"{lat['min']:,}, max {lat['max']:,})")
    if lat.get("median_ms") is not None:
        text += f" = {lat['median_ms']:.3f} ms"
    e = lat.get("estimate")
    if e:
        text += (f"\n    estimate: {e['cycles']:,} cycles = {e['ms']:.3f} ms at "
                 f"{e['clock_hz'] / 1e6:g} MHz ({e['note']})")
    return text


@dataclass(frozen=True)
class GraphLayer:
    op: str
    shapes: str  # "1x49x10x1 -> 1x25x5x64"
    output_elements: int


def graph_layers(tflite: Path) -> list[GraphLayer]:
    """The device's layers (edgeq-rt kernel calls, views excluded) with their graph shapes."""
    from edgeq.codegen.edgeq_rt import lower_model
    from edgeq.tflite import read_tflite

    model = read_tflite(tflite)
    out = []
    for call in lower_model(model, str(tflite)):
        if call.view:
            continue
        op = model.operators[call.layer]
        ins = [model.tensors[i] for i in op.inputs if i >= 0
               and not model.tensors[i].is_constant]
        outs = [model.tensors[i] for i in op.outputs]
        shape = " + ".join("x".join(map(str, t.shape)) for t in ins)
        shape += " -> " + " + ".join("x".join(map(str, t.shape)) for t in outs)
        out.append(GraphLayer(op.opcode, shape, int(sum(np.prod(t.shape) for t in outs))))
    return out


@dataclass(frozen=True)
class LayerRow:
    index: int
    op: str
    shapes: str
    macs: int  # 0 for ops that are not MAC ops
    elements: int  # output elements for ops that are not MAC ops, else 0
    instructions: int
    cycles: int

    @property
    def instr_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None

    @property
    def cycles_per_mac(self) -> float | None:
        return self.cycles / self.macs if self.macs else None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "op": self.op, "shapes": self.shapes, "macs": self.macs,
                "elements": self.elements, "instructions": self.instructions,
                "cycles_estimate": self.cycles, "instr_per_mac": self.instr_per_mac,
                "cycles_per_mac": self.cycles_per_mac}


def layer_rows(device_layers: list[tuple[str, int]], layer_events: list[Events], board: Board,
               graph: list[GraphLayer] | None = None) -> list[LayerRow]:
    """Rows from the device's (op name, MACs) per layer and the plugin's events per layer."""
    if len(layer_events) != len(device_layers):
        raise DeviceError(f"the plugin saw {len(layer_events)} layers, the firmware reports "
                          f"{len(device_layers)}; rebuild the profiled firmware")
    if graph is not None and len(graph) != len(device_layers):
        log.warning("graph has %d layers, device %d: shapes left out", len(graph),
                    len(device_layers))
        graph = None
    rows = []
    for i, ((op, macs), ev) in enumerate(zip(device_layers, layer_events, strict=True)):
        g = graph[i] if graph else None
        is_mac = op in MAC_OPS
        elements = 0 if is_mac else (g.output_elements if g else macs)
        rows.append(LayerRow(i, op, g.shapes if g else "", macs if is_mac else 0, elements,
                             ev.insns, estimate(ev, board).cycles))
    return rows


def render_layer_rows(rows: list[LayerRow], est: TimingEstimate | dict[str, Any] | None = None
                      ) -> str:
    head = (f"{'#':>3} {'op':<20} {'shapes':<32} {'MACs':>11} {'elements':>9} "
            f"{'instructions':>13} {'share':>6} {'instr/MAC':>9} {'est. cycles':>12} "
            f"{'cyc/MAC':>7}")
    lines = [head, "-" * len(head)]
    total = sum(r.instructions for r in rows) or 1

    def ratio(v: float | None) -> str:
        return f"{v:.2f}" if v is not None else "-"

    for r in rows:
        macs_s = f"{r.macs:,}" if r.macs else "-"
        elements = f"{r.elements:,}" if r.elements else "-"
        lines.append(f"{r.index:>3} {r.op[:20]:<20} {r.shapes[:32]:<32} "
                     f"{macs_s:>11} {elements:>9} "
                     f"{r.instructions:>13,} {100 * r.instructions / total:>5.1f}% "
                     f"{ratio(r.instr_per_mac):>9} {r.cycles:>12,} {ratio(r.cycles_per_mac):>7}")
    macs = sum(r.macs for r in rows)
    cycles = sum(r.cycles for r in rows)
    lines.append(f"{'':>3} {'total':<20} {'':<32} {macs:>11,} {'':>9} "
                 f"{sum(r.instructions for r in rows):>13,} {'':>6} "
                 f"{ratio(total / macs if macs else None):>9} {cycles:>12,} "
                 f"{ratio(cycles / macs if macs else None):>7}")
    lines.append("(cycles are estimates from the Cortex-M timing model; instructions are exact)")
    return "\n".join(lines)


def measured_layer_rows(device_layers: list[dict[str, Any]], tflite: Path | None
                        ) -> list[dict[str, Any]]:
    """A real board's per-layer cycles (DWT) in the same convention: MACs for MAC ops only,
    output elements for the rest, graph shapes, cycles/MAC."""
    graph = graph_layers(tflite) if tflite is not None and tflite.is_file() else None
    if graph is not None and len(graph) != len(device_layers):
        graph = None
    rows = []
    for i, x in enumerate(device_layers):
        g = graph[i] if graph else None
        is_mac = x["op"] in MAC_OPS
        macs = int(x["macs"]) if is_mac else 0
        rows.append({"index": x["index"], "op": x["op"], "shapes": g.shapes if g else "",
                     "macs": macs,
                     "elements": 0 if is_mac else (g.output_elements if g else int(x["macs"])),
                     "cycles": int(x["count"]), "count": int(x["count"]),
                     "cycles_per_mac": x["count"] / macs if macs else None})
    return rows


def render_measured_layers(rows: list[dict[str, Any]]) -> str:
    head = (f"{'#':>3} {'op':<20} {'shapes':<32} {'MACs':>11} {'elements':>9} "
            f"{'cycles':>13} {'share':>6} {'cyc/MAC':>7}")
    lines = [head, "-" * len(head)]
    total = sum(r["cycles"] for r in rows) or 1
    for r in rows:
        cpm = f"{r['cycles_per_mac']:.2f}" if r["cycles_per_mac"] is not None else "-"
        macs_s = f"{r['macs']:,}" if r["macs"] else "-"
        elements = f"{r['elements']:,}" if r["elements"] else "-"
        lines.append(f"{r['index']:>3} {r['op'][:20]:<20} {r['shapes'][:32]:<32} "
                     f"{macs_s:>11} {elements:>9} {r['cycles']:>13,} "
                     f"{100 * r['cycles'] / total:>5.1f}% {cpm:>7}")
    macs = sum(r["macs"] for r in rows)
    lines.append(f"{'':>3} {'total':<20} {'':<32} {macs:>11,} {'':>9} {total:>13,} {'':>6} "
                 f"{(f'{total / macs:.2f}' if macs else '-'):>7}")
    lines.append("(cycles measured by the board's DWT counter)")
    return "\n".join(lines)
