"""Mutation fuzzing of edgeq's model paths: how corrupt ``.tflite`` files end.

Seeded 1-4-byte mutants of the int8 digits_cnn (quantized here) and of third-party TFLM models
go through ``evaluate``, ``codegen`` (TFLM bundle and edgeq-rt) and ``analyze`` (digits only),
in a driver process with an address-space limit (see ``tests/helpers_fuzz.py``). Prints runs,
successes, clean one-line errors, unexpected exceptions, crashes (signals), hangs and the peak
resident memory of the driver and its oracle worker.

    .venv/bin/python benchmarks/fuzz_models.py [--digits 300] [--shared 100] [--seed 11]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

SHARED = ("hello_world_int8", "micro_speech_quantized", "keyword_scrambled_8bit",
          "trained_lstm_int8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits", type=int, default=300, help="mutants of the int8 digits_cnn")
    ap.add_argument("--shared", type=int, default=100, help="mutants of each third-party model")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--shared-models", default=str(REPO.parent / "shared" / "models"))
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()

    from helpers_fuzz import make_mutants, run_jobs

    from edgeq.analyze.layers import float_tflite
    from edgeq.data import load_dataset
    from edgeq.models import load_model
    from edgeq.quantize.ptq import quantize_model
    from edgeq.tflite import read_tflite

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        h5 = REPO / "models" / "digits_cnn" / "digits_cnn.h5"
        int8 = tmp / "digits_int8.tflite"
        quantize_model(h5, int8, data="digits")
        flt = tmp / "digits_float.tflite"
        flt.write_bytes(float_tflite(load_model(h5).model))
        np.save(tmp / "x.npy", (load_dataset("digits").x_test[:16] / 16.0).astype(np.float32))
        jobs: list[dict[str, object]] = []
        for k, m in enumerate(make_mutants(int8.read_bytes(), args.digits, args.seed,
                                           tmp / "mut", "digits")):
            for kind in ("evaluate", "codegen-edgeq", "codegen-tflm", "analyze"):
                jobs.append({"path": str(m), "path_kind": kind, "data": "digits", "limit": 16,
                             "arena": k % 10 == 0,
                             "arena_bytes": None if k % 10 == 0 else 65536,
                             "float_tflite": str(flt), "x": str(tmp / "x.npy")})
        for i, stem in enumerate(SHARED):
            src = Path(args.shared_models) / "tflm" / f"{stem}.tflite"
            t = read_tflite(src).input_tensors[0]
            x = np.random.default_rng(i).uniform(0, 1, (8, *t.shape[1:])).astype(np.float32)
            np.savez(tmp / f"{stem}.npz", x=x, y=np.zeros(8, np.int64))
            for k, m in enumerate(make_mutants(src.read_bytes(), args.shared, args.seed + 1 + i,
                                               tmp / "mut", stem)):
                for kind in ("evaluate", "codegen-edgeq", "codegen-tflm"):
                    jobs.append({"path": str(m), "path_kind": kind,
                                 "data": str(tmp / f"{stem}.npz"), "limit": 8,
                                 "arena": k % 10 == 0,
                                 "arena_bytes": None if k % 10 == 0 else 256 * 1024})
        mutants = args.digits + len(SHARED) * args.shared
        res = run_jobs(jobs, timeout=120.0, oracle_timeout=60.0)
    figures = {"mutants": mutants} | res.summary()
    print(json.dumps(figures, indent=2))
    for label, items in (("unexpected", res.unexpected), ("crash", res.crashes),
                         ("hang", res.hangs), ("multi-line message", res.bad_messages)):
        for item in items[:10]:
            print(f"{label}: {item}")
    print("most common clean errors:")
    for msg, n in sorted(res.errors_seen.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {n:5d}  {msg}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures | {"errors_seen": res.errors_seen},
                                              indent=2))


if __name__ == "__main__":
    main()
