"""Which Keras layer a TFLite operator came from, read from its tensor names.

The TFLite converter names a tensor after the TensorFlow scope that produced it: for a Keras
model that is ``<model>/<layer>/<tf op>`` (``model/lstm_1/while``, ``sequential/dense/MatMul``;
fused tensors join several such names with ``;``). Error messages name that layer so a user can
find the line of their model to change; the operator index alone means nothing to them.
"""

from __future__ import annotations

from edgeq.tflite.reader import Operator, TfliteModel


def scope_layer(tensor_name: str) -> str | None:
    """The layer part of ``<model>/<layer>/...`` (None for names without one, such as
    ``StatefulPartitionedCall:0`` or ``serving_default_input_1:0``)."""
    first = tensor_name.split(";")[0].strip()
    parts = [p for p in first.split("/") if p]
    if len(parts) < 3:
        return None
    return parts[1]


def keras_layer(model: TfliteModel, op: Operator) -> str | None:
    """The Keras layer that produced ``op``'s outputs, when their names say."""
    for i in op.outputs:
        if 0 <= i < len(model.tensors):
            layer = scope_layer(model.tensors[i].name)
            if layer:
                return layer
    return None
