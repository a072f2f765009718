"""Datasets for models with several inputs (``x_0``, ``x_1``, ... in an ``.npz``) and targets
that are not class indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeq.data import RepresentativeDataset, load_dataset, representative_dataset
from edgeq.errors import DataError


def test_inputs_split_together(tmp_path: Path) -> None:
    n = 50
    a = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    b = -np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    y = np.arange(n) % 4
    np.savez(tmp_path / "two.npz", x_0=a, x_1=b, y=y)
    ds = load_dataset(tmp_path / "two.npz")
    assert ds.num_inputs == 2 and len(ds.x_test) == 10 and len(ds.x_train) == 40
    xa, xb = ds.test_inputs()
    # row k of every input (and its label) is the same original sample
    np.testing.assert_array_equal(xa[:, 0], -xb[:, 0, 0])
    np.testing.assert_array_equal(xa[:, 0].astype(int) % 4, ds.y_test)
    ta, tb = ds.train_inputs()
    np.testing.assert_array_equal(ta[:, 0], -tb[:, 0, 0])
    assert not set(xa[:, 0]) & set(ta[:, 0])
    assert [len(x) for x in ds.test_inputs(3)] == [3, 3]


def test_inputs_with_different_counts_are_one_line(tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", x_0=np.zeros((5, 2)), x_1=np.zeros((4, 2)))
    with pytest.raises(DataError, match="different sample counts .*x_0 5, x_1 4"):
        load_dataset(tmp_path / "bad.npz")


def test_representative_dataset_yields_every_input(tmp_path: Path) -> None:
    a = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    b = a[:, :2] * 10
    rep = representative_dataset(a, input_shape=(None, 3), extra=(b,), extra_shapes=((None, 2),),
                                 num_samples=8)
    assert isinstance(rep, RepresentativeDataset) and len(rep) == 8
    for sa, sb in rep():
        assert sa.shape == (1, 3) and sb.shape == (1, 2)
        np.testing.assert_allclose(sb[0], sa[0, :2] * 10)  # the same sample of each input


def test_multi_valued_regression_targets_are_not_taken_for_one_hot(tmp_path: Path) -> None:
    x = np.zeros((30, 4), np.float32)
    targets = np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32)
    np.savez(tmp_path / "reg.npz", x=x, y=targets)
    ds = load_dataset(tmp_path / "reg.npz")
    assert ds.y_test is not None and ds.y_test.shape == (6, 2)
    one_hot = np.eye(3)[np.arange(30) % 3]
    np.savez(tmp_path / "oh.npz", x=x, y=one_hot)
    assert load_dataset(tmp_path / "oh.npz").y_test.ndim == 1  # one-hot is still decoded
