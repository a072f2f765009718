"""Fine-tuning weights onto a coarse grid with a straight-through estimator (STE).

Why: an int4, ternary or binary layer loses accuracy when its float weights are simply rounded.
Training with the rounded weights in the forward pass while the gradient updates float "master"
weights (the STE: d round(w)/dw taken as 1) lets the rest of the network adapt. At the end the
weights are snapped exactly onto the grid, so a later min/max quantizer (per-channel symmetric,
scale = max|w| / qmax) reproduces them without further rounding.

Grids, per output channel c of a kernel (last Keras axis; depthwise: every in*mult channel):
- ``int<k>``: ``s_c * round(w / s_c)`` clipped to ``[-(2^(k-1)-1), 2^(k-1)-1]``, ``s_c = max|w_c| / qmax``;
- ``ternary``: ``{-a_c, 0, +a_c}`` with threshold ``0.7 * mean|w_c|`` and ``a_c`` the mean of the
  magnitudes above it (Ternary Weight Networks);
- ``binary``: ``{-a_c, +a_c}`` with ``a_c = mean|w_c|`` (XNOR-Net / BinaryConnect scaling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeq.errors import QuantizeError

GRIDS = ("int2", "int3", "int4", "int5", "int6", "int7", "int8", "ternary", "binary")


def _channels_last_2d(w: np.ndarray, depthwise: bool) -> tuple[np.ndarray, tuple[int, ...]]:
    """View a Keras kernel as (elements per channel, channels)."""
    shape = w.shape
    if depthwise:  # (kh, kw, in, mult): every (in, mult) pair is an output channel
        return w.reshape(shape[0] * shape[1], -1), shape
    return w.reshape(-1, shape[-1]), shape


def snap_to_grid(w: np.ndarray, grid: str, *, depthwise: bool = False) -> np.ndarray:
    """Project a Keras kernel onto ``grid`` per output channel (numpy, float32 result)."""
    if grid not in GRIDS:
        raise QuantizeError(f"unknown weight grid '{grid}'; use one of {', '.join(GRIDS)}")
    m, shape = _channels_last_2d(np.asarray(w, dtype=np.float64), depthwise)
    absw = np.abs(m)
    if grid.startswith("int"):
        qmax = (1 << (int(grid[3:]) - 1)) - 1
        scale = np.where(absw.max(axis=0) > 0, absw.max(axis=0) / qmax, 1.0)
        q = np.clip(np.sign(m) * np.floor(absw / scale + 0.5), -qmax, qmax)
        out = q * scale
    elif grid == "ternary":
        delta = 0.7 * absw.mean(axis=0)
        keep = absw > delta
        count = np.maximum(keep.sum(axis=0), 1)
        alpha = (absw * keep).sum(axis=0) / count
        out = np.sign(m) * keep * alpha
    else:  # binary
        alpha = absw.mean(axis=0)
        out = np.where(m >= 0, 1.0, -1.0) * alpha
    return out.reshape(shape).astype(np.float32)


def _tf_grid(w: Any, grid: str, depthwise: bool, tf: Any) -> Any:
    """The same projection as :func:`snap_to_grid`, in TensorFlow ops (used every step)."""
    shape = tf.shape(w)
    if depthwise:
        m = tf.reshape(w, (shape[0] * shape[1], -1))
    else:
        m = tf.reshape(w, (-1, shape[-1]))
    absw = tf.abs(m)
    if grid.startswith("int"):
        qmax = float((1 << (int(grid[3:]) - 1)) - 1)
        amax = tf.reduce_max(absw, axis=0)
        scale = tf.where(amax > 0, amax / qmax, tf.ones_like(amax))
        q = tf.clip_by_value(tf.sign(m) * tf.floor(absw / scale + 0.5), -qmax, qmax)
        out = q * scale
    elif grid == "ternary":
        delta = 0.7 * tf.reduce_mean(absw, axis=0)
        keep = tf.cast(absw > delta, w.dtype)
        alpha = tf.reduce_sum(absw * keep, axis=0) / tf.maximum(tf.reduce_sum(keep, axis=0), 1.0)
        out = tf.sign(m) * keep * alpha
    else:
        alpha = tf.reduce_mean(absw, axis=0)
        out = tf.where(m >= 0, 1.0, -1.0) * alpha
    return tf.reshape(out, shape)


def is_depthwise(layer: Any) -> bool:
    return type(layer).__name__ == "DepthwiseConv2D"


def kernel_variable(layer: Any) -> Any:
    """The weight tensor of a Conv2D / DepthwiseConv2D / Dense layer."""
    if is_depthwise(layer):
        return layer.depthwise_kernel
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        raise QuantizeError(f"layer '{layer.name}' has no kernel to put on a grid")
    return kernel


def finetune_on_grid(
    model: Any,
    grids: dict[str, str],
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 3,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    loss: str = "sparse_categorical_crossentropy",
) -> Any:
    """Train ``model`` in place with the named layers' kernels on their grids (STE), then snap.

    ``grids`` maps Keras layer names to a grid name. Returns the model, whose named kernels now
    hold exactly-on-grid float values.
    """
    from edgeq.tfenv import import_tf, import_tf_keras

    tf = import_tf()
    keras = import_tf_keras()
    layers = _named_layers(model, grids)
    masters = {}
    for layer in layers:
        var = kernel_variable(layer)
        masters[var.ref()] = (tf.Variable(var.numpy(), trainable=False), grids[layer.name],
                              is_depthwise(layer), var)
    loss_fn = keras.losses.get(loss)
    opt = keras.optimizers.Adam(learning_rate)
    train_vars = list(model.trainable_variables)
    # the optimizer updates masters for gridded kernels and the variables themselves otherwise
    targets = [masters[v.ref()][0] if v.ref() in masters else v for v in train_vars]

    def project() -> None:
        for master, grid, dw, var in masters.values():
            var.assign(_tf_grid(master, grid, dw, tf))

    @tf.function
    def step(xb: Any, yb: Any) -> Any:
        project()
        with tf.GradientTape() as tape:
            pred = model(xb, training=True)
            value = tf.reduce_mean(loss_fn(yb, pred))
        grads = tape.gradient(value, train_vars)
        opt.apply_gradients(
            [(g, t) for g, t in zip(grads, targets, strict=True) if g is not None]
        )
        return value

    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    for _ in range(max(0, epochs)):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            step(tf.constant(x[idx]), tf.constant(y[idx]))
    for master, grid, dw, var in masters.values():
        var.assign(snap_to_grid(master.numpy(), grid, depthwise=dw))
    return model


def snap_layers(model: Any, grids: dict[str, str]) -> Any:
    """Snap the named kernels onto their grids without training (the no-fine-tune baseline)."""
    for layer in _named_layers(model, grids):
        var = kernel_variable(layer)
        var.assign(snap_to_grid(var.numpy(), grids[layer.name], depthwise=is_depthwise(layer)))
    return model


def _named_layers(model: Any, grids: dict[str, str]) -> Sequence[Any]:
    by_name = {layer.name: layer for layer in model.layers}
    missing = [n for n in grids if n not in by_name]
    if missing:
        raise QuantizeError(
            f"model has no layer named {', '.join(missing)}; use names from model.summary()"
        )
    for name, grid in grids.items():
        if grid not in GRIDS:
            raise QuantizeError(f"unknown weight grid '{grid}' for '{name}'; use one of "
                                f"{', '.join(GRIDS)}")
    return [by_name[n] for n in grids]
