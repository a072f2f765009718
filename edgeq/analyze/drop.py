"""The accuracy-drop check run after every quantize/mixed/compress: nothing collapses silently.

A calibrator or compression default that wrecks a model still writes a valid ``.tflite``; the
only way to know is to measure. The quantized model runs on TFLite Micro (the board's numerics)
over the held-aside test split and is compared with the float model on the same samples. If
the drop exceeds the threshold, the per-layer analysis names the op that *adds* the most error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MAX_DROP_PT = 1.0
BLAME_SAMPLES = 200


@dataclass
class DropCheck:
    """Float vs quantized accuracy (percent) on the test split, and who is to blame."""

    float_accuracy_pct: float
    quantized_accuracy_pct: float
    samples: int
    max_drop_pt: float
    culprit: str | None = None
    oracle: str = "TFLM"

    @property
    def drop_pt(self) -> float:
        return self.float_accuracy_pct - self.quantized_accuracy_pct

    @property
    def failed(self) -> bool:
        return self.drop_pt > self.max_drop_pt

    def line(self) -> str:
        head = (f"accuracy drop {self.drop_pt:.1f} pt over the {self.max_drop_pt:g} pt limit "
                f"(float {self.float_accuracy_pct:.1f} %, quantized "
                f"{self.quantized_accuracy_pct:.1f} % on {self.samples} test samples, "
                f"{self.oracle})")
        blame = f"; most to blame: {self.culprit}" if self.culprit else ""
        return head + blame + "; fix it, or pass --allow-drop to accept"

    def as_dict(self) -> dict[str, Any]:
        """JSON vocabulary: accuracies as fractions, differences in percentage points (``_pt``)."""
        return {"float_accuracy": self.float_accuracy_pct / 100.0,
                "quantized_accuracy": self.quantized_accuracy_pct / 100.0,
                "samples": self.samples, "max_drop_pt": self.max_drop_pt,
                "drop_pt": self.drop_pt, "failed": self.failed, "culprit": self.culprit,
                "oracle": self.oracle}


def int8_accuracy(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy (fraction) of a quantized model on TFLite Micro."""
    return accuracy_on_oracle(tflite, x, y)[0]


def accuracy_on_oracle(tflite: bytes, x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    """Top-1 accuracy (fraction) on TFLite Micro, or on LiteRT's reference kernels when the
    TFLM wheel refuses the model (it has no int4 FULLY_CONNECTED filters); names the oracle."""
    from edgeq.errors import AnalyzeError
    from edgeq.oracles import run_litert_ref, run_tflm
    from edgeq.quantize.numerics import quantize_inputs
    from edgeq.tflite import read_tflite_bytes

    info = read_tflite_bytes(tflite)
    xq = quantize_inputs(np.asarray(x, np.float32), info.input_tensors[0])
    try:
        out, oracle = run_tflm(tflite, xq)[0], "TFLM"
    except AnalyzeError as exc:
        log.debug("TFLM refused the model (%s); using LiteRT reference kernels", exc)
        out, oracle = run_litert_ref(tflite, xq)[0], "LiteRT ref"
    acc = float(np.mean(out.reshape(len(out), -1).argmax(1) == np.asarray(y).reshape(-1)))
    return acc, oracle


def check_drop(
    tflite: bytes,
    float_model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    max_drop_pt: float = DEFAULT_MAX_DROP_PT,
    float_accuracy: float | None = None,
) -> DropCheck:
    """Measure the drop; on failure, name the layer adding the most error (own SQNR, clipping)."""
    from edgeq.models import predict_keras

    if float_accuracy is None:
        pred = predict_keras(float_model, x).reshape(len(x), -1).argmax(1)
        float_accuracy = float(np.mean(pred == np.asarray(y).reshape(-1)))
    q_acc, oracle = accuracy_on_oracle(tflite, x, y)
    result = DropCheck(100 * float_accuracy, 100 * q_acc, len(x), max_drop_pt, oracle=oracle)
    if result.failed:
        result.culprit = culprit(tflite, float_model, x[:BLAME_SAMPLES], y[:BLAME_SAMPLES])
    log.debug("drop check: float %.2f %%, quantized %.2f %%", result.float_accuracy_pct,
             result.quantized_accuracy_pct)
    return result


def culprit(tflite: bytes, float_model: Any, x: np.ndarray, y: np.ndarray) -> str | None:
    """One phrase naming the op that adds the most error, with its clipped fraction."""
    from edgeq.analyze.layers import analyze, blame
    from edgeq.errors import AnalyzeError

    try:
        a = analyze(tflite, float_model, x, y, max_samples=len(x))
    except AnalyzeError as exc:  # e.g. ops that do not pair with the float model
        log.debug("no per-layer blame: %s", exc)
        return None
    worst = blame(a, 1)
    if not worst:
        return None
    s = worst[0]
    own = "exact" if s.own_sqnr_db == float("inf") else f"{s.own_sqnr_db:.1f} dB own SQNR"
    clip = f", {100 * s.clipped_fraction:.1f} % of values clipped" if s.clipped_fraction > 1e-3 else ""
    return f"op {s.op_index} {s.op} '{s.tensor}' ({own}{clip})"


def check_files(
    tflite_path: str,
    float_path: str,
    *,
    data: str | None = None,
    max_drop_pt: float = DEFAULT_MAX_DROP_PT,
    limit: int | None = None,
) -> DropCheck | None:
    """The check behind the CLI: test split of the model's dataset; ``None`` if not a classifier."""
    from pathlib import Path

    from edgeq.data import Normalization, load_dataset, prepare_inputs
    from edgeq.models import load_model

    loaded = load_model(float_path)
    if loaded.kind == "tflite" or loaded.task != "classification":
        return None
    spec = data or loaded.meta.get("dataset")
    if not spec:
        return None
    ds = load_dataset(spec, input_shape=tuple(loaded.input_shape[1:]))
    if ds.y_test is None or len(ds.x_test) == 0:
        return None
    x_raw, y = ds.x_test, ds.y_test
    if limit:
        x_raw, y = x_raw[:limit], y[:limit]
    x = prepare_inputs(x_raw, loaded.input_shape, Normalization.from_meta(loaded.meta),
                       source=f"dataset '{ds.name}'")
    tfl = Path(tflite_path).read_bytes()
    from edgeq.quantize.ptq import detect_mode

    if detect_mode(tfl) not in ("int8", "int16x8"):
        return None
    return check_drop(tfl, loaded.model, x, y, max_drop_pt=max_drop_pt)
