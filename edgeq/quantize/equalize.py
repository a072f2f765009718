"""Cross-layer equalization and bias correction (Nagel et al., "Data-Free Quantization", 2019).

Per-tensor int8 weights give every channel of a layer one scale; when channel ranges differ
by 100x (common after BN folding, worst in depthwise layers) small channels round to zero.
ReLU is positively homogeneous — ``relu(x / s) = relu(x) / s`` — so a layer's output channel
``i`` can be divided by ``s_i`` and the next layer's input channel ``i`` multiplied by it
without changing the float function. Choosing ``s_i = sqrt(r1_i / r2_i)`` (``r`` = per-channel
weight ranges) gives both layers the same range per channel. Bias correction then removes the
*mean* error int8 weights add to each output channel: ``b -= E[(W_q - W) x]``, measured on
calibration samples.

Both only change float weights before conversion: the result is a standard int8 .tflite
(bit-exact on TFLM and edgeq-rt as any other). Works on single-path tf-keras models (each layer
has one input); BatchNormalization is folded into the conv/dense before it first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.errors import QuantizeError

log = logging.getLogger(__name__)

WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")
# layers a positive per-channel scale passes through unchanged (channels last, no mixing)
SCALE_TRANSPARENT = ("MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
                     "GlobalMaxPooling2D", "ZeroPadding2D", "Dropout", "Flatten")
CLE_ITERATIONS = 8


@dataclass
class EqualizeReport:
    """What was changed, for the manifest and ``edgeq analyze``."""

    folded_batchnorm: list[str] = field(default_factory=list)
    equalized_pairs: list[tuple[str, str]] = field(default_factory=list)
    spread_before: dict[str, float] = field(default_factory=dict)
    spread_after: dict[str, float] = field(default_factory=dict)
    bias_corrected: dict[str, float] = field(default_factory=dict)  # layer -> mean |shift|
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "folded_batchnorm": self.folded_batchnorm,
            "equalized_pairs": [list(p) for p in self.equalized_pairs],
            "weight_spread_before": self.spread_before,
            "weight_spread_after": self.spread_after,
            "bias_corrected": self.bias_corrected,
            "skipped": self.skipped,
        }


# --- rebuilding the model ------------------------------------------------------------------------


def _kind(layer: Any) -> str:
    return type(layer).__name__


def _chain(model: Any) -> list[Any]:
    """The layers of a single-path model in order; refuses branches with a clear error."""
    layers = [lyr for lyr in model.layers if _kind(lyr) != "InputLayer"]
    for lyr in layers:
        if len(lyr._inbound_nodes) != 1 or isinstance(lyr.input, list):
            raise QuantizeError(
                f"layer '{lyr.name}' has several inputs or uses; --equalize/--bias-correction "
                "support single-path models only (no Add/Concatenate); drop the option"
            )
    return layers


def _activation_name(layer: Any) -> str:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", "linear") if act is not None else "linear"


def fold_batchnorm(model: Any) -> tuple[Any, list[str]]:
    """A copy of ``model`` with every BN after a conv/dense folded into it, activations split
    out of the weighted layers (so each weighted layer is linear and has a bias)."""
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    if type(model).__module__.split(".")[0] == "keras":
        raise QuantizeError("--equalize/--bias-correction need a tf-keras model (.h5 or "
                            "SavedModel); this is a Keras 3 model")
    layers = _chain(model)
    folded: list[str] = []
    x = inp = keras.Input(model.input_shape[1:], name=model.inputs[0].name.split(":")[0])
    k = 0
    while k < len(layers):
        lyr = layers[k]
        kind = _kind(lyr)
        if kind not in WEIGHTED:
            x = type(lyr).from_config(lyr.get_config())(x)
            x_layer = x._keras_history.layer
            if lyr.get_weights():
                x_layer.set_weights(lyr.get_weights())
            k += 1
            continue
        w = lyr.get_weights()
        kernel = w[0]
        bias = w[1] if getattr(lyr, "use_bias", False) else np.zeros(_out_channels(kind, kernel),
                                                                        np.float32)
        act = _activation_name(lyr)
        nxt = layers[k + 1] if k + 1 < len(layers) else None
        if nxt is not None and _kind(nxt) == "BatchNormalization" and act == "linear":
            gamma, beta, mean, var = _bn_params(nxt)
            g = gamma / np.sqrt(var + nxt.epsilon)
            kernel = kernel * _channel_shape(kind, kernel, g)
            bias = (bias - mean) * g + beta
            folded.append(nxt.name)
            k += 1
        cfg = lyr.get_config()
        cfg.update(use_bias=True, activation="linear")
        for key in ("bias_initializer", "bias_regularizer", "bias_constraint"):
            cfg.pop(key, None)
        new = type(lyr).from_config(cfg)
        x = new(x)
        new.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
        if act != "linear":
            x = keras.layers.Activation(act, name=f"{lyr.name}_act")(x)
        k += 1
    return keras.Model(inp, x, name=model.name), folded


def _bn_params(bn: Any) -> tuple[np.ndarray, ...]:
    w = bn.get_weights()
    n = w[-1].shape[0]
    gamma = w.pop(0) if bn.scale else np.ones(n, np.float32)
    beta = w.pop(0) if bn.center else np.zeros(n, np.float32)
    mean, var = w
    return gamma, beta, mean, var


def _out_channels(kind: str, kernel: np.ndarray) -> int:
    if kind == "DepthwiseConv2D":
        return kernel.shape[2] * kernel.shape[3]
    return kernel.shape[-1]


def _channel_shape(kind: str, kernel: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v`` (one value per output channel) shaped to broadcast over ``kernel``."""
    if kind == "DepthwiseConv2D":
        return v.reshape(1, 1, kernel.shape[2], kernel.shape[3])
    return v.reshape((1,) * (kernel.ndim - 1) + (-1,))


# --- cross-layer equalization --------------------------------------------------------------------


def _out_range(kind: str, kernel: np.ndarray) -> np.ndarray:
    if kind == "DepthwiseConv2D":
        return np.abs(kernel).max(axis=(0, 1)).reshape(-1)
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)


def _in_range(kind: str, kernel: np.ndarray, channels: int) -> np.ndarray:
    """Per input channel max |w| of the consumer (Dense after Flatten: rows c, c+C, ...)."""
    if kind == "DepthwiseConv2D":
        return np.abs(kernel).max(axis=(0, 1, 3))
    if kind == "Conv2D":
        return np.abs(kernel).max(axis=(0, 1, 3))
    rows = np.abs(kernel).max(axis=1)
    return rows.reshape(-1, channels).max(axis=0)


def _scale_in(kind: str, kernel: np.ndarray, s: np.ndarray) -> np.ndarray:
    if kind in ("DepthwiseConv2D", "Conv2D"):
        return kernel * s.reshape(1, 1, -1, 1)
    reps = kernel.shape[0] // s.size
    return kernel * np.tile(s, reps).reshape(-1, 1)


def _pairs(layers: list[Any]) -> tuple[list[tuple[Any, Any]], list[str]]:
    """(producer, consumer) weighted layers joined only by ReLU and scale-transparent layers."""
    pairs, skipped = [], []
    for i, lyr in enumerate(layers):
        if _kind(lyr) not in WEIGHTED:
            continue
        if _kind(lyr) == "DepthwiseConv2D" and lyr.get_weights()[0].shape[3] != 1:
            skipped.append(f"{lyr.name}: depth multiplier > 1")
            continue
        for nxt in layers[i + 1:]:
            kind = _kind(nxt)
            if kind in WEIGHTED:
                pairs.append((lyr, nxt))
                break
            if kind == "ReLU" and nxt.max_value is None and not nxt.negative_slope and \
                    not nxt.threshold:
                continue
            if kind == "Activation" and _activation_name(nxt) in ("relu", "linear"):
                continue
            if kind in SCALE_TRANSPARENT:
                continue
            skipped.append(f"{lyr.name} -> {nxt.name}: {kind} is not scale-equivariant "
                           "(e.g. ReLU6); not equalized")
            break
    return pairs, skipped


def spread(kind: str, kernel: np.ndarray) -> float:
    """max/min of the per-output-channel weight ranges (what per-tensor scales suffer from)."""
    r = _out_range(kind, kernel)
    r = r[r > 0]
    return float(r.max() / r.min()) if r.size else 1.0


def equalize(model: Any, iterations: int = CLE_ITERATIONS) -> tuple[Any, EqualizeReport]:
    """Fold BN, then equalize every ReLU-joined pair of weighted layers (same float function)."""
    folded_model, folded = fold_batchnorm(model)
    report = EqualizeReport(folded_batchnorm=folded)
    layers = _chain(folded_model)
    pairs, report.skipped = _pairs(layers)
    for lyr in layers:
        if _kind(lyr) in WEIGHTED:
            report.spread_before[lyr.name] = spread(_kind(lyr), lyr.get_weights()[0])
    for _ in range(iterations):
        for a, b in pairs:
            wa, ba = a.get_weights()
            wb, bb = b.get_weights()
            ka, kb = _kind(a), _kind(b)
            r1 = _out_range(ka, wa)
            r2 = _in_range(kb, wb, r1.size)
            ok = (r1 > 0) & (r2 > 0)
            s = np.ones_like(r1)
            s[ok] = np.sqrt(r1[ok] / r2[ok])
            a.set_weights([wa / _channel_shape(ka, wa, s), ba / s])
            if kb == "DepthwiseConv2D":  # the consumer's bias is per output = per input channel
                b.set_weights([_scale_in(kb, wb, s), bb])
            else:
                b.set_weights([_scale_in(kb, wb, s), bb])
    report.equalized_pairs = [(a.name, b.name) for a, b in pairs]
    for lyr in layers:
        if _kind(lyr) in WEIGHTED:
            report.spread_after[lyr.name] = spread(_kind(lyr), lyr.get_weights()[0])
    log.info("equalized %d pairs, folded %d BN layers", len(pairs), len(folded))
    return folded_model, report


# --- bias correction -------------------------------------------------------------------------------


def fake_quant_weights(kind: str, kernel: np.ndarray, per_channel: bool = True,
                       bits: int = 8) -> np.ndarray:
    """Symmetric weights as the converter quantizes them: [-127, 127] per channel or tensor."""
    qmax = (1 << (bits - 1)) - 1
    if per_channel:
        r = _out_range(kind, kernel)
        scale = _channel_shape(kind, kernel, np.where(r > 0, r / qmax, 1.0))
    else:
        m = float(np.abs(kernel).max())
        scale = np.float64(m / qmax if m > 0 else 1.0)
    return (np.clip(np.round(kernel / scale), -qmax, qmax) * scale).astype(np.float32)


def correct_bias(
    model: Any, x: np.ndarray, *, per_channel: bool = True, report: EqualizeReport | None = None,
    batch: int = 64,
) -> tuple[Any, EqualizeReport]:
    """Subtract from each weighted layer's bias the mean error int8 weights add to its output.

    Works on a BN-folded model (:func:`fold_batchnorm` is applied if needed); the layer inputs
    are the float model's own activations on ``x``.
    """
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    if any(_kind(lyr) == "BatchNormalization" for lyr in model.layers) or any(
            _kind(lyr) in WEIGHTED and not lyr.use_bias for lyr in model.layers):
        model, folded = fold_batchnorm(model)
        report = report or EqualizeReport(folded_batchnorm=folded)
    report = report or EqualizeReport()
    x = np.asarray(x, np.float32)
    for lyr in _chain(model):
        kind = _kind(lyr)
        if kind not in WEIGHTED:
            continue
        feed = keras.Model(model.inputs, lyr.input)
        inputs = feed.predict(x, batch_size=batch, verbose=0)
        w, b = lyr.get_weights()
        exact = lyr(inputs).numpy()
        lyr.set_weights([fake_quant_weights(kind, w, per_channel), b])
        rounded = lyr(inputs).numpy()
        shift = (rounded - exact).reshape(-1, exact.shape[-1]).mean(axis=0)
        lyr.set_weights([w, (b - shift).astype(np.float32)])
        report.bias_corrected[lyr.name] = float(np.abs(shift).mean())
    return model, report
