"""The one reader of ``.tflite`` flatbuffers for the whole package.

Built on the schema module that ``ai_edge_litert`` ships (generated from TFLite's schema by the
flatbuffers compiler), so it never imports TensorFlow and stays fast.
"""

from edgeq.tflite.layer_names import keras_layer
from edgeq.tflite.reader import (
    Operator,
    Quantization,
    Tensor,
    TfliteModel,
    dtype_name,
    load_model_t,
    read_tflite,
    read_tflite_bytes,
    serialize_model_t,
)

__all__ = [
    "Operator",
    "Quantization",
    "Tensor",
    "TfliteModel",
    "dtype_name",
    "keras_layer",
    "load_model_t",
    "read_tflite",
    "read_tflite_bytes",
    "serialize_model_t",
]
