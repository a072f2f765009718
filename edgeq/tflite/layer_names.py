"""Which Keras layer a ``.tflite`` op came from, read from its output tensor's name.

The converter names a tensor after the TensorFlow ops fused into it, each a path under the model's
name scope: ``functional_1/conv2d_1/Relu;functional_1/conv2d_1/BiasAdd``. The second path part is
the Keras layer. Keras 3 traces under a fresh scope, so its names carry an extra ``_1``
(``conv2d`` becomes ``conv2d_1``); with the Keras model's own layer names at hand that suffix is
resolved, without them the traced name is given (it still finds the layer in ``model.summary()``).
Users think in layers, not in op indices, so errors and advice name both.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from edgeq.tflite.reader import Operator, TfliteModel

_TRACE_SUFFIX = re.compile(r"_\d+$")


def keras_layer_name(tensor_name: str, known: Collection[str] = (),
                     keras3: bool | None = None) -> str | None:
    """The Keras layer behind a tensor name, or None when the name has no layer path.

    ``known``: the model's layer names; ``keras3``: the model was traced by Keras 3 (its scopes
    end in one added ``_<n>``), ``None`` when not known."""
    for fused in tensor_name.split(";"):
        parts = [p for p in fused.split("/") if p]
        if len(parts) < 3:  # <model>/<layer>/<tf op>; shorter names carry no layer
            continue
        if not known:
            return _TRACE_SUFFIX.sub("", parts[1]) if keras3 else parts[1]
        for part in reversed(parts[1:-1] or parts[1:]):  # the innermost: nested models
            stripped = _TRACE_SUFFIX.sub("", part)
            order = [stripped] if keras3 else [part] if keras3 is False else [part, stripped]
            for name in order:
                if name in known:
                    return name
        return parts[1]
    return None


def op_layer_name(info: Any, op_index: int, known: Collection[str] = (),
                  keras3: bool | None = None) -> str | None:
    """The Keras layer of op ``op_index`` of a ``TfliteModel`` (from its outputs' names)."""
    op = info.operators[op_index]
    for t in op.outputs:
        if 0 <= t < len(info.tensors):
            name = keras_layer_name(info.tensors[t].name, known, keras3)
            if name:
                return name
    return None


def keras_layer(model: TfliteModel, op: Operator) -> str | None:
    """The Keras layer that produced ``op``'s outputs, when their names say (no model at hand)."""
    for i in op.outputs:
        if 0 <= i < len(model.tensors):
            layer = keras_layer_name(model.tensors[i].name)
            if layer:
                return layer
    return None


def model_layer_names(keras_model: Any) -> set[str]:
    """Every layer name of a Keras model, nested models included."""
    names: set[str] = set()
    stack = [keras_model]
    while stack:
        m = stack.pop()
        for layer in getattr(m, "layers", []):
            names.add(str(layer.name))
            if getattr(layer, "layers", None):
                stack.append(layer)
    return names
