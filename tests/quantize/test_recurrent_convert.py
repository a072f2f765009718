"""Converting LSTM/GRU models (issue 13): what the converter gets (fused LSTM, unrolled GRU and
non-fusable LSTMs, no WHILE loop), the one-line errors, and the converter's native steps in a
child process so that its crash (Keras 3 LSTM loop: SIGSEGV) is one line, not a dead CLI."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from edgeq.errors import QuantizeError
from edgeq.oracles import run_tflm
from edgeq.quantize.ptq import convert_ptq
from edgeq.tflite import read_tflite_bytes

STEPS, FEATURES = 6, 4


def _samples(n: int = 4) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return [[rng.standard_normal((1, STEPS, FEATURES)).astype(np.float32)] for _ in range(n)]


def _rep():  # noqa: ANN202
    return iter(_samples())


def _ops(data: bytes) -> Counter:
    return Counter(op.opcode for op in read_tflite_bytes(data).operators)


def test_converter_crash_in_the_child_is_one_line() -> None:
    """A Keras 3 LSTM traced as is (no preparation) is a TensorList WHILE loop; TFLite's
    calibrator dereferences garbage on it. In the worker that is one QuantizeError line, and
    the next native call gets a fresh worker."""
    import keras

    from edgeq.quantize.native_steps import isolate_native_steps
    from edgeq.tfenv import import_tf

    tf = import_tf()
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), keras.layers.LSTM(4),
                              keras.layers.Dense(2)])
    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec([1, STEPS, FEATURES], tf.float32))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    samples = _samples()
    conv.representative_dataset = lambda: iter(samples)
    with pytest.raises(QuantizeError) as err, isolate_native_steps(conv, samples):
        conv.convert()
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("the TFLite converter: the calibration step crashed with SIGSEGV")
    assert "fixed sequence length" in msg
    # the worker is replaced: native calls still work
    ok = convert_ptq(_tf_keras_lstm(), _rep)
    assert _ops(ok)["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 1


def _tf_keras_lstm(**kwargs):  # noqa: ANN202, ANN003
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(0)
    shape = kwargs.pop("shape", (STEPS, FEATURES))
    layer = kwargs.pop("layer", "LSTM")
    inp = keras.Input(shape)
    return keras.Model(inp, keras.layers.Dense(2)(getattr(keras.layers, layer)(5, **kwargs)(inp)))


def test_variable_sequence_length_is_one_line() -> None:
    with pytest.raises(QuantizeError) as err:
        convert_ptq(_tf_keras_lstm(shape=(None, FEATURES)), _rep)
    msg = str(err.value)
    assert "\n" not in msg and "needs a fixed sequence length" in msg
    assert "Input(shape=(T, features))" in msg


@pytest.mark.parametrize("kwargs", [{"layer": "GRU"}, {"activation": "relu"},
                                    {"layer": "SimpleRNN"}], ids=["gru", "relu_lstm", "rnn"])
def test_loops_are_unrolled_and_tflm_runs_them(kwargs: dict) -> None:
    """GRU, SimpleRNN and an LSTM tf-keras does not fuse become plain ops: no WHILE."""
    data = convert_ptq(_tf_keras_lstm(**dict(kwargs)), _rep)
    ops = _ops(data)
    assert "WHILE" not in ops and "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops, ops
    assert ops["FULLY_CONNECTED"] >= STEPS, ops
    x = np.random.default_rng(1).integers(-128, 128, (3, STEPS, FEATURES)).astype(np.int8)
    assert run_tflm(data, x)[0].shape == (3, 2)


def test_bidirectional_is_refused_in_one_line() -> None:
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    inp = keras.Input((STEPS, FEATURES))
    model = keras.Model(inp, keras.layers.Bidirectional(keras.layers.LSTM(3))(inp))
    with pytest.raises(QuantizeError) as err:
        convert_ptq(model, _rep)
    assert "\n" not in str(err.value) and "Bidirectional" in str(err.value)
