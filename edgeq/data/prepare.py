"""Turning raw dataset samples into what a particular model expects.

Models declare their preprocessing in the sidecar (``normalization``: ``(x - mean) / std`` of the
raw values); this module applies it and checks the sample shape against the model input, so a
wrong dataset fails with both shapes named instead of deep inside TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeq.data.checks import check_samples
from edgeq.errors import DataError


@dataclass(frozen=True)
class Normalization:
    """``(x - mean) / std`` with per-channel (or scalar) mean and std."""

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None) -> Normalization:
        norm = (meta or {}).get("normalization") or {}
        mean = tuple(float(v) for v in _as_list(norm.get("mean", 0.0)))
        std = tuple(float(v) for v in _as_list(norm.get("std", 1.0)))
        if any(s == 0.0 or not math.isfinite(s) for s in std):
            raise DataError("model sidecar normalization has std 0 or non-finite; fix "
                            "'normalization.std'")
        if not all(math.isfinite(m) for m in mean):
            raise DataError("model sidecar normalization has a non-finite mean; fix "
                            "'normalization.mean'")
        return cls(mean=mean, std=std)

    @property
    def is_identity(self) -> bool:
        return all(m == 0.0 for m in self.mean) and all(s == 1.0 for s in self.std)

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.is_identity:
            return x
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked by the caller
            return ((x - mean) / std).astype(np.float32)

    def as_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list | tuple) else [v]


def fit_to_input(
    x: np.ndarray, input_shape: tuple[int | None, ...], *, source: str = "dataset"
) -> np.ndarray:
    """Reshape samples ``(N, ...)`` to the model input ``(batch, ...)``.

    Only singleton dimensions may be added or dropped ((8, 8) fits (8, 8, 1)); anything else is a
    ``DataError`` naming both shapes.
    """
    want = tuple(input_shape[1:])
    have = tuple(x.shape[1:])
    if _matches(have, want):
        return x
    squeezed_have = tuple(d for d in have if d != 1)
    squeezed_want = tuple(d for d in want if d != 1)
    if None not in want and squeezed_have == squeezed_want:
        return x.reshape((len(x),) + tuple(int(d) for d in want))
    raise DataError(
        f"{source} samples have shape {_fmt(have)} but the model input is {_fmt(want)}; "
        "use a dataset made for this model"
    )


def _matches(have: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return len(have) == len(want) and all(
        w is None or w == h for h, w in zip(have, want, strict=True)
    )


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def prepare_inputs(
    x: np.ndarray,
    input_shape: tuple[int | None, ...],
    normalization: Normalization,
    *,
    source: str = "dataset",
) -> np.ndarray:
    """Raw samples -> the float32 tensor the float model takes (shape checked, normalized)."""
    if len(x) == 0:
        raise DataError(f"{source} is empty (0 samples); point to a file with data")
    x = np.asarray(x)
    check_samples(x, f"{source} samples", warn=False)
    out = normalization.apply(fit_to_input(x, input_shape, source=source))
    check_samples(out, f"{source} samples after normalization", warn=False)
    return out


class RepresentativeDataset:
    """Calibration samples for ``TFLiteConverter.representative_dataset``.

    ``n`` samples drawn by a seeded shuffle of ``x``, already shaped and normalized for the
    model; calling the object yields ``[sample]`` with batch 1, as the converter wants (a
    multi-input model's further inputs, ``extra``, follow in the same list).
    """

    def __init__(self, samples: np.ndarray, extra: tuple[np.ndarray, ...] = ()) -> None:
        if len(samples) == 0:
            raise DataError("calibration set is empty (0 samples); give a dataset with data")
        self.samples = samples
        self.extra = extra

    def __len__(self) -> int:
        return len(self.samples)

    def __call__(self) -> Iterator[list[np.ndarray]]:
        for k, s in enumerate(self.samples):
            yield [s[np.newaxis, ...], *(x[k][np.newaxis, ...] for x in self.extra)]


def prepare_input_list(
    xs: list[np.ndarray],
    input_shapes: list[tuple[int | None, ...]],
    normalization: Normalization,
    *,
    source: str = "dataset",
) -> list[np.ndarray]:
    """``prepare_inputs`` for every input of a (possibly multi-input) model, in input order."""
    if len(xs) != len(input_shapes):
        raise DataError(f"{source} holds {len(xs)} input array(s) but the model has "
                        f"{len(input_shapes)} inputs; save one array per input as x_0, x_1, ... "
                        "in an .npz")
    return [prepare_inputs(x, shape, normalization, source=f"{source} input {k}"
                           if len(xs) > 1 else source)
            for k, (x, shape) in enumerate(zip(xs, input_shapes, strict=True))]


def representative_dataset(
    x: np.ndarray,
    *,
    input_shape: tuple[int | None, ...],
    extra: tuple[np.ndarray, ...] = (),
    extra_shapes: tuple[tuple[int | None, ...], ...] = (),
    input_dtype: Any = np.float32,
    normalization: Normalization | None = None,
    num_samples: int = 200,
    seed: int = 0,
    source: str = "dataset",
) -> RepresentativeDataset:
    """Pick ``num_samples`` samples (seeded shuffle) shaped, normalized and typed for the model."""
    if num_samples <= 0:
        raise DataError(f"calibration sample count must be positive, got {num_samples}")
    if len(x) == 0:
        raise DataError(f"{source} is empty (0 samples); point to a file with data")
    idx = np.random.default_rng(seed).permutation(len(x))[: min(num_samples, len(x))]
    norm = normalization or Normalization()
    samples, *more = prepare_input_list([x[idx], *(e[idx] for e in extra)],
                                        [input_shape, *extra_shapes], norm, source=source)
    return RepresentativeDataset(samples.astype(np.dtype(input_dtype), copy=False),
                                 tuple(m.astype(np.float32, copy=False) for m in more))
