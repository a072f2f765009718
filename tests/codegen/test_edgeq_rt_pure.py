"""``generate_edgeq_rt`` is pure (text out, nothing written); ``write_edgeq_rt`` writes exactly it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers_elementwise import T, build_model

from edgeq.codegen.edgeq_rt import generate_edgeq_rt, write_edgeq_rt
from edgeq.errors import CodegenError


def _model(tmp_path: Path) -> Path:
    const = T((1, 4), "int8", 0.05, 0, data=np.array([[1, -2, 3, -4]], dtype=np.int8))
    path = tmp_path / "src" / "add.tflite"
    path.parent.mkdir()
    path.write_bytes(build_model("ADD", [T((1, 4)), const], [T((1, 4), "int8", 0.1, 0)]))
    return path


def test_generate_writes_nothing_and_write_writes_it(tmp_path: Path) -> None:
    path = _model(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    model, files = generate_edgeq_rt(path, name="add")
    assert sorted(tmp_path.rglob("*")) == before
    assert set(files) == {"model.c", "model.h", "memory_plan.json"}
    assert '#define EDGEQ_MODEL_NAME "add"' in files["model.h"]
    assert json.loads(files["memory_plan.json"])["arena_bytes"] == model.arena_bytes
    assert [p.name for p in model.kernel_sources] == ["eq_add_s8.c"]
    assert generate_edgeq_rt(path, name="add")[1] == files  # deterministic

    out = tmp_path / "out"
    res = write_edgeq_rt(path, out, name="add", timeline_png=True)
    assert sorted(p.name for p in out.iterdir()) == sorted([*files, "memory_timeline.png"])
    assert all((out / f).read_text(encoding="utf-8") == text for f, text in files.items())
    assert res.as_dict()["arena_bytes"] == model.arena_bytes and res.out_dir == out
    assert generate_edgeq_rt(path, plan_json=False)[1].keys() == {"model.c", "model.h"}


def test_refusal_writes_nothing(tmp_path: Path) -> None:
    float_model = tmp_path / "f.tflite"
    float_model.write_bytes(build_model("ADD", [T((1, 4), "float32", None)] * 2,
                                        [T((1, 4), "float32", None)]))
    with pytest.raises(CodegenError, match="float model"):
        write_edgeq_rt(float_model, tmp_path / "out")
    assert not (tmp_path / "out").exists()
