"""edgeq: a trained Keras model to a verified, measured int8 model on a microcontroller.

The pipeline flows one way: data -> quantize -> analyze -> codegen -> build -> device/bench.
Heavy dependencies (TensorFlow, LiteRT, TFLM) are imported lazily so the CLI answers instantly.
"""

__version__ = "0.1.0"
