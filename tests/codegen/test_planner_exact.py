"""Arena planner against checks written here: byte-level overlap of live buffers, exact arena
size, known optima, the timeline recomputed, and the plan's own checker fed hand-made plans."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.codegen.planner import Buffer, check_plan, plan_arena


def _clashes(bufs: list[Buffer], allowed: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    """Pairs alive at a common step that share a byte, except an output starting at most d
    bytes above its input (the raster-overlap rule)."""
    bad = []
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            if not (a.size and b.size):
                continue
            steps = set(range(a.first, a.last + 1)) & set(range(b.first, b.last + 1))
            bytes_ = set(range(a.offset, a.offset + a.size)) & set(range(b.offset,
                                                                         b.offset + b.size))
            if steps and bytes_:
                if (a.name, b.name) in allowed and a.offset <= b.offset + allowed[a.name, b.name]:
                    continue
                if (b.name, a.name) in allowed and b.offset <= a.offset + allowed[b.name, a.name]:
                    continue
                bad.append((a.name, b.name))
    return bad


def test_random_plans_are_valid_tight_and_described() -> None:
    rng = np.random.default_rng(7)
    for trial in range(40):
        bufs = []
        for k in range(int(rng.integers(1, 9))):
            first = int(rng.integers(-1, 6))
            bufs.append(Buffer(f"b{k}", int(rng.integers(0, 700)), first,
                               first + int(rng.integers(0, 3))))
        plan = plan_arena(bufs, 8)
        by_name = {b.name: b for b in plan.buffers}
        assert sorted(by_name) == sorted(b.name for b in bufs)
        for b in bufs:  # sizes and lifetimes kept, offsets aligned
            p = by_name[b.name]
            assert (p.size, p.first, p.last) == (b.size, b.first, b.last) and p.offset % 16 == 0
            assert plan.offset_of(b.name) == p.offset
        assert _clashes(plan.buffers, {}) == [], trial
        top = max(b.offset + b.size for b in plan.buffers)
        assert plan.arena_bytes == max(16, -(-top // 16) * 16)
        peak = max(sum(b.size for b in bufs if b.first <= s <= b.last) for s in range(-1, 9))
        assert plan.arena_bytes >= peak
        rows = plan.timeline
        assert [r["step"] for r in rows] == list(range(8))
        for r in rows:
            live = [b for b in plan.buffers if b.first <= r["step"] <= b.last]
            assert r["live"] == [b.name for b in live]
            assert r["live_bytes"] == sum(b.size for b in live)
            assert r["high_water"] == max((b.offset + b.size for b in live), default=0)
        d = plan.as_dict()
        assert d["arena_bytes"] == plan.arena_bytes and d["strategy"] == plan.strategy
        assert d["timeline"] == rows
        assert d["buffers"] == [{"name": b.name, "size": b.size, "offset": b.offset,
                                 "first": b.first, "last": b.last} for b in plan.buffers]
    with pytest.raises(KeyError, match="nope"):
        plan.offset_of("nope")


def test_known_optima() -> None:
    # lifetimes never meet: everything at offset 0
    apart = [Buffer("a", 100, 0, 0), Buffer("b", 300, 1, 1), Buffer("c", 50, 2, 3)]
    plan = plan_arena(apart, 4)
    assert plan.arena_bytes == 304 and all(b.offset == 0 for b in plan.buffers)
    # all alive together: the aligned sizes add up, the largest goes first (greedy by size)
    together = [Buffer("x", 40, 0, 2), Buffer("y", 100, 0, 2), Buffer("z", 17, 1, 1)]
    plan = plan_arena(together, 3)
    assert plan.arena_bytes == 112 + 48 + 32
    assert plan.offset_of("y") == 0
    # empty sizes cost nothing; an empty model still gets the minimum arena
    assert plan_arena([Buffer("e", 0, 0, 1)], 2).arena_bytes == 16
    empty = plan_arena([], 0)
    assert (empty.arena_bytes, empty.buffers, empty.timeline) == (16, [], [])


def test_raster_overlap_lets_an_output_sit_on_its_input() -> None:
    bufs = [Buffer("in", 1000, -1, 0), Buffer("out", 1000, 0, 1), Buffer("w", 64, 0, 0)]
    plain = plan_arena(bufs, 2)
    assert plain.arena_bytes == 2 * 1008 + 64 and "+overlap" not in plain.strategy
    plan = plan_arena(bufs, 2, overlaps=[("out", "in", 0)])
    assert plan.strategy.endswith("+overlap") and plan.arena_bytes == 1008 + 64
    assert plan.offset_of("out") <= plan.offset_of("in")
    assert _clashes(plan.buffers, {("out", "in"): 0}) == []
    assert _clashes(plan.buffers, {}) != []  # they do share bytes: only the overlap allows it
    # an output allowed to start 256 bytes above its input
    plan = plan_arena(bufs, 2, overlaps=[("out", "in", 256)])
    assert _clashes(plan.buffers, {("out", "in"): 256}) == []
    assert plan.offset_of("out") <= plan.offset_of("in") + 256
    assert plan.arena_bytes <= 1008 + 256 + 64


def test_check_plan_flags_exactly_the_forbidden_overlaps() -> None:
    a, b = Buffer("a", 32, 0, 1, 0), Buffer("b", 32, 1, 2, 16)
    with pytest.raises(AssertionError, match="arena plan overlaps: a and b"):
        check_plan([a, b])
    check_plan([a, Buffer("b", 32, 1, 2, 32)])  # touching, not sharing
    check_plan([a, Buffer("b", 32, 2, 3, 0)])  # same bytes, different steps
    check_plan([a, Buffer("b", 0, 1, 2, 0)])  # empty buffer
    check_plan([a, b], [("b", "a", 16)])  # output b starts 16 above input a: allowed
    check_plan([b, a], [("b", "a", 16)])
    with pytest.raises(AssertionError):
        check_plan([a, b], [("b", "a", 15)])
    check_plan([a, b], [("a", "b", 0)])  # a as b's output: it starts below b, allowed
    with pytest.raises(AssertionError):
        check_plan([a, b], [("a", "b", -17)])
    check_plan([Buffer("o", 32, 0, 1, 0), Buffer("i", 32, 0, 1, 16)], [("o", "i", 0)])
    with pytest.raises(AssertionError):
        check_plan([Buffer("o", 32, 0, 1, 16), Buffer("i", 32, 0, 1, 0)], [("o", "i", 15)])
