"""Recurrent layers (LSTM, GRU, SimpleRNN) made into something microcontrollers can run.

The TFLite converter turns a tf-keras LSTM with a static batch and sequence length into one fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` (tf-keras marks its LSTM function for fusion); anything else
recurrent becomes a ``WHILE`` loop over a TensorList, which the calibrator crashes on (Keras 3
LSTM/GRU: SIGSEGV) and which no microcontroller runtime here runs. So, before conversion:

- the sequence length must be static (``Input((T, F))``): unrolling and the fused op need it;
- a Keras 3 model with recurrent layers is rebuilt in tf-keras (the rebuild QAT uses, outputs
  checked equal), so its LSTM fuses like a tf-keras one (and its unrolled GRU keeps no float
  SPLIT, which the Keras 3 graph does);
- GRU and SimpleRNN layers, LSTMs tf-keras does not fuse (other activations, no bias,
  recurrent dropout), and the LSTMs of a Keras 3 model the rebuild cannot express are cloned
  with ``unroll=True``: T copies of the cell as plain FULLY_CONNECTED/LOGISTIC/TANH/MUL/
  ADD/SUB ops.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from edgeq.errors import QuantizeError

log = logging.getLogger(__name__)

RECURRENT_LAYERS = ("LSTM", "GRU", "SimpleRNN")
UNROLLED_LAYERS = ("GRU", "SimpleRNN")
EQUIVALENCE_TOL = 1e-5


def _is_keras3(model: Any) -> bool:
    return type(model).__module__.split(".")[0] == "keras"


def recurrent_layers(model: Any) -> list[Any]:
    """The model's recurrent layers (top level), in order."""
    return [layer for layer in getattr(model, "layers", [])
            if type(layer).__name__ in RECURRENT_LAYERS]


def _refuse_unsupported(model: Any) -> None:
    for layer in getattr(model, "layers", []):
        cls = type(layer).__name__
        inner = getattr(layer, "layer", None) or getattr(layer, "forward_layer", None)
        if cls in ("Bidirectional", "RNN", "TimeDistributed") and inner is not None and \
                type(inner).__name__ in RECURRENT_LAYERS + ("LSTMCell", "GRUCell"):
            raise QuantizeError(
                f"layer '{layer.name}' ({cls} around {type(inner).__name__}) cannot be "
                "converted for a microcontroller; use plain LSTM/GRU layers")
    for layer in recurrent_layers(model):
        if getattr(layer, "stateful", False) or getattr(layer, "return_state", False):
            raise QuantizeError(
                f"layer '{layer.name}' ({type(layer).__name__}) is stateful or returns its "
                "state; rebuild it with stateful=False, return_state=False to convert it")


def _check_static_length(model: Any) -> None:
    for t in model.inputs:
        dims = list(t.shape)[1:]
        if any(d is None for d in dims):
            name = recurrent_layers(model)[0].name
            raise QuantizeError(
                f"layer '{name}' needs a fixed sequence length, but the model input has shape "
                f"{tuple(dims)}; rebuild it with Input(shape=(T, features)) and copy the weights")


def prepare_recurrent(model: Any) -> Any:
    """The model to convert: unchanged without recurrent layers, else rebuilt or unrolled."""
    layers = recurrent_layers(model)
    _refuse_unsupported(model)
    if not layers:
        return model
    _check_static_length(model)
    names = ", ".join(f"{x.name} ({type(x).__name__})" for x in layers)
    if _is_keras3(model):
        from edgeq.quantize.qat import keras3_to_tf_keras

        try:
            model = keras3_to_tf_keras(model)
            log.debug("Keras 3 model rebuilt in tf-keras for its recurrent layers: %s", names)
        except QuantizeError as exc:
            log.debug("no tf-keras rebuild (%s); unrolling every recurrent layer", exc)
            return _unrolled(model, ("LSTM", *UNROLLED_LAYERS), {x.name for x in layers})
    unroll = [x for x in recurrent_layers(model)
              if type(x).__name__ in UNROLLED_LAYERS or not _fusable_lstm(x)]
    if unroll:
        model = _unrolled(model, tuple(sorted({type(x).__name__ for x in unroll})),
                          {x.name for x in unroll})
    return model


def _fusable_lstm(layer: Any) -> bool:
    """tf-keras takes its fusable LSTM path only for tanh/sigmoid with a bias and no recurrent
    dropout; any other LSTM is a loop that must be unrolled (an unrolled one already is)."""
    if type(layer).__name__ != "LSTM" or getattr(layer, "unroll", False):
        return True

    def name(fn: Any) -> str:  # tf-keras layers only: a Keras 3 model was rebuilt by now
        return str(getattr(fn, "__name__", ""))

    return (name(layer.activation) == "tanh" and name(layer.recurrent_activation) == "sigmoid"
            and bool(layer.use_bias) and not getattr(layer, "recurrent_dropout", 0))


def _unrolled(model: Any, classes: tuple[str, ...], names: set[str]) -> Any:
    """A clone of ``model`` whose layers ``names`` run with ``unroll=True``, same weights."""
    if _is_keras3(model):
        import keras as K
    else:
        from edgeq.tfenv import import_tf_keras

        K = import_tf_keras()

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if type(layer).__name__ in classes and layer.name in names:
            config = {**config, "unroll": True}
        return type(layer).from_config(config)

    try:
        cloned = K.models.clone_model(model, clone_function=clone)
    except Exception as exc:  # noqa: BLE001 - subclassed models and custom layers
        raise QuantizeError(
            f"cannot unroll the recurrent layers of model '{model.name}' for conversion "
            f"({type(exc).__name__}); build it as a Sequential or functional model") from None
    cloned.set_weights(model.get_weights())
    _check_same(model, cloned)
    log.debug("unrolled %s for conversion", ", ".join(sorted(names)))
    return cloned


def _check_same(a: Any, b: Any) -> None:
    shapes = [(2, *(int(d) for d in t.shape[1:])) for t in a.inputs]
    rng = np.random.default_rng(0)
    xs = [rng.uniform(-1, 1, s).astype(np.float32) for s in shapes]
    x = xs[0] if len(xs) == 1 else xs
    ya = np.asarray(a(x, training=False))
    yb = np.asarray(b(x, training=False))
    diff = float(np.max(np.abs(ya - yb))) if ya.shape == yb.shape else math.inf
    if not diff <= EQUIVALENCE_TOL:
        raise QuantizeError(f"the unrolled copy of model '{a.name}' differs by {diff:.3g}; "
                            "report the model")
