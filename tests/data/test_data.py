"""edgeq.data: every dataset source, the fixed split, and the representative dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeq.data import (
    Normalization,
    fit_to_input,
    load_dataset,
    prepare_inputs,
    representative_dataset,
)
from edgeq.errors import DataError


def test_digits_builtin_is_raw_8x8x1_with_fixed_split() -> None:
    a = load_dataset("digits")
    b = load_dataset("digits")
    assert a.x_train.shape[1:] == (8, 8, 1) and a.x_train.dtype == np.float32
    assert len(a) == 1797 and len(a.x_test) == round(1797 * 0.2)
    assert a.x_train.min() == 0.0 and a.x_train.max() == 16.0  # raw values, not normalized
    assert a.labels == [str(i) for i in range(10)]
    np.testing.assert_array_equal(a.y_test, b.y_test)  # same split every run
    np.testing.assert_array_equal(a.x_test, b.x_test)
    c = load_dataset("digits", seed=1)
    assert not np.array_equal(a.y_test, c.y_test)  # the seed decides the split


def test_mnist5k_builtin_is_raw_28x28x1() -> None:
    ds = load_dataset("mnist5k")
    assert ds.x_train.shape == (4000, 28, 28, 1)
    assert ds.x_test.shape == (1000, 28, 28, 1)
    assert ds.x_train.max() == 255.0
    assert set(np.unique(ds.y_train)) == set(range(10))


def test_npz_with_x_y_keys(tmp_path: Path) -> None:
    x = np.arange(40 * 4, dtype=np.float32).reshape(40, 2, 2, 1)
    y = np.arange(40) % 3
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.name == "d" and len(ds) == 40 and len(ds.x_test) == 8
    assert ds.labels == ["0", "1", "2"]
    # samples and labels stay paired through the shuffle
    for xs, ys in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        idx = (xs[:, 0, 0, 0] / 4).astype(int)
        np.testing.assert_array_equal(ys, idx % 3)


def test_npz_with_named_keys_and_one_hot_labels(tmp_path: Path) -> None:
    feats = np.random.default_rng(0).random((10, 5)).astype(np.float32)
    onehot = np.eye(2)[np.arange(10) % 2]
    np.savez(tmp_path / "named.npz", feats=feats, target=onehot)
    ds = load_dataset(tmp_path / "named.npz", x_key="feats", y_key="target")
    assert ds.sample_shape == (5,)
    assert set(ds.y_train.tolist() + ds.y_test.tolist()) == {0, 1}
    with pytest.raises(DataError, match="no sample array 'x'"):
        load_dataset(tmp_path / "named.npz")


def test_npz_with_its_own_split(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "s.npz",
        x_train=np.zeros((6, 3)),
        y_train=np.arange(6) % 2,
        x_test=np.ones((2, 3)),
        y_test=np.array([0, 1]),
    )
    ds = load_dataset(tmp_path / "s.npz")
    assert len(ds.x_train) == 6 and len(ds.x_test) == 2
    assert np.all(ds.x_test == 1.0)


def test_npy_pairs(tmp_path: Path) -> None:
    x = np.random.default_rng(1).random((20, 4)).astype(np.float32)
    y = np.arange(20) % 4
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "kws_x.npy", x)
    np.save(tmp_path / "kws_y.npy", y)
    np.save(tmp_path / "feat.npy", x)
    np.save(tmp_path / "lab.npy", y)
    for spec in (
        tmp_path / "x.npy",
        tmp_path / "kws_x.npy",
        f"{tmp_path}/feat.npy,{tmp_path}/lab.npy",
    ):
        ds = load_dataset(spec)
        assert len(ds) == 20 and ds.y_train is not None
        assert ds.labels == ["0", "1", "2", "3"]
    unlabeled = load_dataset(tmp_path / "feat.npy")  # no sibling labels: unlabeled data
    assert unlabeled.y_train is None and unlabeled.labels == []


def test_image_folder_resizes_to_model_input(tmp_path: Path) -> None:
    from PIL import Image

    for cls, value in (("cat", 40), ("dog", 200)):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for k, size in enumerate(((20, 20), (31, 17), (12, 12))):
            Image.new("RGB", size, (value, value, value)).save(tmp_path / "imgs" / cls / f"{k}.png")
    (tmp_path / "imgs" / "cat" / "notes.txt").write_text("ignored")
    ds = load_dataset(tmp_path / "imgs", input_shape=(8, 8, 1))
    assert ds.labels == ["cat", "dog"]
    assert ds.sample_shape == (8, 8, 1) and len(ds) == 6
    all_x = np.concatenate([ds.x_train, ds.x_test])
    all_y = np.concatenate([ds.y_train, ds.y_test])
    assert np.allclose(all_x[all_y == 0], 40, atol=1) and np.allclose(
        all_x[all_y == 1], 200, atol=1
    )
    rgb = load_dataset(tmp_path / "imgs", input_shape=(5, 6, 3))
    assert rgb.sample_shape == (5, 6, 3)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such dataset"):
        load_dataset(tmp_path / "nope.npz")
    with pytest.raises(DataError, match="unsupported dataset format"):
        (tmp_path / "d.csv").write_text("1,2")
        load_dataset(tmp_path / "d.csv")


def test_corrupt_npz_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read as numpy data"):
        load_dataset(tmp_path / "bad.npz")


def test_empty_dataset_is_a_data_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "e.npz", x=np.zeros((0, 8, 8, 1)), y=np.zeros((0,)))
    with pytest.raises(DataError, match="is empty"):
        load_dataset(tmp_path / "e.npz")
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="is empty"):
        load_dataset(tmp_path / "imgs")


def test_shape_mismatch_names_both_shapes() -> None:
    x = np.zeros((3, 5, 5, 1), np.float32)
    with pytest.raises(DataError, match=r"\(5, 5, 1\).*\(8, 8, 1\)"):
        fit_to_input(x, (None, 8, 8, 1))


def test_fit_to_input_adds_or_drops_singleton_dims() -> None:
    assert fit_to_input(np.zeros((2, 8, 8)), (None, 8, 8, 1)).shape == (2, 8, 8, 1)
    assert fit_to_input(np.zeros((2, 8, 8, 1)), (1, 8, 8)).shape == (2, 8, 8)
    with pytest.raises(DataError):
        fit_to_input(np.zeros((2, 64)), (None, 8, 8, 1))  # same size, different layout: refuse


def test_normalization_from_sidecar_meta() -> None:
    norm = Normalization.from_meta({"normalization": {"mean": [1.0], "std": [16.0]}})
    x = prepare_inputs(np.full((2, 8, 8, 1), 17.0), (None, 8, 8, 1), norm)
    assert np.allclose(x, 1.0) and x.dtype == np.float32
    assert Normalization.from_meta({}).is_identity
    with pytest.raises(DataError, match="std 0"):
        Normalization.from_meta({"normalization": {"mean": 0, "std": 0}})


def test_representative_dataset_is_seeded_batch1_and_normalized() -> None:
    ds = load_dataset("digits")
    norm = Normalization(mean=(0.0,), std=(16.0,))
    rep = representative_dataset(
        ds.x_train, input_shape=(None, 8, 8, 1), normalization=norm, num_samples=50, seed=3
    )
    batches = list(rep())
    assert len(rep) == 50 and len(batches) == 50
    assert all(len(b) == 1 and b[0].shape == (1, 8, 8, 1) for b in batches)
    assert all(b[0].dtype == np.float32 for b in batches)
    assert max(float(b[0].max()) for b in batches) <= 1.0  # 16 / 16
    again = representative_dataset(
        ds.x_train, input_shape=(None, 8, 8, 1), normalization=norm, num_samples=50, seed=3
    )
    np.testing.assert_array_equal(rep.samples, again.samples)
    other = representative_dataset(
        ds.x_train, input_shape=(None, 8, 8, 1), normalization=norm, num_samples=50, seed=4
    )
    assert not np.array_equal(rep.samples, other.samples)
    # asking for more samples than exist gives all of them, once
    small = representative_dataset(ds.x_train[:7], input_shape=(None, 8, 8, 1), num_samples=50)
    assert len(small) == 7


def test_representative_dataset_refuses_empty_and_wrong_shape() -> None:
    with pytest.raises(DataError, match="empty"):
        representative_dataset(np.zeros((0, 8, 8, 1)), input_shape=(None, 8, 8, 1))
    with pytest.raises(DataError, match=r"\(28, 28, 1\).*\(8, 8, 1\)"):
        representative_dataset(np.zeros((4, 28, 28, 1)), input_shape=(None, 8, 8, 1))
