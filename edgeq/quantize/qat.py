"""Quantization-aware training: recover the accuracy PTQ loses by training with fake quantization.

tf-keras models go straight through TF-MOT (``quantize_model``, or ``quantize_annotate_layer`` +
``quantize_apply`` for a subset of layers). TF-MOT rejects Keras 3 models (its issues #1119,
#1270), so a Keras 3 model is first rebuilt as the same network in tf-keras — layer by layer,
weights copied, outputs checked equal — for the layers small CNNs use; anything else is refused
by name rather than guessed at.

``rounding="stochastic"`` swaps each weight quantizer for one that, while training, rounds up
with probability equal to the fractional part (unbiased: the expected fake-quantized weight is
the weight) and passes gradients straight through. Inference and export use nearest rounding,
so the converter sees ordinary FakeQuant ranges.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.errors import QuantizeError, first_line

ROUNDINGS = ("nearest", "stochastic")
EQUIVALENCE_TOL = 1e-5

SUPPORTED_KERAS3_LAYERS = (
    "InputLayer", "Conv1D", "Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D",
    "Dense", "BatchNormalization", "ReLU", "LeakyReLU", "Activation", "Softmax", "MaxPooling1D",
    "AveragePooling1D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling1D",
    "GlobalMaxPooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "UpSampling1D",
    "UpSampling2D", "Add", "Concatenate", "Flatten", "Reshape", "Dropout", "ZeroPadding1D",
    "ZeroPadding2D", "LSTM", "GRU",
)


def whole_message(exc: BaseException, limit: int = 2000) -> str:
    """An exception's whole text on one line (TF-MOT's and the converter's messages state the
    problem and their own advice in full sentences; cutting them loses the point)."""
    text = " ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())
    if not text:
        return type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- Keras 3 -> tf-keras ---------------------------------------------------------------------------


def _activation_name(fn: Any) -> str:
    import keras

    name = keras.activations.serialize(fn)
    if isinstance(name, dict):
        name = name.get("config", {}).get("name") or name.get("class_name", "?")
    return str(name)


def check_keras3_supported(model: Any) -> None:
    """Refuse, by name, the first layer the tf-keras rebuild does not know."""
    for layer in model.layers:
        cls = type(layer).__name__
        if cls not in SUPPORTED_KERAS3_LAYERS:
            raise QuantizeError(
                f"QAT cannot rebuild Keras 3 layer '{layer.name}' ({cls}) in tf-keras; supported: "
                f"{', '.join(SUPPORTED_KERAS3_LAYERS)}; replace it or quantize with PTQ instead"
            )


def _tf_keras_layer(layer: Any, tk: Any) -> Any:
    """The tf-keras twin of one Keras 3 layer (same config, weights copied later)."""
    cls = type(layer).__name__
    L = tk.layers
    name = layer.name
    act = _activation_name(layer.activation) if hasattr(layer, "activation") else None
    if cls == "Conv1D":
        return L.Conv1D(layer.filters, layer.kernel_size, strides=layer.strides,
                        padding=layer.padding, data_format=layer.data_format,
                        dilation_rate=layer.dilation_rate, groups=layer.groups,
                        activation=act, use_bias=layer.use_bias, name=name)
    if cls == "Conv2DTranspose":
        return L.Conv2DTranspose(layer.filters, layer.kernel_size, strides=layer.strides,
                                 padding=layer.padding, output_padding=layer.output_padding,
                                 data_format=layer.data_format,
                                 dilation_rate=layer.dilation_rate, activation=act,
                                 use_bias=layer.use_bias, name=name)
    if cls == "LeakyReLU":
        return L.LeakyReLU(alpha=layer.negative_slope, name=name)
    if cls == "Softmax":
        return L.Softmax(axis=layer.axis, name=name)
    if cls in ("MaxPooling1D", "AveragePooling1D"):
        return getattr(L, cls)(layer.pool_size, strides=layer.strides, padding=layer.padding,
                               data_format=layer.data_format, name=name)
    if cls in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
        return getattr(L, cls)(data_format=layer.data_format, keepdims=layer.keepdims, name=name)
    if cls == "UpSampling1D":
        return L.UpSampling1D(layer.size, name=name)
    if cls == "UpSampling2D":
        return L.UpSampling2D(layer.size, data_format=layer.data_format,
                              interpolation=layer.interpolation, name=name)
    if cls == "ZeroPadding1D":
        return L.ZeroPadding1D(layer.padding, name=name)
    if cls == "Conv2D":
        return L.Conv2D(layer.filters, layer.kernel_size, strides=layer.strides,
                        padding=layer.padding, data_format=layer.data_format,
                        dilation_rate=layer.dilation_rate, groups=layer.groups,
                        activation=act, use_bias=layer.use_bias, name=name)
    if cls == "DepthwiseConv2D":
        return L.DepthwiseConv2D(layer.kernel_size, strides=layer.strides, padding=layer.padding,
                                 depth_multiplier=layer.depth_multiplier,
                                 data_format=layer.data_format, dilation_rate=layer.dilation_rate,
                                 activation=act, use_bias=layer.use_bias, name=name)
    if cls == "SeparableConv2D":
        return L.SeparableConv2D(layer.filters, layer.kernel_size, strides=layer.strides,
                                 padding=layer.padding, data_format=layer.data_format,
                                 dilation_rate=layer.dilation_rate,
                                 depth_multiplier=layer.depth_multiplier, activation=act,
                                 use_bias=layer.use_bias, name=name)
    if cls == "Dense":
        return L.Dense(layer.units, activation=act, use_bias=layer.use_bias, name=name)
    if cls == "BatchNormalization":
        return L.BatchNormalization(axis=layer.axis, momentum=layer.momentum,
                                    epsilon=layer.epsilon, center=layer.center,
                                    scale=layer.scale, name=name)
    if cls == "ReLU":
        return L.ReLU(max_value=layer.max_value, negative_slope=layer.negative_slope,
                      threshold=layer.threshold, name=name)
    if cls == "Activation":
        if act == "relu6":
            return L.ReLU(max_value=6.0, name=name)
        return L.Activation(act, name=name)
    if cls in ("MaxPooling2D", "AveragePooling2D"):
        return getattr(L, cls)(layer.pool_size, strides=layer.strides, padding=layer.padding,
                               data_format=layer.data_format, name=name)
    if cls in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return getattr(L, cls)(data_format=layer.data_format, keepdims=layer.keepdims, name=name)
    if cls == "Add":
        return L.Add(name=name)
    if cls == "Concatenate":
        return L.Concatenate(axis=layer.axis, name=name)
    if cls == "Flatten":
        return L.Flatten(data_format=layer.data_format, name=name)
    if cls == "Reshape":
        return L.Reshape(layer.target_shape, name=name)
    if cls == "Dropout":
        return L.Dropout(layer.rate, name=name)
    if cls == "ZeroPadding2D":
        return L.ZeroPadding2D(layer.padding, data_format=layer.data_format, name=name)
    if cls in ("LSTM", "GRU"):
        extra = {"reset_after": layer.reset_after} if cls == "GRU" else {}
        return getattr(L, cls)(
            layer.units, activation=act,
            recurrent_activation=_activation_name(layer.recurrent_activation),
            use_bias=layer.use_bias, return_sequences=layer.return_sequences,
            return_state=layer.return_state, go_backwards=layer.go_backwards,
            stateful=layer.stateful, unroll=layer.unroll, name=name, **extra)
    raise AssertionError(cls)  # pragma: no cover - guarded by SUPPORTED_KERAS3_LAYERS


def keras3_to_tf_keras(model: Any, check_inputs: np.ndarray | None = None) -> Any:
    """Rebuild a Keras 3 Sequential/Functional model in tf-keras and prove it computes the same.

    Raises ``QuantizeError`` naming the first unsupported layer, or when outputs differ by more
    than 1e-5 on ``check_inputs`` (random inputs when none are given).
    """
    import keras

    from edgeq.tfenv import import_tf_keras

    tk = import_tf_keras()
    check_keras3_supported(model)
    twins: dict[int, Any] = {}

    def twin(layer: Any) -> Any:
        if id(layer) not in twins:
            twins[id(layer)] = _tf_keras_layer(layer, tk)
        return twins[id(layer)]

    if isinstance(model, keras.Sequential):
        shape = model.inputs[0].shape if model.inputs else model.input_shape
        inp = tk.Input(tuple(shape[1:]), name=model.layers[0].name + "_input" if model.layers
                       else "input")
        x = inp
        for layer in model.layers:
            if type(layer).__name__ != "InputLayer":
                x = twin(layer)(x)
        rebuilt = tk.Model(inp, x, name=model.name)
    else:
        mapped: dict[int, Any] = {}
        for t in model.inputs:
            mapped[id(t)] = tk.Input(tuple(t.shape[1:]), name=t._keras_history[0].name)

        def convert(t: Any) -> Any:
            if id(t) in mapped:
                return mapped[id(t)]
            op, node_index, _ = t._keras_history
            node = op._inbound_nodes[node_index]
            args = keras.tree.map_structure(
                lambda a: convert(a) if isinstance(a, keras.KerasTensor) else a,
                node.arguments.args,
            )
            out = twin(op)(*args)
            mapped[id(t)] = out
            return out

        outs = [convert(t) for t in model.outputs]
        rebuilt = tk.Model([mapped[id(t)] for t in model.inputs],
                           outs if len(outs) > 1 else outs[0], name=model.name)
    for layer in model.layers:
        if id(layer) in twins and layer.weights:
            twins[id(layer)].set_weights(layer.get_weights())
    _check_same(model, rebuilt, check_inputs)
    return rebuilt


def _check_same(k3: Any, tk_model: Any, x: np.ndarray | None) -> None:
    """Every output of the rebuild equals the Keras 3 one (random inputs in [-1, 1] unless
    ``x`` is given for a one-input model)."""
    if x is None or len(k3.inputs) > 1:
        rng = np.random.default_rng(0)
        xs = [rng.uniform(-1, 1, (4, *(int(d) for d in t.shape[1:]))).astype(np.float32)
              for t in k3.inputs]
        x = xs[0] if len(xs) == 1 else xs

    def outputs(model: Any) -> list[np.ndarray]:
        y = model(x, training=False)
        return [np.asarray(t) for t in (y if isinstance(y, list | tuple) else [y])]

    a, b = outputs(k3), outputs(tk_model)
    diff = 0.0 if len(a) == len(b) else math.inf
    for ya, yb in zip(a, b, strict=False):
        diff = max(diff, float(np.max(np.abs(ya - yb))) if ya.shape == yb.shape else math.inf)
    if not diff <= EQUIVALENCE_TOL:
        raise QuantizeError(
            f"the tf-keras rebuild of Keras 3 model '{k3.name}' differs by {diff:.3g} (> 1e-5); "
            "report the model, or quantize it with PTQ"
        )


def as_tf_keras(model: Any, kind: str, check_inputs: np.ndarray | None = None) -> Any:
    """The tf-keras model TF-MOT needs, from a LoadedModel kind (``tf_keras``/``keras3``)."""
    if kind == "tflite":
        raise QuantizeError(
            "QAT needs the float Keras model, not a .tflite; pass the .keras/.h5 it came from"
        )
    if kind == "keras3":
        return keras3_to_tf_keras(model, check_inputs)
    if kind == "tf_keras":
        return model
    raise QuantizeError(f"unknown model kind '{kind}'; pass a .keras, .h5 or SavedModel")


# --- stochastic rounding ---------------------------------------------------------------------------


def stochastic_round(x: Any, seed: Any = None) -> Any:
    """floor(x + u), u ~ U[0, 1): rounds up with probability frac(x), so E[result] = x."""
    from edgeq.tfenv import import_tf

    tf = import_tf()
    u = tf.random.uniform(tf.shape(x), 0.0, 1.0, dtype=x.dtype, seed=seed)
    return tf.floor(x + u)


def _make_stochastic_quantizer_class() -> type:
    """Defined lazily: its base class lives in TF-MOT, which imports TensorFlow."""
    from edgeq.tfenv import import_tf

    tf = import_tf()
    import tensorflow_model_optimization as tfmot

    Quantizer = tfmot.quantization.keras.quantizers.Quantizer

    class StochasticRoundingQuantizer(Quantizer):
        """Symmetric weight fake-quant with stochastic rounding while training.

        Wraps TF-MOT's weight quantizer: same range variables (so export sees the last ranges)
        and the same nearest-rounding FakeQuant at inference; only training differs.
        """

        def __init__(self, base: Any) -> None:
            self.base = base
            self.num_bits = int(getattr(base, "num_bits", 8))
            self.per_axis = bool(getattr(base, "per_axis", False))
            self.narrow_range = bool(getattr(base, "narrow_range", True))

        def build(self, tensor_shape: Any, name: str, layer: Any) -> Any:
            return self.base.build(tensor_shape, name, layer)

        def __call__(self, inputs: Any, training: Any, weights: Any, **kwargs: Any) -> Any:
            if not training:
                return self.base(inputs, False, weights, **kwargs)
            qmax = float((1 << (self.num_bits - 1)) - 1)
            qmin = -qmax if self.narrow_range else -qmax - 1.0
            if self.per_axis and inputs.shape.rank >= 2:
                absmax = tf.reduce_max(tf.abs(inputs), axis=list(range(inputs.shape.rank - 1)))
            else:
                absmax = tf.reduce_max(tf.abs(inputs))
            absmax = tf.maximum(absmax, 1e-8)
            lo = weights["min_var"].assign(tf.broadcast_to(-absmax, tf.shape(weights["min_var"])))
            hi = weights["max_var"].assign(tf.broadcast_to(absmax, tf.shape(weights["max_var"])))
            with tf.control_dependencies([lo, hi]):
                scale = absmax / qmax
                q = tf.clip_by_value(stochastic_round(inputs / scale), qmin, qmax)
                fake = q * scale
            # straight-through: forward is the rounded weight, gradient is the identity
            return inputs + tf.stop_gradient(fake - inputs)

        def get_config(self) -> dict[str, Any]:
            return {"base": tf.keras.utils.serialize_keras_object(self.base)}

    return StochasticRoundingQuantizer


_STOCHASTIC_CLS: type | None = None


def stochastic_quantizer(base: Any) -> Any:
    global _STOCHASTIC_CLS
    if _STOCHASTIC_CLS is None:
        _STOCHASTIC_CLS = _make_stochastic_quantizer_class()
    return _STOCHASTIC_CLS(base)


def _stochastic_scheme() -> Any:
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_scheme,
    )

    QuantizeRegistry = tfmot.quantization.keras.QuantizeRegistry

    class StochasticRegistry(QuantizeRegistry):
        """The default 8-bit registry with every weight quantizer made stochastic."""

        def __init__(self, base: Any) -> None:
            self.base = base

        def supports(self, layer: Any) -> bool:
            return self.base.supports(layer)

        def get_quantize_config(self, layer: Any) -> Any:
            cfg = self.base.get_quantize_config(layer)
            if hasattr(cfg, "weight_quantizer"):
                cfg.weight_quantizer = stochastic_quantizer(cfg.weight_quantizer)
            return cfg

    class StochasticScheme(default_8bit_quantize_scheme.Default8BitQuantizeScheme):
        def get_quantize_registry(self) -> Any:
            return StochasticRegistry(super().get_quantize_registry())

    return StochasticScheme()


# --- building, training, converting ----------------------------------------------------------------


# Layers TF-MOT 0.8's default registry leaves out (commented out there) although the converter
# handles them: each gets the config of its 2-D sibling (class, weights, activations, quantize
# the output). Conv1D gets per-tensor weights (as Dense): the converter inserts the ExpandDims
# that makes it a CONV_2D after the fake quantization, and a per-axis range on the 3-D kernel's
# axis 2 then fails to convert (measured: "tfl.reshape ... cast compatible").
_EXTRA_CONFIGS = {
    "Conv1D": ("Default8BitQuantizeConfig", ["kernel"], ["activation"], False),
    "MaxPooling1D": ("Default8BitQuantizeConfig", [], [], False),  # as MaxPooling2D
    "UpSampling1D": ("Default8BitQuantizeConfig", [], [], True),  # as UpSampling2D
}


def _annotate(q: Any, layer: Any, wanted: bool) -> Any:
    """TF-MOT's annotation of one layer (``_EXTRA_CONFIGS`` for the layers it leaves out)."""
    cls = type(layer).__name__
    if not wanted or cls == "InputLayer":
        return layer
    if cls in _EXTRA_CONFIGS:
        from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
            default_8bit_quantize_registry as registry,
        )

        config_cls, weights, activations, output = _EXTRA_CONFIGS[cls]
        config = getattr(registry, config_cls)(weights, activations, output)
        return q.quantize_annotate_layer(layer, quantize_config=config)
    return q.quantize_annotate_layer(layer)


def qat_model(model: Any, rounding: str = "nearest", layers: Sequence[str] | None = None) -> Any:
    """Fake-quantized copy of a tf-keras model (all layers, or only ``layers`` by name)."""
    if rounding not in ROUNDINGS:
        raise QuantizeError(f"unknown rounding '{rounding}'; use nearest or stochastic")
    from edgeq.tfenv import import_tf

    import_tf()
    import tensorflow_model_optimization as tfmot

    q = tfmot.quantization.keras
    scheme = _stochastic_scheme() if rounding == "stochastic" else None
    try:
        names = {layer.name for layer in model.layers}
        if layers:
            missing = [n for n in layers if n not in names]
            if missing:
                raise QuantizeError(
                    f"no layer named '{missing[0]}' in the model; pick from {', '.join(sorted(names))}"
                )
        wanted = set(layers) if layers else names
        extra = [layer for layer in model.layers if type(layer).__name__ in _EXTRA_CONFIGS]
        if layers or extra:
            import tf_keras

            annotated = tf_keras.models.clone_model(
                model, clone_function=lambda layer: _annotate(q, layer, layer.name in wanted))
        else:
            annotated = q.quantize_annotate_model(model)
        with q.quantize_scope():
            return q.quantize_apply(annotated, scheme) if scheme else q.quantize_apply(annotated)
    except QuantizeError:
        raise
    except Exception as exc:
        raise QuantizeError(
            f"TF-MOT cannot quantize this model: {whole_message(exc)} Fix: quantize only the "
            "layers TF-MOT supports (name them with train-qat --layers), or use PTQ (edgeq quantize)"
        ) from None


def _epoch_progress(steps: int, enabled: bool) -> Any:
    """A Keras callback drawing one tqdm bar per epoch, closed with its loss and accuracy."""
    from edgeq.tfenv import import_tf_keras

    tk = import_tf_keras()

    class Bar(tk.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.bar: Any = None

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if enabled:
                from tqdm import tqdm

                total = self.params.get("epochs", "?")
                self.bar = tqdm(total=steps, desc=f"QAT epoch {epoch + 1}/{total}",
                                unit="batch", leave=True)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if self.bar is not None:
                self.bar.update(1)
                if logs:
                    self.bar.set_postfix(loss=f"{logs.get('loss', 0):.3f}")

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if self.bar is not None:
                logs = logs or {}
                self.bar.set_postfix(loss=f"{logs.get('loss', 0):.3f}",
                                     acc=f"{logs.get('accuracy', 0):.3f}")
                self.bar.close()
                self.bar = None

    return Bar()


def convert_qat(model: Any, io_dtype: str = "int8") -> bytes:
    """Full-int8 .tflite from a QAT model; ranges come from its FakeQuant ops (no data given)."""
    from edgeq.tfenv import import_tf

    tf = import_tf()
    types = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}
    if io_dtype not in types:
        raise QuantizeError(f"I/O type '{io_dtype}' is not supported; use int8, uint8 or float32")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = types[io_dtype]
    converter.inference_output_type = types[io_dtype]
    try:
        from edgeq.tfenv import quiet_native_output

        with quiet_native_output(fds=(1, 2)):
            return bytes(converter.convert())
    except Exception as exc:
        # the converter's text runs to pages of MLIR: its whole first line, never cut
        raise QuantizeError(f"converting the QAT model failed: {first_line(exc, None)}") from None


_ACTIVATION_RANGES = ("post_activation", "pre_activation", "output", "quantize_layer")


def init_activation_ranges(qm: Any, float_model: Any, x: np.ndarray, samples: int = 512) -> int:
    """Start every activation range at the float model's observed min/max; returns how many.

    TF-MOT starts ranges at [-6, 6] and moves them by an EMA with decay 0.999, so a short
    fine-tune would spend its epochs with inputs in [0, 1] on ~20 levels. Starting from the
    observed ranges makes the first QAT step already close to the PTQ model.
    """
    from edgeq.tfenv import import_tf_keras

    tk = import_tf_keras()
    xs = x[:samples]
    targets: list[tuple[Any, Any, str | None]] = []
    float_names = {layer.name for layer in float_model.layers}
    for layer in qm.layers:
        scalars = {w.name.split(":")[0].split("/")[-1]: w for w in layer.weights
                   if w.shape.rank == 0}
        if type(layer).__name__ == "QuantizeLayer":
            if "quantize_layer_min" in scalars:
                targets.append((scalars["quantize_layer_min"], scalars["quantize_layer_max"], None))
            continue
        inner = getattr(layer, "layer", None)
        if inner is None or inner.name not in float_names:
            continue
        for prefix in ("post_activation", "output"):
            if f"{prefix}_min" in scalars:
                targets.append((scalars[f"{prefix}_min"], scalars[f"{prefix}_max"], inner.name))
        if "pre_activation_min" in scalars:  # e.g. logits before a fused softmax
            targets.append((scalars["pre_activation_min"], scalars["pre_activation_max"],
                            "pre:" + inner.name))
    names = sorted({n for _, _, n in targets if n is not None})
    outs: dict[str | None, np.ndarray] = {None: xs}
    if names:
        tensors = [float_model.get_layer(n[4:]).input if n.startswith("pre:")
                   else float_model.get_layer(n).output for n in names]
        probe = tk.Model(float_model.inputs, tensors)
        res = probe.predict(xs, verbose=0)
        res = res if isinstance(res, list) else [res]
        for n, r in zip(names, res, strict=True):
            outs[n] = _pre_activation(float_model.get_layer(n[4:]), r) if n.startswith("pre:") \
                else r
    for vmin, vmax, n in targets:
        a = outs[n]
        vmin.assign(min(float(np.min(a)), 0.0))
        vmax.assign(max(float(np.max(a)), 0.0))
    return len(targets)


def _pre_activation(layer: Any, inputs: np.ndarray) -> np.ndarray:
    """``layer`` applied to ``inputs`` without its activation (a linear twin, same weights)."""
    cfg = dict(layer.get_config())
    cfg["activation"] = "linear"
    cfg["name"] = layer.name + "_linear"
    twin = layer.__class__.from_config(cfg)
    twin.build(inputs.shape)
    twin.set_weights(layer.get_weights())
    return np.asarray(twin(inputs))


def trained_ranges(model: Any) -> list[tuple[str, float, float]]:
    """Activation ranges learned in training: the scalar ``*_min``/``*_max`` pairs of
    activations, outputs and the input quantizer (weight ranges excluded)."""
    found: dict[str, dict[str, float]] = {}
    for v in model.weights:
        name = v.name.split(":")[0]
        if v.shape.rank != 0 or not any(k in name.split("/")[-1] for k in _ACTIVATION_RANGES):
            continue
        for suffix in ("_min", "_max"):
            if name.endswith(suffix):
                found.setdefault(name[: -len(suffix)], {})[suffix] = float(v.numpy())
    return [(k, d["_min"], d["_max"]) for k, d in sorted(found.items()) if len(d) == 2]


def check_trained_ranges(model: Any, tflite: bytes, rel_tol: float = 1e-3) -> tuple[int, int]:
    """(matched, total): int8 activation tensors whose scale is one of the trained ranges.

    ``matched == total`` shows the converter used the QAT ranges and did not re-calibrate.
    """
    from edgeq.quantize.calibration import FIXED_RANGE_OPS
    from edgeq.tflite import read_tflite_bytes

    scales = [(hi - lo) / 255.0 for _, lo, hi in trained_ranges(model) if hi > lo]
    m = read_tflite_bytes(tflite)
    fixed = {o for op in m.operators if op.opcode in FIXED_RANGE_OPS for o in op.outputs}
    total = matched = 0
    for t in m.tensors:
        if t.is_constant or t.quant is None or t.dtype != "int8" or t.index in fixed:
            continue
        total += 1
        s = float(t.quant.scale[0])
        if any(abs(s - w) <= rel_tol * w for w in scales):
            matched += 1
    return matched, total


@dataclass
class QatResult:
    tflite: bytes
    epochs: int
    rounding: str
    float_accuracy: float | None
    qat_accuracy: float | None
    int8_accuracy: float | None
    ranges_from_training: tuple[int, int]
    history: list[dict[str, float]] = field(default_factory=list)
    float_ops: list[str] = field(default_factory=list)  # partial QAT leaves these in float

    def as_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "rounding": self.rounding,
            "float_accuracy": self.float_accuracy,
            "qat_accuracy": self.qat_accuracy,
            "int8_accuracy": self.int8_accuracy,
            "ranges_from_training": list(self.ranges_from_training),
            "tflite_bytes": len(self.tflite),
            "history": self.history,
            "float_ops": self.float_ops,
        }


def _accuracy(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    out = predict(x)
    return float(np.mean(np.asarray(out).reshape(len(x), -1).argmax(1) == y))


def int8_predict(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """Outputs of an int8-I/O .tflite on float inputs, via the LiteRT reference kernels."""
    from edgeq.oracles import run_litert_ref
    from edgeq.quantize import numerics
    from edgeq.tflite import read_tflite_bytes

    m = read_tflite_bytes(tflite)
    t = m.input_tensors[0]
    xs = x.reshape((len(x), *t.shape[1:]))
    if t.dtype in ("int8", "uint8", "int16"):
        xs = numerics.quantize(xs, float(t.quant.scale[0]), int(t.quant.zero_point[0]), t.dtype)
    out = run_litert_ref(tflite, xs)[0]
    o = m.output_tensors[0]
    if o.quant is not None and o.dtype != "float32":
        return numerics.dequantize(out, float(o.quant.scale[0]), int(o.quant.zero_point[0]))
    return out


def train_qat(
    model: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    *,
    epochs: int = 2,
    rounding: str = "nearest",
    layers: Sequence[str] | None = None,
    batch_size: int = 64,
    learning_rate: float = 1e-4,
    io_dtype: str = "int8",
    progress: bool = False,
    seed: int = 0,
) -> QatResult:
    """Fine-tune ``model`` (tf-keras) with fake quantization, then convert to full int8.

    Labels are integer classes (sparse cross-entropy). The float model is left untouched.
    """
    from edgeq.tfenv import import_tf_keras

    tk = import_tf_keras()
    if epochs < 0:
        raise QuantizeError(f"epochs must be >= 0, got {epochs}")
    if len(x_train) == 0:
        raise QuantizeError("training set is empty; give a dataset with training samples")
    tk.utils.set_random_seed(seed)
    x_test = x_train if x_test is None else x_test
    y_test = y_train if y_test is None else y_test
    float_acc = _accuracy(lambda a: model.predict(a, verbose=0), x_test, y_test)
    qm = qat_model(model, rounding, layers)
    init_activation_ranges(qm, model, x_train)
    from_logits = not _ends_in_softmax(model)
    qm.compile(
        optimizer=tk.optimizers.Adam(learning_rate),
        loss=tk.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )
    steps = math.ceil(len(x_train) / batch_size)
    hist = qm.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0,
                  shuffle=True, callbacks=[_epoch_progress(steps, progress)])
    history = [
        {k: float(v[i]) for k, v in hist.history.items()} for i in range(len(hist.epoch))
    ]
    qat_acc = _accuracy(lambda a: qm.predict(a, verbose=0), x_test, y_test)
    tflite = convert_qat(qm, io_dtype)
    int8_acc = _accuracy(lambda a: int8_predict(tflite, a), x_test, y_test)
    matched = check_trained_ranges(qm, tflite)
    if matched[0] != matched[1]:
        raise QuantizeError(
            f"the converter re-calibrated {matched[1] - matched[0]} of {matched[1]} activation "
            "ranges instead of using the trained ones; report this model"
        )
    return QatResult(tflite=tflite, epochs=epochs, rounding=rounding, float_accuracy=float_acc,
                     qat_accuracy=qat_acc, int8_accuracy=int8_acc, ranges_from_training=matched,
                     history=history, float_ops=float_ops(tflite))


def float_ops(tflite: bytes) -> list[str]:
    """Ops computing in float (not QUANTIZE/DEQUANTIZE): empty for a full-integer model."""
    from edgeq.tflite import read_tflite_bytes

    m = read_tflite_bytes(tflite)
    return [f"{op.index}:{op.opcode}" for op in m.operators
            if op.opcode not in ("QUANTIZE", "DEQUANTIZE")
            and m.tensors[op.outputs[0]].dtype == "float32"]


def _ends_in_softmax(model: Any) -> bool:
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    name = getattr(act, "__name__", "")
    return name == "softmax" or type(last).__name__ == "Softmax"


def run_train_qat(
    model_path: str,
    output: str,
    *,
    data: str | None = None,
    epochs: int = 2,
    rounding: str = "nearest",
    layers: Sequence[str] | None = None,
    learning_rate: float = 1e-4,
    batch_size: int = 64,
    progress: bool = False,
) -> dict[str, Any]:
    """The file-level job behind ``edgeq train-qat``: load, rebuild if Keras 3, train, write."""
    from pathlib import Path

    from edgeq.data import Normalization, load_dataset, prepare_inputs
    from edgeq.errors import DataError
    from edgeq.fileio import atomic_write_bytes, atomic_write_json
    from edgeq.models import load_model, sidecar_path

    if rounding not in ROUNDINGS:
        raise QuantizeError(f"unknown rounding '{rounding}'; use nearest or stochastic")
    out = Path(output)
    if out.suffix != ".tflite":
        raise QuantizeError(f"{out}: output must end in .tflite")
    if Path(model_path).suffix.lower() == ".tflite":
        raise QuantizeError(
            f"{model_path}: QAT needs the float Keras model, not a .tflite; "
            "pass the .keras/.h5 it came from"
        )
    loaded = load_model(model_path)
    if loaded.kind == "keras3":  # refuse unsupported layers before touching any data
        check_keras3_supported(loaded.model)
    spec = data or loaded.meta.get("dataset")
    if not spec:
        raise DataError(f"{model_path}: no training data; pass --data (e.g. --data mnist5k)")
    ds = load_dataset(spec, input_shape=tuple(loaded.input_shape[1:]))
    if ds.y_train is None:
        raise DataError(f"dataset '{ds.name}' has no labels; QAT here trains classifiers")
    norm = Normalization.from_meta(loaded.meta)
    x_train = prepare_inputs(ds.x_train, loaded.input_shape, norm, source=f"dataset '{ds.name}'")
    x_test = prepare_inputs(ds.x_test, loaded.input_shape, norm, source=f"dataset '{ds.name}'")
    model = as_tf_keras(loaded.model, loaded.kind, x_test[:16])
    res = train_qat(model, x_train, ds.y_train, x_test, ds.y_test, epochs=epochs,
                    rounding=rounding, layers=layers, batch_size=batch_size,
                    learning_rate=learning_rate, progress=progress)
    atomic_write_bytes(out, res.tflite)
    meta = dict(loaded.meta)
    meta.setdefault("dataset", spec)
    atomic_write_json(sidecar_path(out), meta)
    return {**res.as_dict(), "output": str(out), "source": str(loaded.path),
            "kind": loaded.kind}
