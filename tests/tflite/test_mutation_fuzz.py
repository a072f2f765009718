"""Seeded 1-4-byte mutants of real models through every quantize-free model path.

Each run must end with success or a one-line ``EdgeqError`` — never another exception, a signal,
a hang or unbounded memory. Library entry points run in a driver process (``helpers_fuzz``)
with ``RLIMIT_AS``; a sample also goes through the real CLI in subprocesses, where the
exit code, stderr and signals are what a user sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers_device import quantized_digits
from helpers_fuzz import make_mutants, run_jobs

REPO = Path(__file__).resolve().parents[2]
SHARED = ("hello_world_int8", "micro_speech_quantized", "keyword_scrambled_8bit",
          "trained_lstm_int8")
DIGITS_MUTANTS = 100
SHARED_MUTANTS = 50
CLI_MUTANTS = 5


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """int8 digits_cnn, its float .tflite (analyze's reference) and normalized test samples."""
    from edgeq.analyze.layers import float_tflite
    from edgeq.data import load_dataset
    from edgeq.models import load_model

    root = tmp_path_factory.mktemp("fuzz_digits")
    int8 = quantized_digits(root)
    loaded = load_model(REPO / "models" / "digits_cnn" / "digits_cnn.h5")
    flt = root / "digits_float.tflite"
    flt.write_bytes(float_tflite(loaded.model))
    x = load_dataset("digits").x_test[:16] / 16.0
    np.save(root / "x.npy", x.astype(np.float32))
    return {"int8": int8, "float": flt, "x": root / "x.npy"}


def _shared_jobs(shared_models: Path, root: Path) -> list[dict[str, object]]:
    from edgeq.tflite import read_tflite

    jobs: list[dict[str, object]] = []
    for seed, stem in enumerate(SHARED):
        src = shared_models / "tflm" / f"{stem}.tflite"
        t = read_tflite(src).input_tensors[0]
        x = np.random.default_rng(seed).uniform(0, 1, (8, *t.shape[1:])).astype(np.float32)
        data = root / f"{stem}.npz"
        np.savez(data, x=x, y=np.zeros(len(x), np.int64))
        for k, m in enumerate(make_mutants(src.read_bytes(), SHARED_MUTANTS, 100 + seed,
                                           root / "mutants", stem)):
            for kind in ("evaluate", "codegen-edgeq", "codegen-tflm"):
                jobs.append({"path": str(m), "path_kind": kind, "data": str(data), "limit": 8,
                             "arena": k % 10 == 0, "arena_bytes": None if k % 10 == 0
                             else 256 * 1024})
    return jobs


@pytest.mark.slow
def test_mutants_end_in_success_or_one_clean_line(
    digits_files: dict[str, Path], shared_models: Path, tmp_path: Path
) -> None:
    base = digits_files["int8"].read_bytes()
    jobs: list[dict[str, object]] = []
    for k, m in enumerate(make_mutants(base, DIGITS_MUTANTS, 1, tmp_path / "mutants", "digits")):
        for kind in ("evaluate", "codegen-edgeq", "codegen-tflm", "analyze"):
            jobs.append({"path": str(m), "path_kind": kind, "data": "digits", "limit": 16,
                         "arena": k % 10 == 0, "arena_bytes": None if k % 10 == 0 else 65536,
                         "float_tflite": str(digits_files["float"]),
                         "x": str(digits_files["x"])})
    jobs += _shared_jobs(shared_models, tmp_path)
    res = run_jobs(jobs, timeout=120.0, oracle_timeout=60.0)
    summary = res.summary()
    print("fuzz:", json.dumps(summary))
    out = os.environ.get("EDGEQ_FUZZ_REPORT")
    if out:
        Path(out).write_text(json.dumps(summary | {"errors_seen": res.errors_seen}, indent=2))
    assert res.runs == len(jobs) >= 1000
    assert not res.crashes, res.crashes[:5]
    assert not res.hangs, res.hangs[:5]
    assert not res.unexpected, res.unexpected[:3]
    assert not res.bad_messages, res.bad_messages[:5]
    assert res.clean_errors > 0 and res.ok > 0  # the mutants exercise both outcomes
    assert res.peak_rss_bytes < 2 << 30


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "edgeq.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.slow
def test_cli_on_mutants_exits_cleanly(digits_files: dict[str, Path], tmp_path: Path) -> None:
    base = digits_files["int8"].read_bytes()
    mutants = make_mutants(base, CLI_MUTANTS, 7, tmp_path / "m", "cli")
    for m in mutants:
        for args in (["evaluate", str(m), "--data", "digits", "--limit", "8", "--no-arena"],
                     ["codegen", str(m), "-o", str(tmp_path / "tflm"), "--arena-bytes", "65536"],
                     ["codegen", str(m), "-o", str(tmp_path / "rt"), "--runtime", "edgeq"],
                     ["export", "android", str(m), "-o", str(tmp_path / "android")]):
            r = _cli(*args, cwd=tmp_path)
            what = f"edgeq {' '.join(args)}"
            assert r.returncode in (0, 1), f"{what}: exit {r.returncode}\n{r.stderr[-2000:]}"
            assert "Traceback" not in r.stderr, f"{what}:\n{r.stderr[-2000:]}"
            if r.returncode == 1:
                lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
                assert lines and lines[-1].startswith("edgeq: error: "), f"{what}: {r.stderr}"
                assert sum(ln.startswith("edgeq: error") for ln in lines) == 1
