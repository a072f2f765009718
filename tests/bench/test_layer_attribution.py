"""Per-layer profiles against independent references.

Attribution: a model whose layers cost very different amounts; each layer is also cut out into a
model of its own (same shapes, same quantization) and measured alone in QEMU. The per-layer counts
of the whole model, from the firmware's own counter and from the plugin's marks, must put each
cost on its own layer (a hook shifted by one layer moves every cost to a neighbour).
MACs: every layer's MACs against a formula written here from the graph's tensor shapes; ADD and
pooling are counted in output elements, never as MACs.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers_edgeq_rt import convert_keras, keras_layers
from helpers_elementwise import extract_op

from edgeq.bench.latency import graph_layers, layer_rows
from edgeq.codegen.edgeq_rt import write_edgeq_rt
from edgeq.device.icount import PluginCounter
from edgeq.device.qemu import QemuInstance
from edgeq.device.session import DeviceSession
from edgeq.tflite import read_tflite
from edgeq.toolchain.boards import resolve_target
from edgeq.toolchain.compiler import build_firmware

BOARD = "mps2-an386"


def _model():  # noqa: ANN202
    k = keras_layers()
    x = k.Input((12, 12, 8))
    a = k.layers.Conv2D(32, 3, padding="same", activation="relu")(x)  # 331,776 MACs
    b = k.layers.DepthwiseConv2D(3, padding="same")(a)  # 41,472 MACs
    c = k.layers.Add()([a, b])  # 4,608 elements
    d = k.layers.MaxPooling2D(2)(c)  # 1,152 elements
    e = k.layers.Conv2D(4, 1)(d)  # 4,608 MACs
    f = k.layers.Dense(10)(k.layers.Flatten()(e))  # 1,440 MACs
    return k.Model(x, f)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("attribution")
    path = root / "model.tflite"
    path.write_bytes(convert_keras(_model))
    return root, path


def macs_from_graph(path) -> list[tuple[str, int, int]]:
    """(op, MACs, elements) per operator, computed here from the tensor shapes alone."""
    m = read_tflite(path)
    rows = []
    for op in m.operators:
        out = m.tensors[op.outputs[0]].shape
        n_out = int(np.prod(out))
        if op.opcode == "CONV_2D":
            _, fh, fw, cin = m.tensors[op.inputs[1]].shape  # OHWI
            rows.append((op.opcode, n_out * fh * fw * cin, 0))
        elif op.opcode == "DEPTHWISE_CONV_2D":
            _, fh, fw, _ = m.tensors[op.inputs[1]].shape  # 1HWC: one MAC per tap per output
            rows.append((op.opcode, n_out * fh * fw, 0))
        elif op.opcode == "FULLY_CONNECTED":
            _, cin = m.tensors[op.inputs[1]].shape
            rows.append((op.opcode, n_out * cin, 0))
        elif op.opcode != "RESHAPE":
            rows.append((op.opcode, 0, n_out))
    return rows


def run_firmware(root, path, name, *, profile):
    """(plugin windows, device layer counts, device layer info) of one inference in QEMU."""
    board = resolve_target(board=BOARD)
    gen = write_edgeq_rt(path, root / f"{name}_rt", name=name)
    info = read_tflite(path)
    fw = build_firmware(board, root / f"{name}_rt", root / f"{name}_fw", profile_layers=profile,
                        input_bytes=sum(t.nbytes for t in info.input_tensors),
                        kernel_sources=gen.kernel_sources)
    counter = PluginCounter(board, fw.elf, root / f"{name}_plugin")
    rng = np.random.default_rng(0)
    xs = [rng.integers(-128, 128, size=t.shape, dtype=np.int8) for t in info.input_tensors]
    with QemuInstance(board.qemu_machine or "", fw.elf, extra_args=counter.args) as q:
        s = DeviceSession(q.port, alive=q.check_alive)
        s.infer(xs, runs=1, warmup=0)
        counts = s.layer_counts() if profile else []
        names = [s.layer_info(i) for i in range(s.info.num_layers)]
    return counter.windows(), counts, names, gen


@pytest.fixture(scope="module")
def whole(model):
    root, path = model
    run = run_firmware(root, path, "whole", profile=True)
    assert len(run[0]) == 1, "the plugin recorded no complete timed run"
    return run


def test_layer_macs_match_the_graph_formula(model, whole):
    _, path = model
    want = macs_from_graph(path)
    assert [w[0] for w in want] == ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D",
                                    "CONV_2D", "FULLY_CONNECTED"]
    assert [w[1] for w in want] == [331_776, 41_472, 0, 0, 4_608, 1_440]  # by hand, too
    windows, counts, names, gen = whole
    mac_ops = [(op, macs) for op, macs, _ in want if macs]
    # the generator's and the device's MACs of the MAC ops
    assert [(x.op, x.macs) for x in gen.layers if x.op in dict(mac_ops)] == mac_ops
    assert [(n, m) for n, m in names if n in dict(mac_ops)] == mac_ops
    # the per-layer report: MACs for MAC ops, elements for the rest, totals equal the graph's
    board = resolve_target(board=BOARD)
    rows = layer_rows(names, windows[-1].layers(), board, graph_layers(path))
    assert [(r.op, r.macs, r.elements) for r in rows] == want
    assert sum(r.macs for r in rows) == sum(w[1] for w in want)
    assert rows[1].shapes == "1x12x12x32 -> 1x12x12x32"
    assert rows[2].shapes == "1x12x12x32 + 1x12x12x32 -> 1x12x12x32"


@pytest.mark.slow
def test_each_layer_cost_lands_on_its_own_layer(model, whole):
    root, path = model
    windows, device_counts, names, gen = whole
    plugin_counts = [ev.insns for ev in windows[-1].layers()]
    assert len(plugin_counts) == len(device_counts) == len(gen.layers) == 6
    data = path.read_bytes()
    alone = []
    for i, layer in enumerate(gen.layers):
        single = root / f"op{i}.tflite"
        single.write_bytes(extract_op(data, layer.op_index))
        w, _, n, _ = run_firmware(root, single, f"op{i}", profile=False)
        assert [x for x, _ in n] == [layer.op]
        alone.append(w[-1].total.insns)
    # the costs differ enough that a shift by one layer cannot pass unnoticed
    assert max(alone) > 50 * min(alone)
    for i, cost in enumerate(alone):
        tol = 0.03 * cost + 300  # hook and call overhead, data-dependent branches
        assert abs(plugin_counts[i] - cost) <= tol, (i, plugin_counts, alone)
        # the firmware's own per-layer counter (SysTick, 40-instruction steps)
        assert abs(device_counts[i] - cost) <= tol + 80, (i, device_counts, alone)


def test_real_board_layer_rows_follow_the_same_convention(model, whole):
    """DWT per-layer cycles from a board: MACs only for MAC ops, elements for the rest."""
    from edgeq.bench.latency import measured_layer_rows, render_measured_layers

    _, path = model
    _, _, names, _ = whole
    device = [{"index": i, "op": op, "macs": m, "count": 1000 * (i + 1)}
              for i, (op, m) in enumerate(names)]
    rows = measured_layer_rows(device, path)
    assert [(r["op"], r["macs"], r["elements"]) for r in rows] == macs_from_graph(path)
    assert rows[0]["cycles_per_mac"] == pytest.approx(1000 / 331_776)
    text = render_measured_layers(rows)
    assert "DWT" in text and "1x12x12x8 -> 1x12x12x32" in text
