"""Per-layer precision sensitivity, measured on real quantized models.

Why measured and not estimated: a layer's sensitivity is the accuracy (and output KL divergence
to the float model) lost when *only that layer* changes precision, everything else all-int8.
Each variant is built with ``ai-edge-quantizer`` (the same engine that builds the final mixed
model) and run on LiteRT's reference kernels, so the solver optimizes what it will get.

Variants per weight layer (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED):
- ``w4``: weights int8 -> int4 (ai-edge-quantizer 0.10 for CONV_2D and FULLY_CONNECTED;
  DEPTHWISE_CONV_2D filters are rewritten by :mod:`edgeq.quantize.int4_depthwise`);
- ``a16``: activations int8 -> int16 (int16x8; QUANTIZE ops join it to the int8 neighbours) --
  the loss is negative when int16 helps, so the ranking says which layers deserve it;
- ``float``: the layer stays float32 (phone targets' fallback; microcontrollers cannot use it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeq.errors import QuantizeError, first_line

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
INT4_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
VARIANTS = ("w4", "a16", "float")
KL_EPS = 1e-7


@dataclass(frozen=True)
class Precision:
    """How one layer is quantized: weight bits (4/8/32=float) and activation bits (8/16/32)."""

    weight_bits: int = 8
    activation_bits: int = 8

    @property
    def label(self) -> str:
        if self.weight_bits == 32:
            return "float"
        return f"w{self.weight_bits}a{self.activation_bits}"


INT8 = Precision(8, 8)
VARIANT_PRECISION = {"w4": Precision(4, 8), "a16": Precision(8, 16), "float": Precision(32, 32)}


@dataclass
class WeightLayer:
    """A weight-bearing op of the float model, with what the size and RAM models need."""

    op_index: int
    opcode: str
    name: str  # output tensor name of the op (what ai-edge-quantizer's regex matches)
    keras_name: str | None  # the Keras layer that produced it, when it can be told
    weights: int  # number of kernel elements
    biases: int
    input_elems: int
    output_elems: int

    @property
    def short_name(self) -> str:
        return self.keras_name or f"op{self.op_index}"

    def supports(self, precision: Precision) -> bool:
        if precision.weight_bits == 4:
            return self.opcode in INT4_OPS
        return True

    def weight_bytes(self, precision: Precision) -> int:
        """Flash bytes of kernel + bias: packed kernel, int32 bias (int64 for int16x8)."""
        if precision.weight_bits == 32:
            return 4 * (self.weights + self.biases)
        bias_bytes = 8 if precision.activation_bits == 16 else 4
        return math.ceil(self.weights * precision.weight_bits / 8) + bias_bytes * self.biases

    def ram_bytes(self, precision: Precision) -> int:
        """Activation bytes live around this op (a lower bound of the arena it needs).

        int8: input + output. int16: the QUANTIZE ops that join it to int8 neighbours keep both
        copies alive, so the peak is the largest of (in8+in16, in16+out16, out16+out8).
        """
        i, o = self.input_elems, self.output_elems
        if precision.activation_bits == 16:
            return max(3 * i, 2 * i + 2 * o, 3 * o)
        if precision.activation_bits == 32:
            return 4 * (i + o)
        return i + o


@dataclass
class Evaluation:
    accuracy: float
    kl: float  # mean KL(float || quantized) of the output distributions
    model_bytes: int


@dataclass
class LayerSensitivity:
    layer: str
    opcode: str
    variant: str
    accuracy: float | None  # None: the variant is not available for this op
    accuracy_loss: float | None  # baseline accuracy - variant accuracy (points, 0..100)
    kl: float | None
    kl_increase: float | None


@dataclass
class SensitivityReport:
    baseline: Evaluation  # all-int8
    float_accuracy: float
    layers: list[WeightLayer]
    rows: list[LayerSensitivity] = field(default_factory=list)
    split: str = "test"  # which data the rows were measured on

    def loss(self, layer: str, variant: str, objective: str = "kl") -> float | None:
        for r in self.rows:
            if r.layer == layer and r.variant == variant:
                return r.kl_increase if objective == "kl" else r.accuracy_loss
        return None

    def ranking(self, variant: str, objective: str = "kl") -> list[tuple[str, float]]:
        """Layers sorted from most to least sensitive (a16: most helped first)."""
        vals = [(r.layer, self.loss(r.layer, variant, objective)) for r in self.rows
                if r.variant == variant and self.loss(r.layer, variant, objective) is not None]
        pairs = [(n, float(v)) for n, v in vals if v is not None]
        if variant == "a16":
            return sorted(pairs, key=lambda p: p[1])
        return sorted(pairs, key=lambda p: -p[1])

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": asdict(self.baseline),
            "float_accuracy": self.float_accuracy,
            "layers": [asdict(layer) for layer in self.layers],
            "rows": [asdict(r) for r in self.rows],
            "split": self.split,
        }


# --- float model and its layers ---------------------------------------------------------------


def float_tflite(keras_model: Any) -> bytes:
    """Convert a tf-keras model to a float32 .tflite (what ai-edge-quantizer starts from)."""
    from edgeq.tfenv import import_tf

    tf = import_tf()
    try:
        return bytes(tf.lite.TFLiteConverter.from_keras_model(keras_model).convert())
    except Exception as exc:  # the converter raises many kinds
        first = first_line(exc, None)
        raise QuantizeError(f"TFLite converter failed on the float model: {first[:160]}") from None


def weight_layers(float_model: bytes, keras_model: Any | None = None) -> list[WeightLayer]:
    """The weight-bearing ops of a float .tflite, in graph order."""
    from edgeq.tflite import read_tflite_bytes

    m = read_tflite_bytes(float_model)
    keras_names = [layer.name for layer in keras_model.layers] if keras_model is not None else []
    out: list[WeightLayer] = []
    for op in m.operators:
        if op.opcode not in WEIGHT_OPS:
            continue
        w = m.tensors[op.inputs[1]]
        b = m.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        x = m.tensors[op.inputs[0]]
        y = m.tensors[op.outputs[0]]
        name = y.name
        keras_name = next((k for k in keras_names if f"/{k}/" in name or f"/{k}/" in w.name), None)
        out.append(
            WeightLayer(
                op_index=op.index,
                opcode=op.opcode,
                name=name,
                keras_name=keras_name,
                weights=int(np.prod(w.shape)),
                biases=int(np.prod(b.shape)) if b is not None else 0,
                input_elems=int(np.prod(x.shape)),
                output_elems=int(np.prod(y.shape)),
            )
        )
    if not out:
        raise QuantizeError("the model has no CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED layer "
                            "to choose a precision for")
    return out


# --- building quantized variants --------------------------------------------------------------


def quantize_with_plan(
    float_model: bytes,
    plan: Mapping[str, Precision],
    calibration: np.ndarray,
    *,
    input_name: str | None = None,
) -> bytes:
    """Full-integer model (int8 I/O) with per-layer precisions, built by ai-edge-quantizer.

    ``plan`` maps op output-tensor names (``WeightLayer.name``) to a :class:`Precision`; every
    other op is static int8.
    """
    from edgeq.tfenv import import_tf

    import_tf()
    from ai_edge_quantizer import algorithm_manager, quantizer

    from edgeq.quantize.int4_depthwise import int4_depthwise
    from edgeq.tfenv import quiet_native_output

    q = quantizer.Quantizer(bytearray(float_model))
    q.add_static_config(".*", "*", activation_num_bits=8, weight_num_bits=8)
    opcodes = {layer.name: layer.opcode for layer in weight_layers(float_model)}
    # int4 depthwise: built int8 by the quantizer, filters rewritten afterwards
    dw4 = [n for n, p in plan.items() if opcodes.get(n) == "DEPTHWISE_CONV_2D"
           and p == VARIANT_PRECISION["w4"]]
    for name, prec in plan.items():
        if name not in opcodes:
            raise QuantizeError(f"no weight layer named '{name}' in the model")
        if name in dw4:
            continue
        regex = "^" + re.escape(name) + ";$"  # the quantizer's op scope ends with ';'
        if prec.weight_bits == 32:
            q.update_quantization_recipe(
                regex, opcodes[name], algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE
            )
        elif prec != INT8:
            q.add_static_config(
                regex, opcodes[name], activation_num_bits=prec.activation_bits,
                weight_num_bits=prec.weight_bits,
            )
    key = input_name or _input_name(float_model)
    calib = {"serving_default": [{key: s[np.newaxis].astype(np.float32)} for s in calibration]}
    try:
        with quiet_native_output(), _silence_python_output():
            result = q.quantize(q.calibrate(calib, num_threads=1), enable_progress_report=False)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise QuantizeError(f"ai-edge-quantizer failed: {first_line(exc, 160)}; "
                            "choose another precision for that layer") from None
    return int4_depthwise(bytes(result.quantized_model), float_model, dw4)


def _input_name(float_model: bytes) -> str:
    from edgeq.oracles import litert_ref_interpreter

    interp = litert_ref_interpreter(float_model)
    sig = interp.get_signature_list().get("serving_default")
    if not sig or len(sig["inputs"]) != 1:
        raise QuantizeError("mixed precision needs a model with one input and a serving signature")
    return sig["inputs"][0]


class _silence_python_output:
    """ai-edge-quantizer prints progress bars to stdout/stderr; library code must not print."""

    def __enter__(self) -> None:
        import contextlib
        import io

        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        self._stack.enter_context(contextlib.redirect_stderr(io.StringIO()))

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


# --- evaluation -------------------------------------------------------------------------------


def model_probabilities(model: bytes, x: np.ndarray) -> np.ndarray:
    """Dequantized outputs (N, classes) of a .tflite on LiteRT reference kernels."""
    from edgeq.oracles import run_litert_ref
    from edgeq.quantize.numerics import dequantize, quantize
    from edgeq.tflite import read_tflite_bytes

    m = read_tflite_bytes(model)
    it, ot = m.input_tensors[0], m.output_tensors[0]
    if it.dtype in ("int8", "int16", "uint8") and it.quant is not None:
        xi = quantize(x, float(it.quant.scale[0]), int(it.quant.zero_point[0]), it.dtype)
    else:
        xi = np.asarray(x, dtype=np.float32)
    out = run_litert_ref(model, xi)[0].reshape(len(x), -1)
    if ot.dtype != "float32" and ot.quant is not None:
        out = dequantize(out, float(ot.quant.scale[0]), int(ot.quant.zero_point[0]))
    return np.asarray(out, dtype=np.float64)


def mean_kl(p: np.ndarray, q: np.ndarray) -> float:
    """Mean KL(p || q) over rows of probability vectors (renormalized, clipped at 1e-7)."""
    p = np.clip(np.asarray(p, dtype=np.float64), KL_EPS, None)
    q = np.clip(np.asarray(q, dtype=np.float64), KL_EPS, None)
    p /= p.sum(axis=1, keepdims=True)
    q /= q.sum(axis=1, keepdims=True)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def evaluate(model: bytes, x: np.ndarray, y: np.ndarray, reference: np.ndarray) -> Evaluation:
    """Accuracy (%) and KL to the float model's output probabilities ``reference``."""
    probs = model_probabilities(model, x)
    acc = 100.0 * float(np.mean(np.argmax(probs, axis=1) == np.asarray(y)))
    return Evaluation(accuracy=acc, kl=mean_kl(reference, probs), model_bytes=len(model))


# --- the analysis -----------------------------------------------------------------------------


def layer_sensitivity(
    keras_model: Any,
    calibration: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    *,
    variants: Sequence[str] = ("w4", "a16"),
    float_model: bytes | None = None,
) -> SensitivityReport:
    """Measure every weight layer under each variant, one layer at a time.

    ``calibration`` and ``x_eval`` are already shaped and normalized for the float model.
    """
    for v in variants:
        if v not in VARIANTS:
            raise QuantizeError(f"unknown sensitivity variant '{v}'; use {', '.join(VARIANTS)}")
    if len(x_eval) == 0 or len(x_eval) != len(y_eval):
        raise QuantizeError("evaluation set is empty or its labels do not match; give x and y")
    fmodel = float_model or float_tflite(keras_model)
    layers = weight_layers(fmodel, keras_model)
    reference = model_probabilities(fmodel, x_eval)
    float_acc = 100.0 * float(np.mean(np.argmax(reference, axis=1) == y_eval))
    base = evaluate(quantize_with_plan(fmodel, {}, calibration), x_eval, y_eval, reference)
    report = SensitivityReport(baseline=base, float_accuracy=float_acc, layers=layers)
    for layer in layers:
        for v in variants:
            prec = VARIANT_PRECISION[v]
            if not layer.supports(prec):
                report.rows.append(LayerSensitivity(layer.short_name, layer.opcode, v,
                                                    None, None, None, None))
                continue
            ev = evaluate(quantize_with_plan(fmodel, {layer.name: prec}, calibration),
                          x_eval, y_eval, reference)
            report.rows.append(
                LayerSensitivity(
                    layer=layer.short_name,
                    opcode=layer.opcode,
                    variant=v,
                    accuracy=ev.accuracy,
                    accuracy_loss=base.accuracy - ev.accuracy,
                    kl=ev.kl,
                    kl_increase=ev.kl - base.kl,
                )
            )
    return report


def clearly_better(right_a: np.ndarray, right_b: np.ndarray) -> bool:
    """Whether A's per-sample hits beat B's by more than two standard errors of the difference.

    Why: on a held-out tenth of a small training split one sample is 0.2 pt; choosing a
    fine-tune (mixed) or a file (compress) because it won by one or two samples chose noise
    (the benchmark's CNN: +1 sample held out, -0.4 pt on the test split). Only the samples the
    two disagree on count, as in McNemar's test: A must win ``b - c > 2 sqrt(b + c)`` of them
    (about 5 % one-sided; 2 won and 0 lost is not enough, 5 to 0 is).
    """
    a, b = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    wins, losses = int(np.sum(a & ~b)), int(np.sum(b & ~a))
    return wins - losses > 2.0 * math.sqrt(wins + losses)
