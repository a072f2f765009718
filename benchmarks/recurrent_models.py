"""LSTM/GRU figures for docs/models.md: small sequence classifiers (tf-keras and Keras 3) and
TFLM's trained_lstm_int8 through `edgeq build --target cortex-m4` in QEMU, with accuracy,
bit-exactness, instructions per inference and size.

    PYTHONPATH=. .venv/bin/python benchmarks/recurrent_models.py [--samples 50]

Models: Input((12, 8)) -> LSTM(12) or GRU(12) -> Dense(3, softmax), trained for seconds on a
generated tone-sequence dataset (tests/cli/test_recurrent_build.py builds the same ones).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from edgeq.cli import cli

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models" / "tflm"


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=50)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "cli"))
    from test_recurrent_build import recurrent_model

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        models = {}
        for flavour in ("tf_keras", "keras3"):
            for layer in ("LSTM", "GRU"):
                folder = d / f"{flavour}_{layer}"
                folder.mkdir()
                models[f"{flavour} {layer}"] = recurrent_model(folder, flavour, layer)
        if (SHARED / "trained_lstm_int8.tflite").is_file():
            models["trained_lstm_int8 (no data)"] = SHARED / "trained_lstm_int8.tflite"
        for k, (name, path) in enumerate(models.items()):
            res = CliRunner().invoke(cli, ["build", str(path), "--target", "cortex-m4", "-o",
                                           str(d / f"b{k}"), "--samples", str(args.samples),
                                           "--json"])
            if res.exit_code != 0:
                print(f"{name:<30} error: {res.output.strip().splitlines()[-1]}")
                continue
            r = json.loads(res.output[res.output.index("{"):])
            acc, dev, mem = r.get("accuracy") or {}, r["device"], r["memory"]
            print(f"{name:<30} float {_pct(acc.get('float'))}, int8 host "
                  f"{_pct(acc.get('int8_host'))}, device {_pct(acc.get('int8_device'))}; "
                  f"bit-exact {dev['validation']['bit_exact']} on {dev['validation']['samples']}; "
                  f"{dev['latency']['median']:,.0f} {dev['latency']['unit']}; "
                  f"flash {mem['flash']:,} B, RAM {mem['ram']:,} B")


if __name__ == "__main__":
    main()
