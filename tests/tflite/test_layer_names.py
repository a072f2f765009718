"""The Keras layer an operator came from, read from the converter's tensor names."""

from __future__ import annotations

import pytest

from edgeq.tflite import Operator, Tensor, TfliteModel, keras_layer
from edgeq.tflite.layer_names import keras_layer_name


@pytest.mark.parametrize("name,layer", [
    ("model/lstm_1/while", "lstm_1"),
    ("model/lstm_1/while/lstm_cell/MatMul", "lstm_1"),
    ("sequential/dense/MatMul;sequential/dense/BiasAdd", "dense"),
    ("model_25/layer_normalization_1/FusedBatchNormV39", "layer_normalization_1"),
    ("functional_1/proj_1/Tensordot", "proj_1"),
    ("model/tf.split/split", "tf.split"),
    ("StatefulPartitionedCall:0", None),
    ("serving_default_input_1:0", None),
    ("dense/BiasAdd", None),
    ("", None),
])
def test_layer_from_a_tensor_name(name: str, layer: str | None) -> None:
    assert keras_layer_name(name) == layer


def test_keras_layer_reads_the_first_named_output() -> None:
    tensors = [Tensor(index=i, name=n, shape=(1,), type=9, buffer=0, quant=None)
               for i, n in enumerate(["x", "StatefulPartitionedCall:1", "model/gru/while:3"])]
    model = TfliteModel(tensors=tensors, operators=[], inputs=[0], outputs=[2], version=3,
                        description="", size_bytes=0, num_subgraphs=1, metadata_names=[])
    assert keras_layer(model, Operator(0, "SPLIT", 1, [0], [1, 2])) == "gru"
    assert keras_layer(model, Operator(1, "SOFTMAX", 1, [2], [1])) is None
