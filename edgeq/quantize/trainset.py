"""A float tf-keras model with its data prepared: what mixed precision and compression start from.

Both fine-tune (STE, pruning, clustering: TF-MOT needs tf-keras) and both measure accuracy on a
labelled test split, so both need the model, its normalization and the dataset together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeq.errors import DataError, ModelError


@dataclass
class TrainSetup:
    model: Any  # tf-keras model
    name: str
    x_train: np.ndarray  # normalized, shaped for the model
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def calibration(self, count: int = 200, seed: int = 0) -> np.ndarray:
        idx = np.random.default_rng(seed).permutation(len(self.x_train))[:count]
        return self.x_train[idx]

    def split_held_out(
        self, fraction: float = 0.1, seed: int = 0
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """(fit, held_out): a seeded ``fraction`` of the training split set aside.

        Decisions (mixed precision's per-layer sensitivities) are made on the held-out part, so
        the test split only measures the result.
        """
        order = np.random.default_rng(seed).permutation(len(self.x_train))
        n = max(1, int(round(len(order) * fraction)))
        held, fit = order[:n], order[n:]
        return ((self.x_train[fit], self.y_train[fit]),
                (self.x_train[held], self.y_train[held]))


def load_setup(
    model_path: str | os.PathLike[str], data: str | None = None, *, max_test: int | None = None
) -> TrainSetup:
    """Load a tf-keras classifier and its labelled dataset (default: the sidecar's dataset)."""
    from edgeq.data import Normalization, load_dataset, prepare_inputs
    from edgeq.models import load_model

    loaded = load_model(model_path)
    if loaded.kind != "tf_keras":
        raise ModelError(
            f"{model_path}: is a {loaded.kind} model; mixed precision and compression fine-tune "
            "with tf-keras/TF-MOT: give the float .h5 or SavedModel (tf-keras)"
        )
    spec = data or loaded.meta.get("dataset")
    if not spec:
        raise DataError(f"{model_path}: no dataset given and none in the sidecar; pass --data")
    ds = load_dataset(spec)
    if ds.y_train is None or ds.y_test is None:
        raise DataError(f"dataset '{spec}' has no labels; accuracy needs a labelled dataset")
    norm = Normalization.from_meta(loaded.meta)
    shape = loaded.model.input_shape
    x_test, y_test = ds.x_test, ds.y_test
    if max_test is not None:
        x_test, y_test = x_test[:max_test], y_test[:max_test]
    return TrainSetup(
        model=loaded.model,
        name=loaded.name or loaded.path.stem,
        x_train=prepare_inputs(ds.x_train, shape, norm, source=str(spec)),
        y_train=np.asarray(ds.y_train),
        x_test=prepare_inputs(x_test, shape, norm, source=str(spec)),
        y_test=np.asarray(y_test),
    )
