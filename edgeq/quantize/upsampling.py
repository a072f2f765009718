"""Keras 3 ``UpSampling2D`` made into an op microcontrollers run.

Keras 3 computes ``UpSampling2D(interpolation="nearest")`` with ``ops.repeat``, which the TFLite
converter lowers to RESHAPE + TILE; TFLite Micro has no TILE kernel, so the model cannot be
checked against it. tf-keras computes the same layer with ``tf.image.resize``, which becomes one
RESIZE_NEAREST_NEIGHBOR (RESIZE_BILINEAR for ``"bilinear"``), run by TFLM and edgeq-rt. So a
Keras 3 model with UpSampling2D is rebuilt in tf-keras before conversion (the rebuild QAT uses:
layer by layer, weights copied, outputs checked equal). A model the rebuild cannot express is
converted as it is, and the TILE it still holds is refused later in one line.
"""

from __future__ import annotations

import logging
from typing import Any

from edgeq.errors import QuantizeError

log = logging.getLogger(__name__)

UPSAMPLING_LAYERS = ("UpSampling2D",)


def _is_keras3(model: Any) -> bool:
    return type(model).__module__.split(".")[0] == "keras"


def upsampling_layers(model: Any) -> list[Any]:
    """The model's UpSampling2D layers (top level), in order."""
    return [layer for layer in getattr(model, "layers", [])
            if type(layer).__name__ in UPSAMPLING_LAYERS]


def prepare_upsampling(model: Any) -> Any:
    """The model to convert: its tf-keras rebuild when it is Keras 3 with UpSampling2D and the
    rebuild computes the same outputs, else the model unchanged."""
    layers = upsampling_layers(model)
    if not layers or not _is_keras3(model):
        return model
    from edgeq.quantize.qat import keras3_to_tf_keras

    names = ", ".join(x.name for x in layers)
    try:
        rebuilt = keras3_to_tf_keras(model)
    except QuantizeError as exc:
        log.warning("Keras 3 UpSampling2D (%s) stays TILE, which TFLite Micro cannot run: %s",
                    names, exc)
        return model
    log.debug("Keras 3 model rebuilt in tf-keras so UpSampling2D (%s) converts to RESIZE_*", names)
    return rebuilt
