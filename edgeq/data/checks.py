"""Bad numbers stop at the door: every array a dataset hands on is finite, numeric and labelled
sensibly, or the user gets one line naming the array, the first bad index and the fix.

Without this, an ``inf`` in calibration data crashes the converter natively, all-NaN data
produces a model whose input silently stays float32, and NaN samples or out-of-range labels give
an accuracy that means nothing. Values that are legal but suspicious (|x| > 1e6 — a 1e30 input
gives an input scale of ~4e27 — or an array with one value throughout) are warned about, not
refused.
"""

from __future__ import annotations

import logging

import numpy as np

from edgeq.errors import DataError

log = logging.getLogger(__name__)

SUSPICIOUS_MAGNITUDE = 1e6


def _index(flat_index: int, shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat_index, shape)) + "]"


def check_samples(x: np.ndarray, name: str, *, warn: bool = True) -> None:
    """Numeric, non-empty and finite; warns on huge or constant values."""
    if x.dtype.kind not in "fiub":
        raise DataError(f"{name} holds {x.dtype} values; save numeric samples (float or int "
                        "arrays, not objects or strings)")
    if x.size == 0:
        raise DataError(f"{name} is empty (0 values); point to a file with data")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            value = x.reshape(-1)[first]
            raise DataError(f"{name}{_index(first, x.shape)} is {value}: samples must be finite; "
                            "drop or repair the samples holding NaN/inf")
    if not warn:
        return
    lo, hi = float(np.min(x)), float(np.max(x))
    if max(abs(lo), abs(hi)) > SUSPICIOUS_MAGNITUDE:
        log.warning("%s: values reach %.3g; quantization scales follow the range, so check the "
                    "data is scaled as the model expects", name, hi if abs(hi) >= abs(lo) else lo)
    elif lo == hi and x.size > 1:
        log.warning("%s: every value is %g; calibration on constant data gives a degenerate "
                    "range", name, lo)


def check_labels(y: np.ndarray, name: str, num_classes: int | None = None, *,
                 classes_from: str = "the model") -> None:
    """Class indices: integers, >= 0 and, when the class count is known, below it."""
    if y.dtype.kind in "OUS":
        raise DataError(f"{name} holds {y.dtype} labels; save integer class indices (names go in "
                        "'label_names')")
    if y.dtype.kind not in "iub":
        raise DataError(f"{name} holds {y.dtype} labels; class labels must be integers")
    if y.size == 0:
        return
    neg = np.flatnonzero(y.reshape(-1) < 0)
    if neg.size:
        first = int(neg[0])
        raise DataError(f"{name}{_index(first, y.shape)} is {y.reshape(-1)[first]}: class labels "
                        "must be >= 0; fix the label file")
    if num_classes is not None:
        over = np.flatnonzero(y.reshape(-1) >= num_classes)
        if over.size:
            first = int(over[0])
            raise DataError(f"{name}{_index(first, y.shape)} is {y.reshape(-1)[first]} but "
                            f"{classes_from} has {num_classes} classes (0..{num_classes - 1}); "
                            "use the dataset this model was trained for")
