"""The arena planner on ResNet-8's buffers: the shortcut stays live while two raster-order convs
run, so only placing the second conv's output just below its dead input keeps the arena near
two 16 KB feature maps instead of three."""

from __future__ import annotations

from edgeq.codegen.planner import ALIGNMENT, Buffer, check_plan, plan_arena

MAP = 16384

# edgeq-rt's lowering of the ResNet-8 look-alike (32x32x3 input, 16/32/64 channels): buffer
# (name, bytes, first step, last step) and raster overlaps (output, input, lag), as
# edgeq.codegen.edgeq_rt hands them to the planner. t21 is the first block's shortcut (read
# by the ADD, which runs in place into it, and by the next block).
BUFFERS = [("t0", 3072, -1, 0), ("t21", MAP, 0, 5), ("t22", MAP, 1, 2), ("t23", MAP, 2, 3),
           ("t25", 8192, 4, 10), ("t26", 8192, 5, 6), ("t27", 8192, 6, 7), ("t29", 4096, 8, 9),
           ("t30", 4096, 9, 11), ("t31", 4096, 10, 12), ("t33", 64, 12, 13),
           ("t35", 10, 13, 15)]
OVERLAPS = [("t21", "t0", -13414), ("t23", "t22", -544), ("t26", "t21", -32),
            ("t27", "t26", -576), ("t30", "t29", -640), ("t31", "t25", -64),
            ("t33", "t31", -64)]


def _buffers() -> list[Buffer]:
    return [Buffer(n, s, f, la) for n, s, f, la in BUFFERS]


def test_resnet8_arena_is_two_maps_and_a_lag() -> None:
    plan = plan_arena(_buffers(), 15, overlaps=OVERLAPS)
    assert plan.arena_bytes <= 2 * MAP + 544 + ALIGNMENT  # first-fit orders alone: 3 maps
    check_plan(plan.buffers, OVERLAPS)
    assert plan.offset_of("t23") <= plan.offset_of("t22") - 544
    again = plan_arena(_buffers(), 15, overlaps=OVERLAPS)  # deterministic
    assert again.as_dict() == plan.as_dict()


def test_without_overlaps_three_maps_are_live_at_once() -> None:
    assert plan_arena(_buffers(), 15).arena_bytes >= 3 * MAP
