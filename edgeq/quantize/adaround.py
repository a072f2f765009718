"""AdaRound (Nagel et al., 2020): learn whether each weight rounds up or down.

Rounding every weight to the nearest grid point minimises the error of each weight alone, not
of the layer's output: at 4 bits the per-weight errors add up coherently and the output drifts.
AdaRound keeps the grid (per-channel symmetric, ``s_c = max|w_c| / qmax``) and learns, per weight,
a soft choice ``h(V) in [0, 1]`` between ``floor(w / s)`` and ``floor(w / s) + 1`` that minimises
``|| W x - W~ x ||^2`` on calibration inputs ``x``, with a regulariser that pushes every ``h`` to
0 or 1 as training goes on (its exponent anneals from 20 to 2). The result is snapped exactly
onto the grid, so any later symmetric min/max quantizer reproduces it without re-rounding (the
largest weight of each channel keeps ``+-qmax``, hence the same scale).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeq.errors import QuantizeError

log = logging.getLogger(__name__)

ZETA, GAMMA = 1.1, -0.1  # rectified sigmoid stretch
SUPPORTED = ("Conv2D", "Dense", "DepthwiseConv2D")


@dataclass
class AdaRoundResult:
    kernel: np.ndarray  # on the grid, float32
    error_nearest: float  # mean squared layer-output error of round-to-nearest
    error_adaround: float  # same, with the learned rounding
    flipped: float  # fraction of weights rounded differently from nearest


def _grid(kernel: np.ndarray, depthwise: bool, qmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel scale (broadcastable) and ``kernel / scale``."""
    k = kernel.astype(np.float64)
    if depthwise:
        amax = np.abs(k).max(axis=(0, 1), keepdims=True)
    else:
        amax = np.abs(k).reshape(-1, k.shape[-1]).max(axis=0).reshape((1,) * (k.ndim - 1) + (-1,))
    scale = np.where(amax > 0, amax / qmax, 1.0)
    return scale, k / scale


def _op(layer: Any, tf: Any) -> Any:
    """The layer's linear map ``(x, kernel) -> y`` as TF ops (no bias, no activation)."""
    kind = type(layer).__name__
    if kind == "Dense":
        return lambda x, w: tf.tensordot(x, w, axes=1)
    if kind == "Conv2D":
        return lambda x, w: layer.convolution_op(x, w)
    if kind == "DepthwiseConv2D":
        strides = (1, *layer.strides, 1)
        return lambda x, w: tf.nn.depthwise_conv2d(
            x, w, strides=strides, padding=layer.padding.upper(), dilations=layer.dilation_rate)
    raise QuantizeError(f"AdaRound supports {', '.join(SUPPORTED)}, not {kind}")


def adaround_layer(
    layer: Any,
    inputs: np.ndarray,
    *,
    bits: int = 4,
    iterations: int = 600,
    batch: int = 32,
    learning_rate: float = 1e-2,
    reg_weight: float = 0.01,
    seed: int = 0,
) -> AdaRoundResult:
    """Learned rounding of ``layer``'s kernel onto the ``bits``-bit symmetric per-channel grid."""
    from edgeq.tfenv import import_tf

    tf = import_tf()
    kind = type(layer).__name__
    if kind not in SUPPORTED:
        raise QuantizeError(f"AdaRound supports {', '.join(SUPPORTED)}, not {kind}")
    qmax = (1 << (bits - 1)) - 1
    kernel = layer.get_weights()[0]
    scale, ws = _grid(kernel, kind == "DepthwiseConv2D", qmax)
    base = np.floor(ws)
    rest = ws - base
    nearest = np.clip(np.round(ws), -qmax, qmax)
    # the largest weight of each channel stays at +-qmax so the scale is reproduced
    pinned = np.isclose(np.abs(ws), qmax)
    init = np.clip(rest, 0.01, 0.99)
    v = tf.Variable(-np.log((ZETA - GAMMA) / (init - GAMMA) - 1.0), dtype=tf.float32)
    base_t = tf.constant(base, tf.float32)
    scale_t = tf.constant(scale, tf.float32)
    op = _op(layer, tf)
    x_all = np.asarray(inputs, np.float32)
    w_float = tf.constant(kernel, tf.float32)
    opt = tf.keras.optimizers.Adam(learning_rate)
    rng = np.random.default_rng(seed)
    warmup = int(0.2 * iterations)

    def soft(vv: Any) -> Any:
        return tf.clip_by_value(tf.sigmoid(vv) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)

    @tf.function
    def step(x: Any, beta: Any, lam: Any) -> Any:
        target = op(x, w_float)
        with tf.GradientTape() as tape:
            h = soft(v)
            w_q = tf.clip_by_value(base_t + h, -qmax, qmax) * scale_t
            rec = tf.reduce_mean(tf.square(op(x, w_q) - target))
            reg = tf.reduce_mean(1.0 - tf.pow(tf.abs(2.0 * h - 1.0), beta))
            loss = rec + lam * reg
        opt.apply_gradients([(tape.gradient(loss, v), v)])
        return rec

    scale_rec = float(np.mean(np.square(op(x_all[:batch], w_float).numpy()))) or 1.0
    for it in range(iterations):
        idx = rng.choice(len(x_all), size=min(batch, len(x_all)), replace=False)
        frac = max(0.0, (it - warmup) / max(1, iterations - warmup))
        beta = 20.0 - 18.0 * frac
        lam = 0.0 if it < warmup else reg_weight * scale_rec
        step(tf.constant(x_all[idx]), tf.constant(beta, tf.float32), tf.constant(lam, tf.float32))
    hard = (soft(v).numpy() >= 0.5).astype(np.float64)
    q = np.clip(base + hard, -qmax, qmax)
    q = np.where(pinned, nearest, q)
    rounded = (q * scale).astype(np.float32)
    near = (nearest * scale).astype(np.float32)
    err_n = _output_error(op, x_all, kernel, near, tf)
    err_a = _output_error(op, x_all, kernel, rounded, tf)
    if err_a > err_n:  # never worse than nearest on the data it saw
        rounded, err_a, q = near, err_n, nearest
    log.info("adaround %s: output MSE nearest %.3g -> %.3g", layer.name, err_n, err_a)
    return AdaRoundResult(rounded, err_n, err_a, float(np.mean(q != nearest)))


def _output_error(op: Any, x: np.ndarray, w: np.ndarray, w_q: np.ndarray, tf: Any,
                  batch: int = 64) -> float:
    total, count = 0.0, 0
    for k in range(0, len(x), batch):
        xb = tf.constant(x[k:k + batch])
        d = op(xb, tf.constant(w_q)).numpy() - op(xb, tf.constant(w)).numpy()
        total += float(np.sum(np.square(d.astype(np.float64))))
        count += d.size
    return total / max(count, 1)


def layer_inputs(model: Any, layer_name: str, x: np.ndarray) -> np.ndarray:
    """The float activations ``model`` feeds into ``layer_name`` for samples ``x``."""
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    layer = model.get_layer(layer_name)
    feed = keras.Model(model.inputs, layer.input)
    return np.asarray(feed.predict(np.asarray(x, np.float32), batch_size=64, verbose=0))


def adaround_model(
    model: Any, layer_names: list[str], x: np.ndarray, *, bits: int = 4, iterations: int = 600,
) -> dict[str, AdaRoundResult]:
    """AdaRound each named layer in place (kernel replaced by its on-grid rounding)."""
    results = {}
    for name in layer_names:
        layer = model.get_layer(name)
        res = adaround_layer(layer, layer_inputs(model, name, x), bits=bits,
                             iterations=iterations)
        layer.set_weights([res.kernel, *layer.get_weights()[1:]])
        results[name] = res
    return results
