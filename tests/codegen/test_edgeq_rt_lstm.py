"""edgeq-rt's UNIDIRECTIONAL_SEQUENCE_LSTM (eq_sequence_lstm_s8) against TFLite Micro: every
output byte of tf-keras LSTMs converted by edgeq, on several shapes, whole sequences and last
steps, stacked layers, saturating gates; the state reset between invokes; the scratch size."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers_edgeq_rt import assert_bit_exact, convert_keras, keras_layers, random_inputs
from helpers_host_harness import build_host_model

from edgeq.codegen.edgeq_rt import generate_edgeq_rt, runtime_dir
from edgeq.codegen.ops_recurrent import lstm_scratch_bytes
from edgeq.errors import CodegenError
from edgeq.oracles import run_tflm
from edgeq.tflite import read_tflite_bytes


def _lstm_model(steps: int, features: int, units: tuple[int, ...], sequences: bool,
                gain: float = 1.0, seed: int = 0):  # noqa: ANN202
    keras = keras_layers()
    keras.utils.set_random_seed(seed)
    inp = keras.Input((steps, features))
    x = inp
    for k, u in enumerate(units):
        x = keras.layers.LSTM(u, return_sequences=sequences or k < len(units) - 1)(x)
    model = keras.Model(inp, x)
    if gain != 1.0:  # larger weights: gates saturate, the cell state grows to its clip
        model.set_weights([w * gain for w in model.get_weights()])
    return model


CASES = {  # steps, features, units, whole sequence out, weight gain
    "t8_f8_u8_seq": (8, 8, (8,), True, 1.0),
    "t16_f3_u16_last": (16, 3, (16,), False, 1.0),
    "t1_f5_u7_seq": (1, 5, (7,), True, 1.0),
    "stacked_t10_f4_u12_u6": (10, 4, (12, 6), True, 1.0),
    "saturating_t12_f6_u10": (12, 6, (10,), True, 6.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_lstm_bit_exact_with_tflm(case: str, tmp_path: Path) -> None:
    steps, features, units, sequences, gain = CASES[case]
    data = convert_keras(lambda: _lstm_model(steps, features, units, sequences, gain))
    ops = [op.opcode for op in read_tflite_bytes(data).operators]
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == len(units), ops
    path = tmp_path / "lstm.tflite"
    path.write_bytes(data)
    counts = assert_bit_exact(path, tmp_path, n=20, litert=False)
    assert counts == {"tflm": 0}


def test_lstm_state_starts_from_zero_every_invoke(tmp_path: Path) -> None:
    """TFLM keeps LSTM state across Invoke() until Reset(); edgeq's oracle resets after every
    sample and edgeq-rt starts each invoke from that reset state: the same sample three times
    gives three equal outputs, equal to TFLM's."""
    path = tmp_path / "lstm.tflite"
    path.write_bytes(convert_keras(lambda: _lstm_model(6, 4, (8,), True)))
    x = np.repeat(random_inputs(path, 1, seed=3)[0], 3, axis=0)
    got = build_host_model(path, tmp_path / "host").run([x])[0]
    assert np.array_equal(got[0], got[1]) and np.array_equal(got[0], got[2])
    assert np.array_equal(got, run_tflm(path, x)[0].reshape(got.shape))
    assert len(np.unique(got[0])) > 4  # a real sequence, not a constant


def test_scratch_size_matches_the_c_macro(tmp_path: Path) -> None:
    src = tmp_path / "size.c"
    src.write_text('#include <stdio.h>\n#include "eq_kernels_recurrent.h"\nint main(void) {\n'
                   + "".join(f'    printf("%d\\n", (int)EQ_SEQUENCE_LSTM_S8_SCRATCH_BYTES({u}));\n'
                             for u in (1, 7, 8, 64, 255))
                   + "    return 0;\n}\n")
    exe = tmp_path / "size"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{runtime_dir() / 'include'}",
                    str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    assert [int(v) for v in out] == [lstm_scratch_bytes(u) for u in (1, 7, 8, 64, 255)]


def test_float_lstm_is_refused_with_a_way_forward(tmp_path: Path) -> None:
    """A float .tflite quantized by ai-edge-quantizer keeps its LSTM in float (int8 I/O)."""
    from edgeq.quantize.tflite_ptq import quantize_float_tflite
    from edgeq.tfenv import import_tf

    tf = import_tf()
    keras = keras_layers()
    inp = keras.Input((5, 3))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.LSTM(4)(inp)))
    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec([1, 5, 3], tf.float32))
    float_bytes = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model).convert()
    calib = np.random.default_rng(0).standard_normal((8, 5, 3)).astype(np.float32)
    path = tmp_path / "lstm_aeq.tflite"
    path.write_bytes(quantize_float_tflite(float_bytes, "float32", calib))
    with pytest.raises(CodegenError) as err:
        generate_edgeq_rt(path)
    msg = str(err.value)
    assert "\n" not in msg and "UNIDIRECTIONAL_SEQUENCE_LSTM" in msg
    assert "pass the Keras model" in msg
