"""Train the reference ``digits_cnn`` on the built-in ``digits`` dataset (seeded, ~20 s on 2 cores).

Writes ``digits_cnn.h5`` (tf-keras) and its sidecar ``digits_cnn.edgeq.json`` beside this file,
so ``make run`` needs no training. Re-run with ``.venv/bin/python models/digits_cnn/train.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeq.data import Normalization, load_dataset, prepare_inputs
from edgeq.fileio import atomic_write_bytes, atomic_write_json
from edgeq.models.builders import digits_cnn
from edgeq.tfenv import import_tf_keras

HERE = Path(__file__).resolve().parent
NORMALIZATION = Normalization(mean=(0.0,), std=(16.0,))  # digits pixels are 0..16
SEED = 0


def train(out_dir: Path, epochs: int = 60, seed: int = SEED) -> float:
    """Train, save ``digits_cnn.h5`` + sidecar into ``out_dir``; return float test accuracy."""
    keras = import_tf_keras()
    ds = load_dataset("digits")
    model = digits_cnn(seed=seed)
    x_train = prepare_inputs(ds.x_train, model.input_shape, NORMALIZATION)
    x_test = prepare_inputs(ds.x_test, model.input_shape, NORMALIZATION)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    decay = keras.callbacks.LearningRateScheduler(lambda e, lr: 0.01 * 0.95**e)
    model.fit(
        x_train,
        ds.y_train,
        epochs=epochs,
        batch_size=32,
        verbose=0,
        shuffle=True,
        callbacks=[decay],
    )
    acc = float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == ds.y_test))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_h5 = Path(tmp) / "digits_cnn.h5"
        model.save(tmp_h5, include_optimizer=False)
        atomic_write_bytes(out_dir / "digits_cnn.h5", tmp_h5.read_bytes())
    atomic_write_json(
        out_dir / "digits_cnn.edgeq.json",
        {
            "dataset": "digits",
            "task": "classification",
            "labels": ds.labels,
            "normalization": NORMALIZATION.as_dict(),
            "float_test_accuracy": round(acc, 4),
            "recipe": "models/digits_cnn/train.py",
        },
    )
    return acc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args(argv)
    acc = train(args.out, epochs=args.epochs)
    print(f"digits_cnn float test accuracy: {acc:.2%} -> {args.out / 'digits_cnn.h5'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
