"""Model loading (Keras 3, tf-keras, ``.tflite``) and the reference model builders.

Builders live in ``edgeq.models.builders`` and import TensorFlow, so they are not imported here.
"""

from edgeq.models.loader import (
    KINDS,
    LoadedModel,
    load_model,
    predict_keras,
    predict_keras_all,
    read_sidecar,
    sidecar_path,
    sidecar_tasks,
)

__all__ = ["KINDS", "LoadedModel", "load_model", "predict_keras", "predict_keras_all",
           "read_sidecar", "sidecar_path", "sidecar_tasks"]
