"""tf-keras model builders: the repo's reference model and MLPerf-Tiny-shaped architectures.

The MLPerf-Tiny shapes (DS-CNN keyword spotting, ResNet-8, MobileNetV1-0.25, FC autoencoder)
are built with random weights: numerics and runtime tests only need their layer mix and sizes,
not trained accuracy. ``digits_cnn`` and ``mnist_cnn`` are small enough to train in seconds.
All builders are seeded so the same call gives the same weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeq.tfenv import import_tf_keras


def _keras(seed: int) -> Any:
    keras = import_tf_keras()
    keras.utils.set_random_seed(seed)
    return keras


def digits_cnn(seed: int = 0) -> Any:
    """8x8x1 digits classifier: Conv2D, DepthwiseConv2D (ReLU6), 1x1 Conv2D, pooling, Dense."""
    keras = _keras(seed)
    L = keras.layers
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.DepthwiseConv2D(3, padding="same", name="dw2")(x)
    x = L.ReLU(6.0, name="relu6_2")(x)
    x = L.Conv2D(24, 1, activation="relu", name="pw2")(x)
    x = L.MaxPooling2D(2, name="maxpool")(x)
    x = L.AveragePooling2D(2, name="avgpool")(x)
    x = L.Flatten(name="flatten")(x)
    out = L.Dense(10, activation="softmax", name="logits")(x)
    return keras.Model(inp, out, name="digits_cnn")


def mnist_cnn(seed: int = 0) -> Any:
    """28x28x1 MNIST classifier, small enough to train on ``mnist5k`` in seconds."""
    keras = _keras(seed)
    L = keras.layers
    inp = keras.Input((28, 28, 1), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(inp)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw2")(x)
    x = L.Conv2D(16, 1, activation="relu", name="pw2")(x)
    x = L.MaxPooling2D(2, name="maxpool")(x)
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
    x = L.AveragePooling2D(7, name="avgpool")(x)
    x = L.Flatten(name="flatten")(x)
    out = L.Dense(10, activation="softmax", name="logits")(x)
    return keras.Model(inp, out, name="mnist_cnn")


def _conv_bn_relu(L: Any, x: Any, filters: int, kernel: Any, strides: Any = 1) -> Any:
    x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    return L.ReLU()(x)


def _dw_bn_relu(L: Any, x: Any, strides: Any = 1) -> Any:
    x = L.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    return L.ReLU()(x)


def ds_cnn(seed: int = 0, num_classes: int = 12) -> Any:
    """MLPerf-Tiny keyword spotting DS-CNN: 49x10x1 MFCCs, 64 channels, 4 separable blocks."""
    keras = _keras(seed)
    L = keras.layers
    inp = keras.Input((49, 10, 1), name="mfcc")
    x = _conv_bn_relu(L, inp, 64, (10, 4), strides=(2, 2))
    for _ in range(4):
        x = _dw_bn_relu(L, x)
        x = _conv_bn_relu(L, x, 64, 1)
    x = L.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])))(x)
    x = L.Flatten()(x)
    out = L.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inp, out, name="ds_cnn")


def resnet8(seed: int = 0, num_classes: int = 10) -> Any:
    """MLPerf-Tiny image classification ResNet-8: 32x32x3, three residual stacks (16/32/64)."""
    keras = _keras(seed)
    L = keras.layers
    inp = keras.Input((32, 32, 3), name="image")
    x = _conv_bn_relu(L, inp, 16, 3)
    for filters, strides in ((16, 1), (32, 2), (64, 2)):
        y = _conv_bn_relu(L, x, filters, 3, strides=strides)
        y = L.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        y = L.BatchNormalization()(y)
        shortcut = x
        if strides != 1:
            shortcut = L.Conv2D(filters, 1, strides=strides, padding="same")(x)
        x = L.ReLU()(L.Add()([shortcut, y]))
    x = L.AveragePooling2D(pool_size=int(x.shape[1]))(x)
    x = L.Flatten()(x)
    out = L.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inp, out, name="resnet8")


def mobilenet_v1_025(seed: int = 0, num_classes: int = 2) -> Any:
    """MLPerf-Tiny visual wake words MobileNetV1 (alpha 0.25): 96x96x3, 13 separable blocks."""
    keras = _keras(seed)
    L = keras.layers
    inp = keras.Input((96, 96, 3), name="image")
    x = _conv_bn_relu(L, inp, 8, 3, strides=2)
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)]
    blocks += [(128, 1)] * 5 + [(256, 2), (256, 1)]
    for filters, strides in blocks:
        x = _dw_bn_relu(L, x, strides=strides)
        x = _conv_bn_relu(L, x, filters, 1)
    x = L.AveragePooling2D(pool_size=int(x.shape[1]))(x)
    x = L.Flatten()(x)
    out = L.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inp, out, name="mobilenet_v1_025")


def fc_autoencoder(seed: int = 0, width: int = 128, bottleneck: int = 8) -> Any:
    """MLPerf-Tiny anomaly detection autoencoder: 640 -> 4x128 -> 8 -> 4x128 -> 640, all Dense."""
    keras = _keras(seed)
    L = keras.layers
    inp = keras.Input((640,), name="features")
    x = inp
    for units in [width] * 4 + [bottleneck] + [width] * 4:
        x = L.Dense(units)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
    out = L.Dense(640, name="reconstruction")(x)
    return keras.Model(inp, out, name="fc_autoencoder")


BUILDERS: dict[str, Callable[..., Any]] = {
    "digits_cnn": digits_cnn,
    "mnist_cnn": mnist_cnn,
    "ds_cnn": ds_cnn,
    "resnet8": resnet8,
    "mobilenet_v1_025": mobilenet_v1_025,
    "fc_autoencoder": fc_autoencoder,
}


def build(name: str, seed: int = 0) -> Any:
    """Build a model by name (see ``BUILDERS``)."""
    from edgeq.errors import ModelError

    if name not in BUILDERS:
        raise ModelError(f"unknown builder '{name}'; choose one of {', '.join(BUILDERS)}")
    return BUILDERS[name](seed=seed)
