"""Energy: the datasheet-based estimate and the power-monitor integration math on recorded arrays."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.bench.energy import estimate_energy, gpio_window, integrate_energy
from edgeq.bench.stats import latency_stats, layer_table, render_layers
from edgeq.errors import DeviceError
from edgeq.toolchain.boards import resolve_target


def test_estimate_on_a_real_board_uses_its_datasheet_current():
    b = resolve_target(board="nucleo-l4r5zi")  # 110 uA/MHz, 3.3 V, firmware at 120 MHz
    e = estimate_energy(b, 120_000_000, "cycles")  # one second of work at 120 MHz
    assert e.current_a == pytest.approx(110e-6 * 120) and e.clock_hz == 120_000_000
    assert e.joules == pytest.approx(3.3 * 13.2e-3 * 1.0)
    assert "120 MHz" in e.note
    assert "estimate" in e.note and e.to_dict()["estimate"] is True


def test_estimate_is_clock_independent_and_linear_in_cycles():
    a = estimate_energy(resolve_target(board="nrf52840dk"), 1_000_000, "cycles")
    assert a.joules == pytest.approx(3.0 * 52e-6 * 1_000_000 / 1e6)
    b = estimate_energy(resolve_target(board="nrf52840dk"), 2_000_000, "cycles")
    assert b.joules == pytest.approx(2 * a.joules)


def test_emulated_board_estimate_is_labelled_with_its_reference_board():
    e = estimate_energy(resolve_target(board="mps2-an386"), 1_000_000, "instructions")
    assert e.model_board == "nucleo-l4r5zi"
    assert e.joules == pytest.approx(3.3 * 110e-6 * 1.0)  # 1e6 cycles -> V * k * cycles
    assert e.clock_hz == 120_000_000  # the reference board's operating point
    m7 = estimate_energy(resolve_target(board="mps2-an500"), 1_000_000, "instructions")
    assert m7.model_board == "nucleo-h743zi" and m7.clock_hz == 400_000_000  # not max 480
    assert "emulated" in e.note and "instructions counted as cycles" in e.note


def test_integrate_constant_power_exactly():
    i = np.full(1001, 0.010)  # 10 mA for 1 s at 1 kHz
    assert integrate_energy(i, 3.0, sample_rate_hz=1000.0) == pytest.approx(0.030)
    assert integrate_energy(i, 3.0, sample_rate_hz=1000.0, inferences=10) == pytest.approx(0.003)


def test_integrate_window_with_interpolated_edges_and_voltage_array():
    t = np.linspace(0.0, 1.0, 11)  # 0.1 s steps
    idx = np.arange(11)
    i = np.where((idx >= 3) & (idx <= 7), 0.02, 0.001)
    v = np.full_like(t, 2.5)
    # ramp: current changes linearly between 0.2-0.3 and 0.7-0.8, flat 20 mA inside
    e = integrate_energy(i, v, times_s=t, window=(0.3, 0.7), inferences=4)
    assert e == pytest.approx(2.5 * 0.02 * 0.4 / 4)
    e_half = integrate_energy(i, v, times_s=t, window=(0.25, 0.3))
    assert e_half == pytest.approx(2.5 * 0.05 * (0.0105 + 0.02) / 2)


def test_integrate_recorded_sine_matches_analytic():
    fs = 100_000.0
    t = np.arange(0, 0.01, 1 / fs)
    i = 0.005 + 0.002 * np.sin(2 * np.pi * 1000 * t)  # 10 periods: the sine integrates to 0
    e = integrate_energy(i, 3.3, sample_rate_hz=fs)
    assert e == pytest.approx(3.3 * 0.005 * t[-1], rel=1e-3)


def test_gpio_window_and_errors():
    t = np.arange(10) * 0.1
    logic = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 0])
    assert gpio_window(t, logic) == pytest.approx((0.2, 0.4))
    with pytest.raises(DeviceError, match="never went high"):
        gpio_window(t, np.zeros(10))
    with pytest.raises(DeviceError, match="did not go low"):
        gpio_window(t, np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1]))
    with pytest.raises(DeviceError, match="outside the recording"):
        integrate_energy(np.ones(10), 1.0, times_s=t, window=(0.5, 2.0))
    with pytest.raises(DeviceError, match="increasing"):
        integrate_energy(np.ones(10), 1.0, times_s=t[::-1])
    with pytest.raises(DeviceError, match="sample_rate_hz or times_s"):
        integrate_energy(np.ones(10), 1.0)


def test_latency_stats_and_layer_table():
    s = latency_stats([120, 100, 110, 400], "cycles", 100_000_000)
    assert (s.median, s.min, s.max, s.runs) == (115.0, 100, 400, 4)
    assert s.median_ms == pytest.approx(115 / 100_000)
    assert latency_stats([40, 80], "instructions", 25_000_000).median_ms is None
    rows = layer_table(["CONV_2D", "SOFTMAX"], [1000, 0], [4000, 100])
    assert rows[0].macs_per_count == 0.25 and rows[1].macs_per_count is None
    text = render_layers(rows, "cycles")
    assert "CONV_2D" in text and "0.250" in text and "4,100" in text


def test_ppk2_chunks_become_one_timestamped_series():
    from edgeq.bench.monitors import chunks_to_series

    rate = 100_000.0
    chunks = [(1.0, np.full(100, 2e-3)), (1.001, np.full(100, 4e-3))]
    rec = chunks_to_series(chunks, rate, 3.3)
    t, i, v = rec.times_s, rec.current_a, rec.voltage_v
    assert rec.marker is None
    assert len(t) == 200 and np.all(np.diff(t) > 0)
    assert t[99] == pytest.approx(1.0) and t[0] == pytest.approx(1.0 - 99 / rate)
    assert t[-1] == pytest.approx(1.001) and set(v) == {3.3}
    # a burst of 2 inferences inside the second chunk at a constant 4 mA
    e = integrate_energy(i, v, times_s=t, window=(1.0005, 1.0009), inferences=2)
    assert e == pytest.approx(3.3 * 4e-3 * 0.0004 / 2)
    with pytest.raises(DeviceError, match="no samples"):
        chunks_to_series([], rate, 3.3)


def test_marker_spans_give_energy_of_exactly_the_timed_inferences():
    from edgeq.bench.energy import gpio_windows, marked_energy
    from edgeq.bench.monitors import chunks_to_series

    # 3 inferences of 1 ms at 10 mA, separated by 2 ms of 50 mA UART/copy work that the
    # command window would include; sampled at 100 kS/s and split into two chunks.
    rate = 100_000.0
    n = 1200
    t_idx = np.arange(n)
    marker = np.zeros(n, dtype=bool)
    for k in range(3):
        marker[200 + 300 * k:300 + 300 * k] = True
    current = np.where(marker, 10e-3, 50e-3)
    rec = chunks_to_series([(5.0 + 599 / rate, current[:600]), (5.0 + 1199 / rate, current[600:])],
                           rate, 3.0, [marker[:600], marker[600:]])
    assert rec.marker is not None and rec.marker.sum() == 300
    spans = gpio_windows(rec.times_s, rec.marker)
    assert len(spans) == 3 and spans[0][0] == pytest.approx(5.0 + 200 / rate)
    joules, span = marked_energy(rec.current_a, rec.voltage_v, rec.times_s, rec.marker, 3)
    assert span == pytest.approx(1e-3)
    # the 0.01 ms edge samples interpolate between 10 and 50 mA: 1 ms at 10 mA, +/- one sample
    assert joules == pytest.approx(3.0 * 10e-3 * 1e-3, rel=0.03)
    # over the command window the same burst reads ~3x higher: the marker is what removes it
    whole = integrate_energy(rec.current_a, rec.voltage_v, times_s=rec.times_s,
                             window=(rec.times_s[150], rec.times_s[950]), inferences=3)
    assert whole > 2 * joules
    with pytest.raises(DeviceError, match="pulsed 3 times for 4 inferences"):
        marked_energy(rec.current_a, rec.voltage_v, rec.times_s, rec.marker, 4)
    assert t_idx.size == n


def test_monitor_adapters_say_what_is_missing():
    import importlib.util

    from edgeq.bench.monitors import open_monitor

    with pytest.raises(DeviceError, match="needs --monitor-port"):
        open_monitor("ppk2", None)
    if importlib.util.find_spec("ppk2_api") is None:
        with pytest.raises(DeviceError, match="pip install ppk2-api"):
            open_monitor("ppk2", "/dev/ttyEDGEQ_NOPE")
    if importlib.util.find_spec("joulescope") is None:
        with pytest.raises(DeviceError, match="pip install joulescope"):
            open_monitor("joulescope", None)


def test_clock_status_flags_a_board_that_fell_back_to_its_reset_clock():
    from edgeq.bench.stats import clock_status

    b = resolve_target(board="nucleo-l4r5zi")
    ok, note = clock_status(b, 120_000_000)
    assert ok and note.startswith("120 MHz")
    ok, note = clock_status(b, 4_000_000)
    assert not ok and "runs at 4 MHz, not the configured 120 MHz" in note
    assert note.endswith("(the reset clock)")


def test_emulated_energy_is_for_a_named_real_board_from_estimated_cycles():
    from edgeq.bench.energy import estimate_energy_for, power_board_for

    emu = resolve_target(board="mps2-an386")
    f446 = power_board_for(emu, "nucleo-f446re")
    assert f446.name == "nucleo-f446re"
    e = estimate_energy_for(f446, 2_000_000, emu)
    v, k = f446.power.supply_v, f446.power.run_ua_per_mhz
    assert e.joules == pytest.approx(v * k * 1e-6 * 2.0)  # V x uA/MHz x Mcycles
    assert e.model_board == "nucleo-f446re" and e.clock_hz == f446.clock_hz
    assert "estimate for nucleo-f446re, not mps2-an386" in e.note
    assert power_board_for(emu, None).name == emu.power.reference_board
    with pytest.raises(DeviceError, match="no power model of its own"):
        estimate_energy_for(resolve_target(board="mps2-an385"), 1000, emu)
