"""Load a user's model file, whichever Keras wrote it, into one ``LoadedModel``.

Keras 3 ``.keras`` files go through Keras 3; tf-keras ``.h5`` files and SavedModel directories
through tf-keras (the Keras TF-MOT needs); an already-quantized ``.tflite`` is kept as bytes so
the pipeline can skip quantization. The model's sidecar ``<stem>.edgeq.json`` (dataset, task,
labels, normalization) travels with it.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.errors import ModelError, first_line

SIDECAR_SUFFIX = ".edgeq.json"
KINDS = ("keras3", "tf_keras", "tflite")


@dataclass
class LoadedModel:
    """A model ready for the pipeline.

    ``model`` is a Keras model object (``keras3``/``tf_keras``) or the ``.tflite`` bytes.
    ``input_shape`` includes the batch dimension (``None`` for Keras models).
    """

    kind: str
    model: Any
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int | None, ...] = ()
    input_dtype: str = "float32"
    output_shape: tuple[int | None, ...] = ()
    name: str = ""
    # every input's shape (with batch), in model input order; input_shape is the first
    input_shapes: tuple[tuple[int | None, ...], ...] = ()

    @property
    def is_quantized(self) -> bool:
        return self.kind == "tflite"

    @property
    def task(self) -> str:
        """The first output's task (``task`` may also be a list, one per output)."""
        return sidecar_tasks(self.meta)[0]

    def labels(self, num_classes: int | None = None) -> list[str]:
        labels = self.meta.get("labels")
        if labels:
            return [str(v) for v in labels]
        n = num_classes if num_classes is not None else _last_dim(self.output_shape)
        return [str(i) for i in range(n or 0)]


# what ``task`` in a sidecar may say: the tasks edgeq.analyze.evaluate has a metric for
# ("none": no metric, only agreement with the oracle)
TASKS = ("classification", "regression", "segmentation", "anomaly", "autoencoder",
         "reconstruction", "none")


def sidecar_tasks(meta: dict[str, Any]) -> list[str]:
    """The sidecar's ``task`` as a list: one string (the first output's task) or one per output."""
    task = meta.get("task", "classification")
    return [str(t) for t in task] if isinstance(task, list) and task else [str(task)]


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """``models/x/digits_cnn.h5`` -> ``models/x/digits_cnn.edgeq.json``; a SavedModel dir
    ``m/`` -> ``m.edgeq.json`` beside it."""
    p = Path(path)
    stem = p.name if p.is_dir() else p.stem
    return p.parent / (stem + SIDECAR_SUFFIX)


def read_sidecar(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The sidecar of a model file, or ``{}`` when there is none."""
    sc = sidecar_path(path)
    if not sc.exists():
        return {}
    try:
        meta = json.loads(sc.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{sc}: unreadable model sidecar ({exc}); fix or delete it") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{sc}: model sidecar must be a JSON object; fix or delete it")
    task = meta.get("task", "classification")
    for t in task if isinstance(task, list) and task else [task]:
        if t not in TASKS:
            raise ModelError(
                f"{sc}: unknown task {t!r}; allowed: {', '.join(TASKS)} (fix the sidecar's "
                "\"task\": one name, or a list with one per output)"
            )
    dataset = meta.get("dataset")
    if isinstance(dataset, str) and not Path(dataset).is_absolute():
        beside = sc.parent / dataset  # a dataset path in a sidecar is relative to the sidecar
        if beside.exists():
            meta["dataset"] = str(beside)
    return meta


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Load ``.keras`` (Keras 3), ``.h5``/SavedModel dir (tf-keras) or ``.tflite``."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such model file; check the path")
    meta = read_sidecar(p)
    if p.is_dir():
        if not (p / "saved_model.pb").exists():
            raise ModelError(
                f"{p}: directory is not a SavedModel (no saved_model.pb); "
                "pass a .keras, .h5, SavedModel directory or .tflite"
            )
        return _from_keras(_load_tf_keras(p), "tf_keras", p, meta)
    suffix = p.suffix.lower()
    if suffix == ".tflite":
        return _load_tflite(p, meta)
    if suffix == ".keras":
        if _keras_zip_version(p).startswith("2."):
            return _from_keras(_load_tf_keras(p), "tf_keras", p, meta)
        return _from_keras(_load_keras3(p), "keras3", p, meta)
    if suffix in (".h5", ".hdf5"):
        return _from_keras(_load_tf_keras(p), "tf_keras", p, meta)
    raise ModelError(
        f"{p}: unknown model format '{p.suffix or p.name}'; "
        "pass a .keras, .h5, SavedModel directory or .tflite"
    )


def _keras_zip_version(p: Path) -> str:
    """The Keras version recorded in a ``.keras`` archive (tf-keras can write them too)."""
    try:
        with zipfile.ZipFile(p) as zf:
            info = json.loads(zf.read("metadata.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise ModelError(
            f"{p}: corrupt .keras file (not a Keras archive); re-save it with model.save()"
        ) from None
    return str(info.get("keras_version", ""))


def _h5_keras_version(p: Path) -> str:
    """The ``keras_version`` attribute an HDF5 model file records ('' when unreadable)."""
    try:
        import h5py

        with h5py.File(p, "r") as f:
            v = f.attrs.get("keras_version", "")
    except Exception:  # noqa: BLE001 - not HDF5 or unreadable: the caller's error stands
        return ""
    return v.decode() if isinstance(v, bytes) else str(v)


def _load_keras3(p: Path) -> Any:
    from edgeq.tfenv import import_keras3

    keras = import_keras3()
    try:
        return keras.saving.load_model(p, compile=False)
    except Exception as exc:
        raise ModelError(
            f"{p}: Keras 3 could not load the model ({type(exc).__name__}: {first_line(exc, 160)}); "
            "re-save it with model.save()"
        ) from None


def _load_tf_keras(p: Path) -> Any:
    from edgeq.tfenv import import_tf_keras

    tf_keras = import_tf_keras()
    try:
        return tf_keras.models.load_model(p, compile=False)
    except Exception as exc:
        if p.suffix.lower() in (".h5", ".hdf5") and _h5_keras_version(p).startswith("3."):
            raise ModelError(
                f"{p}: a Keras 3 model saved as .h5, which only tf-keras models can use here; "
                "save it as `.keras` (model.save(\"model.keras\")) and pass that file"
            ) from None
        raise ModelError(
            f"{p}: corrupt or unreadable Keras model ({type(exc).__name__}: {first_line(exc, 160)}); "
            "re-save it with model.save()"
        ) from None


def _shape(s: Any) -> tuple[int | None, ...]:
    if isinstance(s, list):  # multi-input models: the first input
        s = s[0]
    return tuple(None if d is None else int(d) for d in s)


def _last_dim(shape: tuple[int | None, ...]) -> int | None:
    return shape[-1] if shape else None


def _from_keras(model: Any, kind: str, p: Path, meta: dict[str, Any]) -> LoadedModel:
    inp = model.inputs[0]
    dtype = getattr(inp, "dtype", "float32")
    dtype = getattr(dtype, "name", dtype)
    return LoadedModel(
        kind=kind,
        model=model,
        path=p,
        meta=meta,
        input_shape=_shape(inp.shape),
        input_dtype=str(dtype),
        output_shape=_shape(model.outputs[0].shape),
        name=p.name if p.is_dir() else p.stem,
        input_shapes=tuple(_shape(t.shape) for t in model.inputs),
    )


def _load_tflite(p: Path, meta: dict[str, Any]) -> LoadedModel:
    from edgeq.tflite import read_tflite_bytes

    data = p.read_bytes()
    info = read_tflite_bytes(data, source=str(p))
    if not info.inputs or not info.outputs:
        raise ModelError(f"{p}: .tflite has no inputs or outputs; re-export the model")
    inp = info.input_tensors[0]
    out = info.output_tensors[0]
    return LoadedModel(
        kind="tflite",
        model=data,
        path=p,
        meta=meta,
        input_shape=tuple(int(d) for d in inp.shape),
        input_dtype=inp.dtype,
        output_shape=tuple(int(d) for d in out.shape),
        name=p.stem,
        input_shapes=tuple(tuple(int(d) for d in t.shape) for t in info.input_tensors),
    )


def predict_keras(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Float model outputs for prepared inputs, batched (works for Keras 3 and tf-keras)."""
    return predict_keras_all(model, [x], batch_size)[0]


def predict_keras_all(model: Any, xs: list[np.ndarray], batch_size: int = 256
                      ) -> list[np.ndarray]:
    """Every output of the float model for every input's prepared samples, batched."""
    outs: list[list[np.ndarray]] = []
    for start in range(0, len(xs[0]), batch_size):
        batch = [x[start : start + batch_size] for x in xs]
        y = model(batch[0] if len(batch) == 1 else batch, training=False)
        ys = list(y) if isinstance(y, list | tuple) else [y]
        outs.append([np.asarray(v) for v in ys])
    if not outs:
        return [np.zeros((0,), np.float32)]
    return [np.concatenate(col) for col in zip(*outs, strict=True)]
