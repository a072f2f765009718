"""The oracle worker: a native crash or a huge allocation in TFLM becomes a one-line error, the
caller survives, and the next call gets a fresh worker."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from helpers_fuzz import mutate

from edgeq import oracle_worker
from edgeq.errors import AnalyzeError, ModelError
from edgeq.oracles import _tflm_allocates_here, run_tflm, tflm_allocates


def _hello(shared_models: Path) -> bytes:
    return (shared_models / "tflm" / "hello_world_int8.tflite").read_bytes()


def _segfaulting_mutant(base: bytes) -> bytes:
    """The first seeded mutant on which TFLM itself (no validation in front) dies by SIGSEGV."""
    rng = random.Random(0)
    for _ in range(3000):
        m, _ = mutate(base, rng)
        try:
            oracle_worker.isolated(_tflm_allocates_here, m, 1 << 20, source="mutant.tflite")
        except AnalyzeError as exc:
            if "SIGSEGV" in str(exc):
                return m
    pytest.fail("no seeded mutant crashed TFLM natively")


def test_native_crash_is_one_line_and_the_next_call_works(shared_models: Path) -> None:
    base = _hello(shared_models)
    bad = _segfaulting_mutant(base)
    with pytest.raises(AnalyzeError) as err:
        oracle_worker.isolated(_tflm_allocates_here, bad, 1 << 20, source="mutant.tflite")
    msg = str(err.value)
    assert msg.startswith("mutant.tflite: the native interpreter crashed with SIGSEGV")
    assert "\n" not in msg
    out = run_tflm(base, np.zeros((2, 1), np.int8))[0]  # a fresh worker answers
    assert out.shape == (2, 1)
    # through the public API the corrupt file never reaches the native code
    with pytest.raises(ModelError):
        tflm_allocates(bad, 1 << 20)


def test_huge_arena_fails_inside_the_memory_limit(shared_models: Path) -> None:
    import resource

    ok, reason = tflm_allocates(_hello(shared_models), 16 << 30)
    assert not ok and "memory limit" in reason
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 < 2 << 30


def test_one_worker_serves_many_calls(shared_models: Path) -> None:
    base = _hello(shared_models)
    run_tflm(base, np.zeros((1, 1), np.int8))
    assert oracle_worker._worker is not None
    pid = oracle_worker._worker.proc.pid
    for _ in range(3):
        run_tflm(base, np.zeros((4, 1), np.int8))
    assert oracle_worker._worker.proc.pid == pid
    oracle_worker.shutdown()
    assert oracle_worker._worker is None


def test_interrupted_call_does_not_desynchronise_the_next(shared_models: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the worker computes: the next call must get its own answer, not the late
    reply of the interrupted one."""
    base = _hello(shared_models)
    speech = (shared_models / "tflm" / "micro_speech_quantized.tflite").read_bytes()
    run_tflm(base, np.zeros((1, 1), np.int8))  # worker up
    real_select = oracle_worker.select.select

    def interrupted(*a, **kw):  # noqa: ANN002, ANN003, ANN202 - Ctrl-C lands while waiting
        raise KeyboardInterrupt

    monkeypatch.setattr(oracle_worker.select, "select", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_tflm(speech, np.zeros((50, 1960), np.int8))
    monkeypatch.setattr(oracle_worker.select, "select", real_select)
    out = run_tflm(base, np.zeros((3, 1), np.int8))[0]
    assert out.shape == (3, 1)
