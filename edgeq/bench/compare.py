"""``edgeq bench --compare DIR``: two builds of one model on one board, side by side.

Typically the same model built with edgeq-rt and with TFLite Micro (``edgeq build --runtime
tflm``): each firmware is benched exactly as ``edgeq bench`` does it alone, and the table puts
flash, RAM and latency (exact instructions, estimated cycles and ms in QEMU) next to each other.
Comparing different models would compare nothing, so their hashes must match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeq.artifacts import BuildDir
from edgeq.errors import DeviceError
from edgeq.toolchain.boards import Board


def build_facts(build_dir: Path) -> dict[str, Any]:
    """Memory of a build, from its manifest."""
    bd = BuildDir(build_dir)
    built = bd.manifest_section("build")
    if not built:
        raise DeviceError(f"{build_dir} has no firmware build recorded; run `edgeq build` "
                          "into it first")
    return {"build_dir": str(build_dir), "memory": built.get("memory", {})}


def compare(board: Board, build_dirs: list[Path], **bench_args: Any) -> dict[str, Any]:
    """Bench every build in ``build_dirs`` on ``board`` (``bench_args`` as for ``bench``)."""
    from edgeq.bench.runner import bench

    rows = []
    for d in build_dirs:
        facts = build_facts(d)
        facts["bench"] = bench(board, build_dir=d, **bench_args)
        facts["runtime"] = facts["bench"]["runtime"]
        rows.append(facts)
    hashes = {r["bench"]["model_hash"] for r in rows}
    if len(hashes) != 1:
        raise DeviceError("the builds run different models (hashes "
                          f"{', '.join(sorted(hashes))}); compare builds of one model")
    return {"board": board.name, "model": rows[0]["bench"]["model"], "builds": rows}


def render_compare(r: dict[str, Any]) -> str:
    head = (f"{'runtime':<32} {'flash B':>9} {'RAM B':>9} {'arena B':>8} {'median':>12} "
            f"{'unit':<13} {'est. cycles':>12} {'est. ms':>9}  build")
    lines = [f"{r['model']} on {r['board']}", head, "-" * len(head)]
    base = None
    for row in r["builds"]:
        m, lat = row["memory"], row["bench"]["latency"]
        est = lat.get("estimate") or {}
        cycles = est.get("cycles")
        ms = est.get("ms", lat.get("median_ms"))
        lines.append(
            f"{row['runtime']:<32} {m.get('flash', 0):>9,} {m.get('ram', 0):>9,} "
            f"{m.get('arena', 0):>8,} {lat['median']:>12,.0f} {lat['unit']:<13} "
            f"{'-' if cycles is None else f'{cycles:,}':>12} "
            f"{'-' if ms is None else f'{ms:.3f}':>9}  {row['build_dir']}")
        base = base or lat["median"]
    if len(r["builds"]) > 1 and base:
        ratios = ", ".join(f"{row['runtime']} {row['bench']['latency']['median'] / base:.2f}x"
                           for row in r["builds"][1:])
        lines.append(f"median relative to the first: {ratios}")
    return "\n".join(lines)
