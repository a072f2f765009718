"""edgeq-rt ops users' models bring (issue 13): TILE, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR,
SPLIT, SPLIT_V, UNPACK, PACK, GATHER, BATCH_MATMUL, SQUARED_DIFFERENCE, RSQRT, and int16
LOGISTIC and TANH.

Two kinds of model, each through the whole generator (``write_edgeq_rt``), compiled with gcc
and compared byte for byte with the TFLite Micro interpreter (and LiteRT's reference kernels):
one-operator ``.tflite`` files built with the flatbuffers object API (any shape, option and
quantization a converter may emit, no TensorFlow import) and small tf-keras models converted to
int8 by the TFLite converter (what users actually bring). TFLite Micro has no TILE kernel, so
TILE is held to LiteRT's reference kernels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_edgeq_rt import assert_bit_exact, convert_keras, keras_layers, random_inputs
from helpers_elementwise import T, build_model, opts
from helpers_host_harness import build_host_model

from edgeq.codegen.edgeq_rt import generate_edgeq_rt
from edgeq.errors import CodegenError
from edgeq.oracles import run_litert_ref
from edgeq.tflite import read_tflite_bytes


def _ints(values: list[int]) -> T:
    arr = np.asarray(values, dtype=np.int32)
    return T(arr.shape, dtype="int32", scale=None, data=arr)


def _write(tmp: Path, data: bytes, name: str = "m.tflite") -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _exact(data: bytes, tmp: Path, n: int = 12, litert: bool = True) -> None:
    counts = assert_bit_exact(_write(tmp, data), tmp, n=n, litert=litert)
    assert counts["tflm"] == 0


# ---------------------------------------------------------------------------------------------
# one-operator models (flatbuffers): shapes, options, odd sizes


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("in_hw,out_hw,align,half", [
    ((3, 5), (7, 9), False, False),
    ((3, 5), (7, 9), True, False),
    ((3, 5), (7, 9), False, True),
    ((6, 4), (3, 2), False, True),
    ((5, 5), (10, 10), False, False),
    ((4, 7), (1, 13), True, False),
])
def test_resize_nearest_bit_exact(in_hw: tuple, out_hw: tuple, align: bool, half: bool,
                                  dtype: str, tmp_path: Path) -> None:
    o, kind = opts("ResizeNearestNeighborOptions", alignCorners=align, halfPixelCenters=half)
    model = build_model("RESIZE_NEAREST_NEIGHBOR",
                        [T((1, *in_hw, 3), dtype, 0.1, 0), _ints(list(out_hw))],
                        [T((1, *out_hw, 3), dtype, 0.1, 0)], o, kind, version=3)
    _exact(model, tmp_path, litert=dtype == "int8")  # a copy: one LiteRT check is enough


@pytest.mark.parametrize("in_hw,out_hw,align,half", [
    ((3, 5), (7, 9), False, False),
    ((3, 5), (7, 9), True, False),
    ((3, 5), (7, 9), False, True),
    ((6, 4), (3, 2), False, True),
    ((6, 5), (4, 3), True, False),
    ((4, 4), (8, 8), False, True),
    ((5, 7), (1, 1), True, False),
])
def test_resize_bilinear_bit_exact(in_hw: tuple, out_hw: tuple, align: bool, half: bool,
                                   tmp_path: Path) -> None:
    o, kind = opts("ResizeBilinearOptions", alignCorners=align, halfPixelCenters=half)
    model = build_model("RESIZE_BILINEAR",
                        [T((1, *in_hw, 3), "int8", 0.1, 0), _ints(list(out_hw))],
                        [T((1, *out_hw, 3), "int8", 0.1, 0)], o, kind, version=3)
    _exact(model, tmp_path, n=24)


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("shape,axis,parts", [
    ((1, 6, 5), 1, 3), ((1, 4, 9), -1, 3), ((1, 3, 2, 4), 3, 2), ((1, 5, 7), 1, 1),
])
def test_split_bit_exact(shape: tuple, axis: int, parts: int, dtype: str, tmp_path: Path) -> None:
    out_shape = list(shape)
    out_shape[axis] //= parts
    o, kind = opts("SplitOptions", numSplits=parts)
    model = build_model("SPLIT", [_ints([axis]), T(shape, dtype, 0.05, 0)],
                        [T(tuple(out_shape), dtype, 0.05, 0) for _ in range(parts)], o, kind)
    _exact(model, tmp_path, litert=dtype == "int8")  # a copy: one LiteRT check is enough


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("shape,axis,sizes", [
    ((1, 7, 3), 1, [2, 5]), ((1, 3, 11), 2, [1, 7, 3]), ((1, 2, 5, 3), -2, [4, 1]),
])
def test_split_v_bit_exact(shape: tuple, axis: int, sizes: list[int], dtype: str,
                           tmp_path: Path) -> None:
    outs = []
    for s in sizes:
        o_shape = list(shape)
        o_shape[axis] = s
        outs.append(T(tuple(o_shape), dtype, 0.05, 0))
    o, kind = opts("SplitVOptions", numSplits=len(sizes))
    model = build_model("SPLIT_V", [T(shape, dtype, 0.05, 0), _ints(sizes), _ints([axis])],
                        outs, o, kind)
    _exact(model, tmp_path, litert=dtype == "int8")  # a copy: one LiteRT check is enough


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("shape,axis", [((1, 3, 5), 1), ((1, 4, 3, 2), -1), ((1, 5, 1, 3), 2)])
def test_unpack_bit_exact(shape: tuple, axis: int, dtype: str, tmp_path: Path) -> None:
    n = shape[axis]
    out_shape = tuple(d for k, d in enumerate(shape) if k != axis % len(shape))
    o, kind = opts("UnpackOptions", num=n, axis=axis)
    model = build_model("UNPACK", [T(shape, dtype, 0.05, 0)],
                        [T(out_shape, dtype, 0.05, 0) for _ in range(n)], o, kind)
    _exact(model, tmp_path, litert=dtype == "int8")  # a copy: one LiteRT check is enough


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("shape,axis,n", [((1, 3, 5), 1, 2), ((1, 3, 5), 3, 3),
                                          ((1, 2, 3), 0, 1), ((1, 7), -1, 4)])
def test_pack_bit_exact(shape: tuple, axis: int, n: int, dtype: str, tmp_path: Path) -> None:
    out_shape = list(shape)
    out_shape.insert(axis % (len(shape) + 1), n)
    o, kind = opts("PackOptions", valuesCount=n, axis=axis)
    model = build_model("PACK", [T(shape, dtype, 0.05, 0) for _ in range(n)],
                        [T(tuple(out_shape), dtype, 0.05, 0)], o, kind)
    _exact(model, tmp_path, litert=dtype == "int8")  # a copy: one LiteRT check is enough


@pytest.mark.parametrize("shape,indices,idx_shape,axis,batch_dims", [
    ((1, 6, 4), [4, 0, 2, 2], (4,), 1, 0),
    ((1, 5, 3), [2, 0, 1, 4, 3, 3], (2, 3), 1, 0),
    ((1, 3, 7), [6, 0, 5], (3,), -1, 0),
    ((1, 2, 5, 3), [[[1, 4], [0, 0]]], (1, 2, 2), 2, 2),
])
def test_gather_constant_indices_bit_exact(shape: tuple, indices: Any, idx_shape: tuple,
                                           axis: int, batch_dims: int, tmp_path: Path) -> None:
    idx = np.asarray(indices, dtype=np.int32).reshape(idx_shape)
    a = axis % len(shape)
    out_shape = (*shape[:a], *idx_shape[batch_dims:], *shape[a + 1:])
    o, kind = opts("GatherOptions", axis=axis, batchDims=batch_dims)
    model = build_model("GATHER", [T(shape, "int8", 0.05, 3),
                                   T(idx_shape, "int32", None, 0, data=idx)],
                        [T(out_shape, "int8", 0.05, 3)], o, kind)
    _exact(model, tmp_path)


def test_gather_run_time_indices(tmp_path: Path) -> None:
    """An embedding lookup: int32 positions are a model input; bad positions fail the invoke."""
    table = np.arange(-60, 60, dtype=np.int8).reshape(20, 6)
    o, kind = opts("GatherOptions", axis=0)
    model = build_model("GATHER", [T((20, 6), "int8", 0.1, 0, data=table),
                                   T((1, 5), "int32", None)],
                        [T((1, 5, 6), "int8", 0.1, 0)], o, kind)
    path = _write(tmp_path, model)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 20, size=(8, 5)).astype(np.int32)
    counts = assert_bit_exact(path, tmp_path, inputs=[idx], litert=False)
    assert counts == {"tflm": 0}
    host = build_host_model(path, tmp_path / "bad")
    with pytest.raises(Exception, match="status"):
        host.run([np.array([[0, 1, 20, 2, 3]], dtype=np.int32)])


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("shape,multiples", [
    ((1, 3, 5), [1, 2, 3]), ((1, 2, 1, 3), [1, 1, 4, 1]), ((1, 7), [1, 1]), ((1, 1, 2), [1, 3, 5]),
])
def test_tile_matches_litert(shape: tuple, multiples: list[int], dtype: str,
                             tmp_path: Path) -> None:
    """TFLite Micro has no TILE kernel: LiteRT's reference kernels are the oracle."""
    out_shape = tuple(d * m for d, m in zip(shape, multiples, strict=True))
    model = build_model("TILE", [T(shape, dtype, 0.05, 0), _ints(multiples)],
                        [T(out_shape, dtype, 0.05, 0)])
    path = _write(tmp_path, model)
    x = random_inputs(path, 10)
    got = build_host_model(path, tmp_path / "h").run(x)[0]
    want = run_litert_ref(path, x[0])[0]
    assert got.shape == want.shape and np.array_equal(got, want)
    assert np.array_equal(want[:1], np.tile(x[0][:1], multiples))  # and numpy agrees


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("sh1,sh2,out", [
    ((1, 4, 5), (1, 4, 5), (1, 4, 5)), ((1, 3, 7), (1, 3, 1), (1, 3, 7)),
    ((1, 2, 3, 5), (1, 1, 1, 5), (1, 2, 3, 5)), ((1, 1, 6), (1, 4, 1), (1, 4, 6)),
])
@pytest.mark.parametrize("q", [((0.05, 3), (0.02, -7), (0.01, -128)),
                               ((1.0, -128), (0.3, 127), (4.0, -100))])
def test_squared_difference_bit_exact(sh1: tuple, sh2: tuple, out: tuple, q: tuple, dtype: str,
                                      tmp_path: Path) -> None:
    (s1, z1), (s2, z2), (so, zo) = q
    if dtype == "int16":
        z1 = z2 = zo = 0
        s1, s2, so = s1 / 256, s2 / 256, so / 256
    model = build_model("SQUARED_DIFFERENCE", [T(sh1, dtype, s1, z1), T(sh2, dtype, s2, z2)],
                        [T(out, dtype, so, zo)])
    _exact(model, tmp_path, n=48, litert=dtype == "int8")  # LiteRT 2.3: no int16 SQ. DIFF.


@pytest.mark.parametrize("qin,qout", [((0.05, -128), (0.02, -128)), ((0.001, -128), (0.5, -100)),
                                      ((3.0, -128), (0.01, 0))])
def test_rsqrt_bit_exact_on_every_input(qin: tuple, qout: tuple, tmp_path: Path) -> None:
    """All 256 non-negative int8 inputs (zero point -128: every value is >= 0)."""
    model = build_model("RSQRT", [T((1, 256), "int8", *qin)], [T((1, 256), "int8", *qout)])
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    counts = assert_bit_exact(_write(tmp_path, model), tmp_path, inputs=[x])
    assert counts["tflm"] == 0


@pytest.mark.parametrize("qin,qout", [((1e-4, 0), (0.01, 0)), ((0.02, 0), (1e-4, 0))])
def test_rsqrt_int16_bit_exact(qin: tuple, qout: tuple, tmp_path: Path) -> None:
    """Non-negative int16 inputs spread over the whole range, the small ones included."""
    model = build_model("RSQRT", [T((1, 512), "int16", *qin)], [T((1, 512), "int16", *qout)])
    x = np.concatenate([np.arange(256), np.linspace(256, 32767, 256).astype(np.int64)])
    counts = assert_bit_exact(_write(tmp_path, model), tmp_path,
                              inputs=[x.astype(np.int16).reshape(1, 512)], litert=False)
    assert counts["tflm"] == 0


def test_rsqrt_negative_input_fails_like_tflm(tmp_path: Path) -> None:
    model = build_model("RSQRT", [T((1, 4), "int8", 0.1, 0)], [T((1, 4), "int8", 0.1, 0)])
    host = build_host_model(_write(tmp_path, model), tmp_path / "h")
    with pytest.raises(Exception, match="status"):
        host.run([np.array([[[1, 2, -3, 4]]], dtype=np.int8)])


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("lhs,rhs,adj_x,adj_y,out", [
    ((1, 3, 5), (1, 5, 4), False, False, (1, 3, 4)),
    ((1, 5, 3), (1, 5, 4), True, False, (1, 3, 4)),
    ((1, 3, 5), (1, 4, 5), False, True, (1, 3, 4)),
    ((1, 5, 3), (1, 4, 5), True, True, (1, 3, 4)),
    ((1, 2, 3, 7), (1, 1, 7, 5), False, False, (1, 2, 3, 5)),
    ((1, 1, 3, 7), (1, 2, 5, 7), False, True, (1, 2, 3, 5)),
    ((1, 2, 1, 3, 5), (1, 1, 3, 5, 2), False, False, (1, 2, 3, 3, 2)),
])
def test_batch_matmul_bit_exact(lhs: tuple, rhs: tuple, adj_x: bool, adj_y: bool, out: tuple,
                                dtype: str, tmp_path: Path) -> None:
    zl, zr, zo = (5, -3, -10) if dtype == "int8" else (0, 0, 0)
    scale = 1.0 if dtype == "int8" else 1 / 128
    o, kind = opts("BatchMatMulOptions", adjX=adj_x, adjY=adj_y)
    model = build_model("BATCH_MATMUL", [T(lhs, dtype, 0.05 * scale, zl),
                                         T(rhs, dtype, 0.03 * scale, zr)],
                        [T(out, dtype, 0.4 * scale, zo)], o, kind)
    _exact(model, tmp_path)


def test_batch_matmul_constant_rhs(tmp_path: Path) -> None:
    w = np.random.default_rng(3).integers(-127, 128, size=(1, 6, 5)).astype(np.int8)
    model = build_model("BATCH_MATMUL", [T((1, 4, 6), "int8", 0.05, 1),
                                         T((1, 6, 5), "int8", 0.02, 0, data=w)],
                        [T((1, 4, 5), "int8", 0.3, -4)])
    _exact(model, tmp_path)


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("in_scale", [2.0 ** -12, 2.0 ** -11, 2.0 ** -13, 1e-3, 3.7e-4, 8e-5])
def test_int16_logistic_tanh_bit_exact_on_every_input(op: str, in_scale: float,
                                                      tmp_path: Path) -> None:
    """All 65536 int16 inputs; power-of-two input scales take TFLM's shift-only path."""
    model = build_model(op, [T((1, 4096), "int16", in_scale, 0)],
                        [T((1, 4096), "int16", 2.0 ** -15, 0)])
    x = np.arange(-32768, 32768, dtype=np.int16).reshape(16, 4096)
    counts = assert_bit_exact(_write(tmp_path, model), tmp_path, inputs=[x])
    assert counts == {"tflm": 0, "litert": 0}


def test_sigmoid_table_samples_the_sigmoid() -> None:
    from edgeq.codegen.ops_elementwise import sigmoid_table_uint16

    table = sigmoid_table_uint16().astype(np.float64)
    exact = 65536.0 / (1.0 + np.exp(-np.arange(256) / 24))
    assert table[0] == 32768 and np.all(np.diff(table) >= 0)
    assert np.max(np.abs(table - exact)) < 2.0


# ---------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize("op,inputs,outputs,match", [
    ("GATHER", [T((1, 6), "int16", 0.1, 0), _ints([0, 2])], [T((2,), "int16", 0.1, 0)],
     "type int16"),
    ("RSQRT", [T((1, 6), "int16", 0.1, 3)], [T((1, 6), "int16", 0.1, 0)], "zero points"),
    ("BATCH_MATMUL", [T((1, 3, 4), "int8", 0.1, 0), T((1, 5, 2), "int8", 0.1, 0)],
     [T((1, 3, 2), "int8", 0.1, 0)], "depths differ"),
    ("TANH", [T((1, 6), "int16", 1e-3, 0)], [T((1, 6), "int16", 1e-3, 0)], "2\\^-15"),
    ("LOGISTIC", [T((1, 6), "int16", 1e-3, 4)], [T((1, 6), "int16", 2**-15, 0)], "zero points"),
])
def test_unsupported_variants_are_refused_in_one_line(op: str, inputs: list, outputs: list,
                                                      match: str, tmp_path: Path) -> None:
    path = _write(tmp_path, build_model(op, inputs, outputs))
    with pytest.raises(CodegenError, match=match) as err:
        generate_edgeq_rt(path)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# tf-keras models converted by the TFLite converter


def _keras_model(kind: str) -> Any:
    from edgeq.tfenv import import_tf

    tf = import_tf()
    keras = keras_layers()
    L = keras.layers

    def build() -> Any:
        if kind == "upsample":
            x = keras.Input((5, 7, 3))
            y = L.UpSampling2D((2, 3))(L.Conv2D(4, 3, padding="same")(x))
            y = tf.image.resize(y, (9, 13), method="nearest")
            z = tf.compat.v1.image.resize_bilinear(x, (4, 11), align_corners=True)
            return keras.Model(x, [y, L.UpSampling2D(2, interpolation="bilinear")(z)])
        if kind == "split":
            x = keras.Input((6, 5))
            a, b, c = tf.split(L.Dense(5)(x), 3, axis=1)
            d, e = tf.split(x, [2, 3], axis=2)
            return keras.Model(x, [L.Add()([a, c]), b, L.Dense(2)(d) + e[..., :2]])
        if kind == "stack":
            x = keras.Input((3, 4))
            parts = tf.unstack(x, axis=1)
            y = tf.stack([parts[2], parts[0] * 2.0, parts[1]], axis=1)
            return keras.Model(x, L.Dense(3)(y))
        if kind == "gather":
            x = keras.Input((7, 4))
            return keras.Model(x, tf.gather(L.Dense(4)(x), [6, 0, 3, 3, 1], axis=1))
        if kind == "attention":
            x = keras.Input((5, 8))
            q, k, v = L.Dense(6)(x), L.Dense(6)(x), L.Dense(3)(x)
            scores = tf.matmul(q, k, transpose_b=True)
            return keras.Model(x, tf.matmul(tf.nn.softmax(scores), v))
        if kind == "layernorm":
            x = keras.Input((4, 6))
            h = L.Dense(6)(x)
            mean = tf.reduce_mean(h, axis=-1, keepdims=True)
            var = tf.reduce_mean(tf.math.squared_difference(h, mean), axis=-1, keepdims=True)
            return keras.Model(x, (h - mean) * tf.math.rsqrt(var + 1e-3))
        raise ValueError(kind)

    return build


KERAS_OPS = {
    "upsample": {"RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR"}, "split": {"SPLIT", "SPLIT_V"},
    "stack": {"UNPACK", "PACK"}, "gather": {"GATHER"}, "attention": {"BATCH_MATMUL"},
    "layernorm": {"SQUARED_DIFFERENCE", "RSQRT"},
}


@pytest.mark.parametrize("kind", sorted(KERAS_OPS))
def test_keras_models_bit_exact(kind: str, tmp_path: Path) -> None:
    data = convert_keras(_keras_model(kind))
    ops = {op.opcode for op in read_tflite_bytes(data).operators}
    assert KERAS_OPS[kind] <= ops, ops
    _exact(data, tmp_path, n=16)


@pytest.mark.parametrize("kind", ["split", "stack", "attention", "layernorm"])
def test_keras_models_int16x8_bit_exact(kind: str, tmp_path: Path) -> None:
    data = convert_keras(_keras_model(kind), mode="int16x8")
    ops = {op.opcode for op in read_tflite_bytes(data).operators}
    assert KERAS_OPS[kind] <= ops, ops
    _exact(data, tmp_path, n=12, litert=kind != "layernorm")  # LiteRT 2.3: no int16 SQ. DIFF.
