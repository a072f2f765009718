"""A model that keeps state between invokes, for checking that TFLM runs are reset.

``y = state + x; state = y`` over a TFLite resource variable (CALL_ONCE, VAR_HANDLE,
READ_VARIABLE, ADD, ASSIGN_VARIABLE): every invoke after the first returns the running sum
unless the interpreter is reset in between. Unlike an LSTM it keeps its state with every TFLM
kernel set (CMSIS-NN's LSTM starts from zero state on each invoke), so a missing Reset() shows
with the cached CMSIS-NN library too.
"""

from __future__ import annotations

import numpy as np


def accumulator_tflite(width: int = 4) -> bytes:
    """The float32 accumulator as a .tflite (converted here, in a second)."""
    from edgeq.tfenv import import_tf

    tf = import_tf()

    class Accumulator(tf.Module):
        def __init__(self) -> None:
            self.state = tf.Variable(tf.zeros([1, width]), name="state")

        @tf.function(input_signature=[tf.TensorSpec([1, width], tf.float32)])
        def __call__(self, x):  # noqa: ANN001, ANN204
            y = self.state + x
            self.state.assign(y)
            return y

    module = Accumulator()
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module)
    conv.experimental_enable_resource_variables = True
    return bytes(conv.convert())


def running_sums(x: np.ndarray) -> np.ndarray:
    """What the accumulator returns with no reset between the samples of ``x``."""
    return np.cumsum(x, axis=0)
