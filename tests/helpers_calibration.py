"""Tiny models shared by the calibration, QAT and per-layer analysis tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeq.tfenv import import_tf_keras

N_IN = 16


def planted_outlier_model() -> Any:
    """Dense(relu) -> Dense(relu) where one unit fires 100 only on an all-ones input.

    ``d1`` passes the input through (units 0..15) plus ``relu(sum(x) - 15.9)``, at most 0.1;
    ``d2`` passes ``d1`` through but multiplies that unit by 1000. On uniform [0, 1) data with one
    all-ones sample, the input and ``d1`` tensors have no outlier and the output tensor has one
    (100 against a bulk in [0, 1]).
    """
    keras = import_tf_keras()
    inp = keras.Input((N_IN,), name="x")
    d1 = keras.layers.Dense(N_IN + 1, activation="relu", name="d1")
    d2 = keras.layers.Dense(N_IN + 1, activation="relu", name="d2")
    model = keras.Model(inp, d2(d1(inp)), name="planted")
    w1 = np.zeros((N_IN, N_IN + 1), np.float32)
    w1[:, :N_IN] = np.eye(N_IN)
    w1[:, N_IN] = 1.0
    b1 = np.zeros(N_IN + 1, np.float32)
    b1[N_IN] = -(N_IN - 0.1)
    d1.set_weights([w1, b1])
    w2 = np.eye(N_IN + 1, dtype=np.float32)
    w2[N_IN, N_IN] = 1000.0
    d2.set_weights([w2, np.zeros(N_IN + 1, np.float32)])
    return model


def planted_data(n: int = 2000, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(0.0, 1.0, (n, N_IN)).astype(np.float32)
    x[0] = 1.0
    return x


def trained_digits_cnn(epochs: int = 15) -> tuple[Any, Any]:
    """digits_cnn trained for a few seconds on the built-in digits (inputs scaled to [0, 1])."""
    from edgeq.data.datasets import load_dataset
    from edgeq.models.builders import digits_cnn

    ds = load_dataset("digits")
    ds.x_train = ds.x_train / 16.0
    ds.x_test = ds.x_test / 16.0
    model = digits_cnn(0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ds.x_train, ds.y_train, epochs=epochs, batch_size=32, verbose=0)
    return model, ds


def int8_accuracy(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of an int8-I/O model on the LiteRT reference kernels."""
    from edgeq.oracles import run_litert_ref
    from edgeq.quantize import numerics
    from edgeq.tflite import read_tflite_bytes

    t = read_tflite_bytes(tflite).input_tensors[0]
    xq = numerics.quantize(x, float(t.quant.scale[0]), int(t.quant.zero_point[0]), "int8")
    out = run_litert_ref(tflite, xq.reshape((len(x), *t.shape[1:])))[0]
    return float(np.mean(out.reshape(len(x), -1).argmax(1) == y))


def tensor_scale(tflite: bytes, name: str) -> float:
    from edgeq.tflite import read_tflite_bytes

    for t in read_tflite_bytes(tflite).tensors:
        if t.name == name:
            return float(t.quant.scale[0])
    raise KeyError(name)


def with_4bit_weights(tflite: bytes, op_index: int) -> bytes:
    """The same int8 model with one op's weights requantized to a 4-bit grid ([-7, 7]).

    Scales grow by 127/7 so the real weights keep their range; the int32 bias is rescaled to
    the new ``s_in * s_w``. Everything else is untouched, so the op is an exact 4-bit twin.
    """
    from edgeq.tflite import load_model_t, serialize_model_t

    m = load_model_t(tflite)
    sg = m.subgraphs[0]
    op = sg.operators[op_index]
    w_t, b_t = sg.tensors[op.inputs[1]], sg.tensors[op.inputs[2]]
    w_buf, b_buf = m.buffers[w_t.buffer], m.buffers[b_t.buffer]
    q = np.frombuffer(np.asarray(w_buf.data, np.uint8).tobytes(), np.int8).astype(np.float64)
    shape = [int(d) for d in w_t.shape]
    q = q.reshape(shape)
    old = np.asarray(w_t.quantization.scale, np.float64)
    factor = 127.0 / 7.0
    q4 = np.clip(np.round(q / factor), -7, 7).astype(np.int8)
    w_t.quantization.scale = (old * factor).astype(np.float32)
    w_buf.data = np.frombuffer(q4.tobytes(), np.uint8).copy()
    bias = np.frombuffer(np.asarray(b_buf.data, np.uint8).tobytes(), np.int32).astype(np.float64)
    b_t.quantization.scale = (np.asarray(b_t.quantization.scale, np.float64) * factor).astype(
        np.float32)
    b_buf.data = np.frombuffer(np.round(bias / factor).astype(np.int32).tobytes(), np.uint8).copy()
    return serialize_model_t(m)
