"""A Keras 3 model saved as ``.h5`` is told to save as ``.keras`` (issue 13, section 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeq.errors import ModelError
from edgeq.models import load_model


def test_keras3_h5_is_told_to_save_as_keras(tmp_path: Path) -> None:
    from edgeq.tfenv import import_keras3

    keras = import_keras3()
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    model.save(tmp_path / "k3.h5")
    with pytest.raises(ModelError, match=r"Keras 3 model saved as \.h5.*save it as `\.keras`"):
        load_model(tmp_path / "k3.h5")
    model.save(tmp_path / "k3.keras")  # the advice works
    assert load_model(tmp_path / "k3.keras").kind == "keras3"
