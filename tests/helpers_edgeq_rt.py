"""Shared helpers for edgeq-rt tests: tiny converted models, random inputs, bit-exact checks.

Also meant for the elementwise-family tests: ``assert_bit_exact(tflite, tmp_path, n=...)``
generates the C model, compiles it with gcc in both rounding modes and compares every output
byte with the TFLM interpreter (default rounding) and LiteRT's reference kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from helpers_host_harness import build_host_model

from edgeq.oracles import run_litert_ref, run_tflm
from edgeq.tflite import load_model_t, read_tflite, read_tflite_bytes, serialize_model_t

REPO = Path(__file__).resolve().parents[1]


def random_inputs(model: Path | bytes, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` samples per model input, uniform over the input dtype's range (floats: N(0,1))."""
    m = read_tflite_bytes(model) if isinstance(model, bytes) else read_tflite(model)
    rng = np.random.default_rng(seed)
    out = []
    for t in m.input_tensors:
        dt = np.dtype(t.dtype)
        shape = (n, *t.shape[1:])
        if dt.kind in "iu":
            info = np.iinfo(dt)
            lo, hi = max(int(info.min), -(1 << 15)), min(int(info.max), (1 << 15) - 1)
            out.append(rng.integers(lo, hi + 1, size=shape).astype(dt))
        else:
            out.append(rng.standard_normal(shape).astype(dt))
    return out


def mismatches(a: np.ndarray, b: np.ndarray) -> int:
    a = np.asarray(a)
    b = np.asarray(b).reshape(a.shape)
    if a.dtype.kind == "f":
        return int(np.sum(a.view(np.uint32) != b.astype(a.dtype).view(np.uint32)))
    return int(np.sum(a != b))


def assert_bit_exact(
    tflite: Path,
    work: Path,
    *,
    n: int = 20,
    seed: int = 0,
    inputs: list[np.ndarray] | None = None,
    litert: bool = True,
) -> dict[str, int]:
    """Every output byte equal to TFLM (default build) and LiteRT-ref (single-rounding build)."""
    ins = inputs if inputs is not None else random_inputs(tflite, n, seed)
    arg: Any = ins[0] if len(ins) == 1 else ins
    host = build_host_model(tflite, work / "double")
    got = host.run(ins)
    want = run_tflm(tflite, arg)
    counts = {"tflm": sum(mismatches(g, w) for g, w in zip(got, want, strict=True))}
    assert counts["tflm"] == 0, f"{counts['tflm']} output values differ from TFLM"
    if litert:
        host1 = build_host_model(tflite, work / "single", single_rounding=True)
        got1 = host1.run(ins)
        want1 = run_litert_ref(tflite, arg)
        counts["litert"] = sum(mismatches(g, w) for g, w in zip(got1, want1, strict=True))
        assert counts["litert"] == 0, f"{counts['litert']} output values differ from LiteRT-ref"
    return counts


def truncate_model(data: bytes, num_ops: int) -> bytes:
    """The first ``num_ops`` operators of a model, the last one's output made the model output."""
    mt = load_model_t(data)
    sg = mt.subgraphs[0]
    sg.operators = sg.operators[:num_ops]
    sg.outputs = [int(sg.operators[-1].outputs[0])]
    return serialize_model_t(mt)


def convert_keras(
    build: Callable[[], Any],
    *,
    mode: str = "int8",
    io_dtype: str | None = None,
    per_channel: bool = True,
    calib: int = 16,
    seed: int = 0,
) -> bytes:
    """PTQ-convert a tf-keras model calibrated on random normal data (numerics only)."""
    from edgeq.quantize.ptq import convert_ptq

    model = build()
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    rng = np.random.default_rng(seed)
    samples = [rng.standard_normal((1, *shape)).astype(np.float32) for _ in range(calib)]

    def representative():  # noqa: ANN202
        for s in samples:
            yield [s]

    return convert_ptq(model, representative, mode=mode, io_dtype=io_dtype,
                       per_channel=per_channel)


def keras_layers():  # noqa: ANN201
    from edgeq.tfenv import import_tf_keras

    return import_tf_keras()


def mlperf_lookalike(name: str) -> Callable[[], Any]:
    """An edgeq.models builder (MLPerf-Tiny look-alike, random weights) with batch-norm
    statistics measured on random inputs, so that no layer collapses to a constant and every
    layer's numerics are exercised."""

    def make() -> Any:
        from edgeq.models import builders
        from edgeq.tfenv import import_tf_keras

        keras = import_tf_keras()
        model = builders.BUILDERS[name](seed=0)
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        x = np.random.default_rng(1).standard_normal((16, *shape)).astype(np.float32)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                a = keras.Model(model.inputs, layer.input).predict(x, verbose=0)
                axes = tuple(range(a.ndim - 1))
                gamma, beta, _, _ = layer.get_weights()
                layer.set_weights([gamma, beta, a.mean(axis=axes), a.var(axis=axes) + 1e-3])
        return model

    return make


def depth_multiplier_model() -> Any:
    """DEPTHWISE_CONV_2D with depth multiplier > 1 in the shapes its kernel tells apart, each
    layer a model output: one input channel read in place (filter rows of 4 taps, stride 2,
    vertically clipped rows from the bias, horizontally clipped windows copied), filter rows
    padded to 4 taps (3-wide, off the right edge), three input channels (copied windows, 5-wide
    rows, stride 2, valid), dilation on both axes (multiplier 6: a block of four and two
    outputs one at a time) and on rows only (multiplier 3, one channel: no block of four, rows
    clipped), and multiplier 2. Random biases, so the folded bias is not just the filter
    sum."""
    keras = keras_layers()
    keras.utils.set_random_seed(3)
    L = keras.layers
    inp = keras.Input((13, 12, 1))
    t = L.Conv2D(3, 1)(inp)
    outs = [
        L.DepthwiseConv2D((5, 4), depth_multiplier=8, strides=2, padding="same")(inp),
        L.DepthwiseConv2D(3, depth_multiplier=4, padding="same", activation="relu")(inp),
        L.DepthwiseConv2D((2, 3), depth_multiplier=3, dilation_rate=(2, 1),
                          padding="same")(inp),
        L.DepthwiseConv2D((3, 5), depth_multiplier=4, strides=2)(t),
        L.DepthwiseConv2D(3, depth_multiplier=6, dilation_rate=2, padding="same")(t),
        L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(t),
    ]
    model = keras.Model(inp, outs)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if type(layer).__name__ == "DepthwiseConv2D":
            w, b = layer.get_weights()
            layer.set_weights([w, rng.normal(0, 0.3, b.shape).astype(np.float32)])
    return model
