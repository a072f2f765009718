"""Static arena planning for edgeq-rt: every activation and scratch buffer gets a fixed offset.

Buffers live from the step that writes them to the last step that reads them (model inputs from
before the first step, model outputs past the last). Two buffers may share bytes only when their
lifetimes do not overlap, or when an *overlap* allows it: a kernel that walks its input and
output in raster order may write its output over input bytes it has finished reading, so the
output may start at most ``d`` bytes above the input's start (``d`` from the kernel's access
pattern; see ``edgeq.codegen.ops_conv.raster_overlap``). Offsets are found greedily (TFLM's
"greedy by size" and a few other orders); the smallest arena wins. Deterministic: ties are
broken by name.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALIGNMENT = 16
SHUFFLED_ORDERS = 64  # extra first-fit orders tried when overlaps are allowed


def align_up(n: int, alignment: int = ALIGNMENT) -> int:
    return -(-n // alignment) * alignment


@dataclass
class Buffer:
    """One arena allocation: live during steps ``first..last`` inclusive."""

    name: str
    size: int
    first: int
    last: int
    offset: int = -1

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class ArenaPlan:
    buffers: list[Buffer]
    arena_bytes: int
    strategy: str
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def offset_of(self, name: str) -> int:
        for b in self.buffers:
            if b.name == name:
                return b.offset
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "arena_bytes": self.arena_bytes,
            "strategy": self.strategy,
            "buffers": [
                {"name": b.name, "size": b.size, "offset": b.offset, "first": b.first,
                 "last": b.last}
                for b in self.buffers
            ],
            "timeline": self.timeline,
        }


Overlap = tuple[str, str, int]  # (output buffer, input buffer, d): out offset <= in offset + d


def _busy(buf: Buffer, off: int, other: Buffer, rel: dict[tuple[str, str], int]) -> tuple[int, int]:
    """Offsets of ``other`` (placed at ``off``) that ``buf`` must not intersect."""
    if (buf.name, other.name) in rel:  # buf is the output, other its input
        d = max(rel[buf.name, other.name], -buf.size)
        return off + d + buf.size, off + other.size
    if (other.name, buf.name) in rel:  # buf is the input, other its output
        d = max(rel[other.name, buf.name], -other.size)
        return off, off - d
    return off, off + other.size


def _place(
    order: Sequence[Buffer], alignment: int, rel: dict[tuple[str, str], int] | None = None
) -> dict[str, int]:
    """First-fit each buffer at the lowest aligned offset clear of the time-overlapping ones."""
    rel = rel or {}
    placed: list[tuple[int, Buffer]] = []
    offsets: dict[str, int] = {}
    for buf in order:
        busy = sorted(
            iv for iv in (_busy(buf, off, b, rel) for off, b in placed
                          if b.overlaps_in_time(buf) and b.size > 0)
            if iv[0] < iv[1]
        )
        candidate = 0
        for start, end in busy:
            if candidate + buf.size <= start:
                break
            candidate = max(candidate, align_up(end, alignment))
        offsets[buf.name] = candidate
        placed.append((candidate, buf))
    return offsets


_ORDERS: dict[str, Callable[[Buffer], tuple[Any, ...]]] = {
    "greedy_by_size": lambda b: (-b.size, b.first, b.name),
    "greedy_by_breadth": lambda b: (-(b.size * (b.last - b.first + 1)), b.first, b.name),
    "greedy_by_lifetime": lambda b: (-(b.last - b.first), -b.size, b.name),
    "in_order": lambda b: (b.first, -b.size, b.name),
    # last buffers first: a chain of overlapping layers then stacks upwards from offset 0
    "reverse_order": lambda b: (-b.last, -b.first, -b.size, b.name),
}


def plan_arena(
    buffers: Sequence[Buffer],
    num_steps: int,
    alignment: int = ALIGNMENT,
    overlaps: Sequence[Overlap] = (),
) -> ArenaPlan:
    """Assign offsets to ``buffers``; the strategy giving the smallest arena wins."""
    best: tuple[int, str, dict[str, int]] | None = None
    rel = {(o, i): d for o, i, d in overlaps}
    candidates: list[tuple[str, list[Buffer], bool]] = []
    for use_overlaps in ((False, True) if rel else (False,)):
        for strategy, key in _ORDERS.items():
            name = strategy + ("+overlap" if use_overlaps else "")
            candidates.append((name, sorted(buffers, key=key), use_overlaps))
    if rel:
        # Overlapping chains (conv -> conv -> ADD with a live residual) need the output of a
        # layer placed just below its input, which no single sort order guarantees: a fixed set
        # of seeded shuffles explores more first-fit orders, still deterministically.
        by_name = sorted(buffers, key=lambda b: b.name)
        rng = random.Random(0)
        for k in range(SHUFFLED_ORDERS):
            order = list(by_name)
            rng.shuffle(order)
            candidates.append((f"shuffled_{k}+overlap", order, True))
    for name, order, use_overlaps in candidates:
        offsets = _place(order, alignment, rel if use_overlaps else None)
        size = max((offsets[b.name] + b.size for b in buffers), default=0)
        if best is None or size < best[0]:
            best = (size, name, offsets)
    assert best is not None or not buffers
    size, strategy, offsets = best if best is not None else (0, "empty", {})
    planned = [
        Buffer(b.name, b.size, b.first, b.last, offsets[b.name])
        for b in sorted(buffers, key=lambda b: b.name)
    ]
    check_plan(planned, overlaps)
    plan = ArenaPlan(planned, align_up(max(size, alignment), alignment), strategy)
    plan.timeline = timeline(planned, num_steps)
    return plan


def check_plan(buffers: Sequence[Buffer], overlaps: Sequence[Overlap] = ()) -> None:
    """No two buffers alive at the same step may share a byte unless an overlap allows it (an
    invariant, not user input)."""
    rel = {(o, i): d for o, i, d in overlaps}
    for i, a in enumerate(buffers):
        for b in buffers[i + 1 :]:
            if a.size and b.size and a.overlaps_in_time(b):
                if a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                    if (a.name, b.name) in rel and a.offset <= b.offset + rel[a.name, b.name]:
                        continue
                    if (b.name, a.name) in rel and b.offset <= a.offset + rel[b.name, a.name]:
                        continue
                    raise AssertionError(f"arena plan overlaps: {a.name} and {b.name}")


def timeline(buffers: Sequence[Buffer], num_steps: int) -> list[dict[str, Any]]:
    """Per step: live buffers, their total bytes, and the highest arena byte in use."""
    rows = []
    for step in range(num_steps):
        live = [b for b in buffers if b.first <= step <= b.last]
        rows.append({
            "step": step,
            "live": [b.name for b in live],
            "live_bytes": sum(b.size for b in live),
            "high_water": max((b.offset + b.size for b in live), default=0),
        })
    return rows


def plot_timeline(plan: ArenaPlan, labels: Sequence[str], path: str | Path) -> Path:
    """A PNG of the arena over time: one rectangle per buffer (x = step, y = bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(labels) + 3), 4.5))
    cmap = plt.get_cmap("tab20")
    for k, b in enumerate(plan.buffers):
        x0, x1 = max(b.first, -1) - 0.45, min(b.last, len(labels)) + 0.45
        ax.add_patch(Rectangle((x0, b.offset), x1 - x0, b.size, facecolor=cmap(k % 20),
                               edgecolor="black", linewidth=0.5))
        if b.size > plan.arena_bytes * 0.04:
            ax.text((x0 + x1) / 2, b.offset + b.size / 2, b.name, ha="center", va="center",
                    fontsize=6)
    ax.set_xlim(-1.5, len(labels) + 0.5)
    ax.set_ylim(0, plan.arena_bytes)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("arena offset (bytes)")
    ax.set_title(f"edgeq-rt arena: {plan.arena_bytes} bytes ({plan.strategy})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
