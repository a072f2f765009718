"""The flatbuffer validator: real models pass, each kind of corruption is refused in one line."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeq.errors import ModelError
from edgeq.tflite import load_model_t, read_tflite, read_tflite_bytes, serialize_model_t
from edgeq.tflite import validate as V


def _hello(shared_models: Path) -> bytes:
    return (shared_models / "tflm" / "hello_world_int8.tflite").read_bytes()


def test_every_shared_model_passes(shared_models: Path) -> None:
    files = sorted((shared_models / "tflm").rglob("*.tflite"))
    assert len(files) > 100  # seanet's single-op models included
    for f in files:
        read_tflite(f)  # raises on a false refusal


def _const_tensor(m: Any) -> Any:
    sg = m.subgraphs[0]
    return next(t for t in sg.tensors if t.buffer > 0 and m.buffers[t.buffer].data is not None
                and len(m.buffers[t.buffer].data) > 4 and t.quantization is not None)


def _edit_shape(m: Any) -> None:
    m.subgraphs[0].tensors[0].shape = np.asarray([1, 40000, 40000, 16], dtype=np.int32)


def _edit_scale(value: float) -> Callable[[Any], None]:
    def edit(m: Any) -> None:
        t = _const_tensor(m)
        t.quantization.scale = np.full_like(np.asarray(t.quantization.scale), value)
    return edit


def _edit_zp(m: Any) -> None:
    t = next(t for t in m.subgraphs[0].tensors if t.type == 9 and t.quantization is not None)
    t.quantization.zeroPoint = np.full_like(np.asarray(t.quantization.zeroPoint), 300)


def _edit_zp_len(m: Any) -> None:
    t = next(t for t in m.subgraphs[0].tensors if t.quantization is not None)
    t.quantization.zeroPoint = np.zeros(len(t.quantization.scale) + 2, dtype=np.int64)


def _edit_buffer_index(m: Any) -> None:
    m.subgraphs[0].tensors[0].buffer = len(m.buffers) + 5


def _edit_const_size(m: Any) -> None:
    t = _const_tensor(m)
    m.buffers[t.buffer].data = np.asarray(m.buffers[t.buffer].data)[:-3]


def _edit_opcode_index(m: Any) -> None:
    m.subgraphs[0].operators[0].opcodeIndex = 99


def _edit_op_input(m: Any) -> None:
    ins = np.asarray(m.subgraphs[0].operators[0].inputs).copy()
    ins[0] = 1000
    m.subgraphs[0].operators[0].inputs = ins


def _edit_graph_output(m: Any) -> None:
    m.subgraphs[0].outputs = np.asarray([-2], dtype=np.int32)


def _edit_builtin(m: Any) -> None:
    m.operatorCodes[0].builtinCode = 4000
    m.operatorCodes[0].deprecatedBuiltinCode = 127


def _edit_name(m: Any) -> None:
    m.subgraphs[0].tensors[0].name = b"in\xff\xfeput"


def _edit_stride(m: Any) -> None:
    op = next(op for op in m.subgraphs[0].operators
              if op.builtinOptions is not None and hasattr(op.builtinOptions, "strideW"))
    op.builtinOptions.strideW = 0


def _edit_version(m: Any) -> None:
    m.version = 7


CASES = [
    ("micro_speech_quantized", _edit_shape, "over edgeq's per-tensor limit"),
    ("hello_world_int8", _edit_scale(-0.5), "quantization scale -0.5"),
    ("hello_world_int8", _edit_scale(math.nan), "quantization scale nan"),
    ("hello_world_int8", _edit_scale(math.inf), "quantization scale inf"),
    ("hello_world_int8", _edit_zp, "zero point 300 outside -128..127"),
    ("hello_world_int8", _edit_zp_len, "zero points"),
    ("hello_world_int8", _edit_buffer_index, "uses buffer"),
    ("hello_world_int8", _edit_const_size, "but its buffer"),
    ("hello_world_int8", _edit_opcode_index, "uses op code 99"),
    ("hello_world_int8", _edit_op_input, "input tensor 1000 is not one of"),
    ("hello_world_int8", _edit_graph_output, "graph output -2"),
    ("hello_world_int8", _edit_builtin, "unknown builtin op"),
    ("hello_world_int8", _edit_name, "name is not valid UTF-8"),
    ("micro_speech_quantized", _edit_stride, "strideW = 0"),
    ("hello_world_int8", _edit_version, "schema version 7"),
]


@pytest.mark.parametrize(("model", "edit", "expect"), CASES, ids=[c[1].__name__ for c in CASES])
def test_corruption_is_refused_in_one_line(shared_models: Path, model: str,
                                           edit: Callable[[Any], None], expect: str) -> None:
    raw = (shared_models / "tflm" / f"{model}.tflite").read_bytes()
    m = load_model_t(raw)
    edit(m)
    bad = serialize_model_t(m)
    with pytest.raises(ModelError) as err:
        read_tflite_bytes(bad, source="bad.tflite")
    msg = str(err.value)
    assert expect in msg
    assert msg.startswith("bad.tflite: ") and "\n" not in msg


def test_vector_past_end_of_file_is_refused_before_unpacking(shared_models: Path) -> None:
    """A tensors vector that claims ~16 M entries: refused from its length alone."""
    raw = bytearray(_hello(shared_models))
    from edgeq.tflite.reader import schema

    model = schema().Model.GetRootAs(bytes(raw), 0)
    sg = model.Subgraphs(0)
    pos = sg._tab.Vector(sg._tab.Offset(4)) - 4  # the length word of the tensors vector
    raw[pos:pos + 4] = (0x00FFFFFF).to_bytes(4, "little")
    with pytest.raises(ModelError, match="tensors vector of 16777215 entries runs past"):
        read_tflite_bytes(bytes(raw), source="m.tflite")


def test_buffer_offset_past_end_is_refused(shared_models: Path) -> None:
    m = load_model_t(_hello(shared_models))
    t = _const_tensor(m)
    b = m.buffers[t.buffer]
    b.data, b.offset, b.size = None, 64, 1 << 30
    with pytest.raises(ModelError, match=r"buffer \d+ spans bytes 64\.\."):
        read_tflite_bytes(serialize_model_t(m))


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "huge.tflite"
    with open(big, "wb") as f:
        f.truncate(V.MAX_MODEL_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(ModelError, match="over edgeq's model limit"):
        read_tflite(big)


def test_limits_follow_the_largest_board() -> None:
    from edgeq.toolchain.boards import list_boards

    boards = list_boards()
    assert V.LARGEST_BOARD_FLASH == max(b.flash.length for b in boards)
    assert V.LARGEST_BOARD_RAM == max(b.ram.length for b in boards)
    assert V.MAX_WEIGHT_BYTES >= V.HEADROOM * V.LARGEST_BOARD_FLASH
    assert V.MAX_TENSOR_BYTES >= V.HEADROOM * V.LARGEST_BOARD_RAM


def test_operator_missing_required_inputs_or_outputs(shared_models: Path) -> None:
    m = load_model_t(_hello(shared_models))
    m.subgraphs[0].operators[0].inputs = np.asarray([0], dtype=np.int32)
    with pytest.raises(ModelError, match=r"\(FULLY_CONNECTED\) has inputs \[0\]; it needs 2"):
        read_tflite_bytes(serialize_model_t(m))
    m = load_model_t(_hello(shared_models))
    m.subgraphs[0].operators[1].outputs = np.asarray([], dtype=np.int32)
    with pytest.raises(ModelError, match=r"operator 1 \(FULLY_CONNECTED\) has no outputs"):
        read_tflite_bytes(serialize_model_t(m))
