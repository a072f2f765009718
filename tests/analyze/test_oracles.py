"""The two reference interpreters on real third-party models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import AnalyzeError
from edgeq.oracles import run_litert_ref, run_tflm, tflm_min_arena, tflm_supports
from edgeq.tflite import read_tflite


def _random_inputs(path: Path, n: int, seed: int = 0) -> np.ndarray:
    t = read_tflite(path).input_tensors[0]
    info = np.iinfo(np.dtype(t.dtype))
    rng = np.random.default_rng(seed)
    return rng.integers(info.min, info.max + 1, size=(n, *t.shape[1:])).astype(t.dtype)


def test_tflm_and_litert_ref_agree_on_micro_speech(shared_models: Path) -> None:
    p = shared_models / "tflm" / "micro_speech_quantized.tflite"
    x = _random_inputs(p, 8)
    a = run_tflm(p, x)[0]
    b = run_litert_ref(p, x)[0]
    assert a.shape == b.shape == (8, 4) and a.dtype == np.int8
    # One FULLY_CONNECTED: the two may differ by the FC rounding (+-1), never more.
    assert int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max()) <= 1


def test_tflm_runs_person_detect_which_litert_refuses(shared_models: Path) -> None:
    p = shared_models / "tflm" / "person_detect.tflite"
    x = _random_inputs(p, 2)
    out = run_tflm(p, x)[0]
    assert out.shape == (2, 2)
    with pytest.raises(AnalyzeError, match="quantized_dimension") as err:
        run_litert_ref(p, x)
    assert "\n" not in str(err.value)


def test_min_arena_is_the_exact_boundary(shared_models: Path) -> None:
    p = shared_models / "tflm" / "hello_world_int8.tflite"
    arena = tflm_min_arena(p)
    assert arena % 16 == 0 and 0 < arena < 16384
    from tflite_micro.python.tflite_micro import runtime

    from edgeq.tfenv import quiet_native_output

    runtime.Interpreter.from_bytes(p.read_bytes(), arena_size=arena)
    with quiet_native_output(), pytest.raises(RuntimeError):
        runtime.Interpreter.from_bytes(p.read_bytes(), arena_size=arena - 16)


def test_wrong_input_dtype_is_a_clear_error(shared_models: Path) -> None:
    p = shared_models / "tflm" / "hello_world_int8.tflite"
    with pytest.raises(AnalyzeError, match="quantize the input first"):
        run_tflm(p, np.zeros((1, 1), dtype=np.float32))


def test_tflm_supports_reports_loadable(shared_models: Path) -> None:
    ok, why = tflm_supports(shared_models / "tflm" / "micro_speech_quantized.tflite")
    assert ok and why == ""
