"""Deep-Compression-style weight compression: prune, cluster, ternary/binary, then int8 PTQ.

Why each step: magnitude pruning (TF-MOT, polynomial sparsity schedule) makes most weights zero;
weight clustering (TF-MOT, per channel where the layer allows) leaves each channel with at most
``clusters`` distinct values, so after per-channel int8 quantization a layer can be stored as
k-bit indices into a small per-channel table (edgeq-rt's LUT-coded kernels); ternary/binary
weights (fine-tuned with a straight-through estimator, :mod:`edgeq.quantize.ste`) are the 2-bit /
1-bit extreme. Everything is fine-tuned on the data, quantized to ordinary int8 (the .tflite
stays runnable by TFLM), and measured.

Sizes reported per weight layer: int8 bytes, float32 bytes, LUT-coded bytes (packed k-bit
indices + per-channel int8 table) and the Huffman-coded size of the int8 weights -- the
description-length bound (tables excluded) that entropy coding could reach.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.errors import QuantizeError

LUT_BITS = (1, 2, 4)
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


# --- size accounting ----------------------------------------------------------------------------


def huffman_code_lengths(values: np.ndarray) -> dict[int, int]:
    """Optimal prefix-code length per symbol (one symbol alone gets length 1)."""
    counts = Counter(np.asarray(values).ravel().tolist())
    if not counts:
        return {}
    if len(counts) == 1:
        return {next(iter(counts)): 1}
    heap: list[tuple[int, int, list[int]]] = [
        (c, i, [sym]) for i, (sym, c) in enumerate(sorted(counts.items()))
    ]
    heapq.heapify(heap)
    lengths = dict.fromkeys(counts, 0)
    tie = len(heap)
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        for sym in s1 + s2:
            lengths[sym] += 1
        heapq.heappush(heap, (c1 + c2, tie, s1 + s2))
        tie += 1
    return lengths


def huffman_bits(values: np.ndarray) -> int:
    """Bits of ``values`` Huffman-coded with their own frequencies (code table excluded)."""
    lengths = huffman_code_lengths(values)
    counts = Counter(np.asarray(values).ravel().tolist())
    return sum(counts[s] * n for s, n in lengths.items())


def entropy_bits(values: np.ndarray) -> float:
    """Zero-order entropy times count: the lower bound Huffman coding approaches."""
    counts = np.array(list(Counter(np.asarray(values).ravel().tolist()).values()), dtype=float)
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


def channel_axis(opcode: str) -> int:
    """Output-channel axis of a TFLite weight tensor."""
    return 3 if opcode == "DEPTHWISE_CONV_2D" else 0


def distinct_per_channel(weights: np.ndarray, axis: int) -> np.ndarray:
    moved = np.moveaxis(np.asarray(weights), axis, 0).reshape(weights.shape[axis], -1)
    return np.array([len(np.unique(row)) for row in moved])


def lut_index_bits(max_distinct: int) -> int | None:
    """Smallest supported index width k (1, 2, 4) with 2^k >= ``max_distinct``; None if > 16."""
    for k in LUT_BITS:
        if max_distinct <= (1 << k):
            return k
    return None


def pack_indices(indices: np.ndarray, bits: int) -> np.ndarray:
    """Pack flat indices (< 2^bits), lowest bits first, into uint8 bytes."""
    if bits not in LUT_BITS:
        raise QuantizeError(f"LUT index width {bits} is not one of {LUT_BITS}")
    idx = np.asarray(indices, dtype=np.uint8).reshape(-1)
    per = 8 // bits
    padded = np.zeros(-(-idx.size // per) * per, dtype=np.uint8)
    padded[: idx.size] = idx
    lanes = padded.reshape(-1, per).astype(np.uint16)
    shifts = (np.arange(per, dtype=np.uint16) * bits)[np.newaxis, :]
    return (lanes << shifts).sum(axis=1).astype(np.uint8)


def unpack_indices(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_indices` (for tests and checks)."""
    per = 8 // bits
    p = np.asarray(packed, dtype=np.uint8).astype(np.uint16)[:, np.newaxis]
    shifts = (np.arange(per, dtype=np.uint16) * bits)[np.newaxis, :]
    return ((p >> shifts) & ((1 << bits) - 1)).reshape(-1)[:count].astype(np.uint8)


def _bits_for(count: int) -> int | None:
    return next((b for b in LUT_BITS if count <= (1 << b)), None)


def _choose_tables(
    values: list[np.ndarray], stored: int
) -> tuple[int, bool, list[np.ndarray], np.ndarray] | None:
    """The cheaper of one shared table (the union of all channels' values) and one table per
    channel, for ``stored`` indices: (bits, per_channel, lookup per channel, flat table)."""
    channels = len(values)
    union = np.unique(np.concatenate(values)) if channels else np.zeros(0, np.int8)
    options = []
    bits_s = _bits_for(max(len(union), 1))
    if bits_s is not None:
        options.append((math.ceil(stored * bits_s / 8) + (1 << bits_s), bits_s, False))
    bits_p = _bits_for(max([len(v) for v in values] + [1]))
    if bits_p is not None:
        options.append((math.ceil(stored * bits_p / 8) + channels * (1 << bits_p), bits_p, True))
    if not options:
        return None
    _, bits, per_channel = min(options)
    size = 1 << bits
    if per_channel:
        table = np.zeros((channels, size), dtype=np.int8)
        for c, v in enumerate(values):
            table[c, : len(v)] = v
        return bits, True, values, table.reshape(-1)
    table = np.zeros(size, dtype=np.int8)
    table[: len(union)] = union
    return bits, False, [union] * channels, table


def lut_encode(weights: np.ndarray, axis: int) -> tuple[int, np.ndarray, np.ndarray, bool] | None:
    """(bits, packed indices, table, per_channel) for int8 ``weights``.

    None when no table fits (more than 16 values) or the coding would not be smaller than int8.
    The table is one per layer (the union of the channels' values) or one 2^bits-entry table
    per output channel, whichever is smaller.
    """
    w = np.asarray(weights, dtype=np.int8)
    channels = w.shape[axis]
    rows = np.moveaxis(w, axis, 0).reshape(channels, -1)
    choice = _choose_tables([np.unique(r) for r in rows], w.size)
    if choice is None:
        return None
    bits, per_channel, lookup, table = choice
    idx_rows = np.stack([np.searchsorted(v, r) for v, r in zip(lookup, rows, strict=True)])
    moved_shape = (channels, *np.delete(np.array(w.shape), axis))
    idx = np.moveaxis(idx_rows.reshape(moved_shape), 0, axis)
    packed = pack_indices(idx.reshape(-1), bits)
    if packed.size + table.size >= w.size:
        return None
    return bits, packed, table, per_channel


@dataclass
class SparseLut:
    """Sparse LUT coding of one int8 filter (edgeq-rt ``eq_*_s8_sparse_lut`` kernels)."""

    bits: int
    per_channel: bool
    channel_size: int
    mask: np.ndarray  # uint8, ceil(K/8) bytes per channel
    offsets: np.ndarray  # uint32, nonzeros before each channel
    indices: np.ndarray  # uint8, packed k-bit indices of the nonzeros
    table: np.ndarray  # int8

    @property
    def nbytes(self) -> int:
        return int(self.mask.nbytes + self.offsets.nbytes + self.indices.nbytes
                   + self.table.nbytes)


def sparse_lut_encode(weights: np.ndarray, axis: int) -> SparseLut | None:
    """Bitmap of nonzeros + k-bit indices of the nonzero values, per output channel.

    A channel's weights are taken in filter order without the channel axis. None when no table
    fits (more than 16 distinct nonzero values).
    """
    w = np.asarray(weights, dtype=np.int8)
    channels = w.shape[axis]
    rows = np.moveaxis(w, axis, 0).reshape(channels, -1)
    nonzero = [r[r != 0] for r in rows]
    stored = int(sum(len(n) for n in nonzero))
    choice = _choose_tables([np.unique(n) for n in nonzero], stored)
    if choice is None:
        return None
    bits, per_channel, lookup, table = choice
    mask = np.concatenate([pack_indices((r != 0).astype(np.uint8), 1) for r in rows])
    counts = np.array([len(n) for n in nonzero], dtype=np.uint32)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.uint32)
    idx = np.concatenate([np.searchsorted(v, n).astype(np.int64)
                          for v, n in zip(lookup, nonzero, strict=True)])
    packed = pack_indices(idx, bits) if idx.size else np.zeros(1, dtype=np.uint8)
    return SparseLut(bits, per_channel, rows.shape[1], mask.astype(np.uint8), offsets, packed,
                     table)


@dataclass
class LayerWeights:
    op_index: int
    opcode: str
    name: str
    count: int
    channels: int
    zeros: float  # fraction of int8 weights equal to 0
    max_distinct: int  # max distinct int8 values in one output channel
    lut_bits: int | None  # None: stays int8 (> 16 values, or LUT coding would not be smaller)
    # lut_bytes: the smaller of dense and sparse (bitmap + nonzero indices) LUT coding
    bias_bytes: int
    int8_bytes: int
    float32_bytes: int
    lut_bytes: int | None
    huffman_bytes: float
    entropy_bytes: float


@dataclass
class WeightReport:
    layers: list[LayerWeights] = field(default_factory=list)

    def total(self, key: str) -> float:
        """Sum of a byte field over layers, biases included (LUT falls back to int8)."""
        out = 0.0
        for layer in self.layers:
            v = getattr(layer, key)
            if v is None:
                v = layer.int8_bytes
            bias = layer.bias_bytes
            out += v + bias
        return out

    def summary(self) -> dict[str, float]:
        f32 = self.total("float32_bytes")
        return {
            "float32_bytes": f32,
            "int8_bytes": self.total("int8_bytes"),
            "lut_bytes": self.total("lut_bytes"),
            "huffman_bytes": self.total("huffman_bytes"),
            "entropy_bytes": self.total("entropy_bytes"),
            "ratio_int8": f32 / self.total("int8_bytes"),
            "ratio_lut": f32 / self.total("lut_bytes"),
            "ratio_huffman": f32 / self.total("huffman_bytes"),
        }


def weight_report(model: bytes) -> WeightReport:
    """Size accounting of every int8 weight layer of a .tflite (biases counted as int32)."""
    from edgeq.tflite import read_tflite_bytes

    m = read_tflite_bytes(model)
    rep = WeightReport()
    for op in m.operators:
        if op.opcode not in WEIGHT_OPS:
            continue
        w = m.tensors[op.inputs[1]]
        if w.dtype != "int8" or w.data is None:
            continue
        b = m.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        bias_count = int(np.prod(b.shape)) if b is not None else 0
        axis = channel_axis(op.opcode)
        distinct = distinct_per_channel(w.data, axis)
        enc = lut_encode(w.data, axis)  # exactly what edgeq-rt's LUT lowering stores
        sparse = sparse_lut_encode(w.data, axis)
        coded = [int(enc[1].size + enc[2].size)] if enc is not None else []
        if sparse is not None and sparse.nbytes < w.data.size:
            coded.append(sparse.nbytes)
        n = int(w.data.size)
        ch = int(w.data.shape[axis])
        rep.layers.append(
            LayerWeights(
                op_index=op.index,
                opcode=op.opcode,
                name=m.tensors[op.outputs[0]].name,
                count=n,
                channels=ch,
                zeros=float(np.mean(w.data == 0)),
                max_distinct=int(distinct.max()),
                lut_bits=(enc[0] if enc is not None else sparse.bits if coded and sparse
                          else None),
                bias_bytes=4 * bias_count,
                int8_bytes=n,
                float32_bytes=4 * n,
                lut_bytes=min(coded) if coded else None,
                huffman_bytes=huffman_bits(w.data) / 8.0,
                entropy_bytes=entropy_bits(w.data) / 8.0,
            )
        )
    if not rep.layers:
        raise QuantizeError("no int8 CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED weights found; "
                            "give a full-integer int8 .tflite")
    return rep


# --- the compression passes (tf-keras + TF-MOT) -------------------------------------------------


def _prunable(layer: Any, min_weights: int) -> bool:
    kind = type(layer).__name__
    if kind not in ("Conv2D", "Dense", "DepthwiseConv2D"):
        return False
    return int(np.prod(layer.get_weights()[0].shape)) >= min_weights


def not_pruned(model: Any, min_weights: int = 256) -> dict[str, str]:
    """Weight layers magnitude pruning leaves dense, and why (reported, never silent)."""
    weighted = [lyr for lyr in model.layers
                if type(lyr).__name__ in ("Conv2D", "Dense", "DepthwiseConv2D")]
    out: dict[str, str] = {}
    for k, lyr in enumerate(weighted):
        if type(lyr).__name__ == "DepthwiseConv2D":
            out[lyr.name] = ("depthwise: TF-MOT 0.8 registers no prunable weights for "
                             "DepthwiseConv2D, and a 3x3 filter at 75 % sparsity keeps 2 taps")
        elif k == 0:
            out[lyr.name] = "first layer: few weights that carry most of the accuracy"
        elif not _prunable(lyr, min_weights):
            out[lyr.name] = f"fewer than {min_weights} weights"
    return out


def _compile(model: Any, keras: Any, lr: float) -> None:
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def prune(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    sparsity: float = 0.75,
    epochs: int = 4,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    min_weights: int = 256,
    constant: bool = False,
) -> Any:
    """Magnitude pruning to ``sparsity`` with a polynomial schedule, fine-tuned; wrappers stripped.

    Layers in :func:`not_pruned` stay dense (the first layer, depthwise layers, layers with
    fewer than ``min_weights`` kernel elements). ``constant`` holds the final sparsity from the
    first step (continuing to fine-tune an already pruned model without regrowing weights).
    """
    if not 0.0 <= sparsity < 1.0:
        raise QuantizeError(f"pruning sparsity {sparsity} must be in [0, 1), e.g. 0.75")
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    import tensorflow_model_optimization as tfmot

    if sparsity == 0.0:
        return model
    steps = max(1, math.ceil(len(x) / batch_size)) * max(1, epochs)
    if constant:
        schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    else:
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0,
            end_step=max(1, int(steps * 0.7)), frequency=max(1, steps // 20),
        )
    dense = not_pruned(model, min_weights)

    def wrap(layer: Any) -> Any:
        if _prunable(layer, min_weights) and layer.name not in dense:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    wrapped = keras.models.clone_model(model, clone_function=wrap)
    wrapped.set_weights(_weights_for(wrapped, model))
    _compile(wrapped, keras, learning_rate)
    wrapped.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(wrapped)


def cluster(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    clusters: int = 16,
    epochs: int = 3,
    batch_size: int = 64,
    learning_rate: float = 3e-4,
    preserve_sparsity: bool = True,
    per_channel: bool = True,
    min_weights: int = 64,
) -> Any:
    """Weight clustering (linear-seeded centroids, per channel for Conv2D), fine-tuned, stripped."""
    if clusters < 2 or clusters > 256:
        raise QuantizeError(f"cluster count {clusters} must be between 2 and 256, e.g. 16")
    from edgeq.tfenv import import_tf_keras

    keras = import_tf_keras()
    import tensorflow_model_optimization as tfmot

    ck = tfmot.clustering.keras
    # k-means++ seeding fails on channels with fewer weights of one sign than clusters (common
    # after pruning); linear seeding over [min, max] always works and fine-tuning moves it
    kwargs = {"number_of_clusters": clusters,
              "cluster_centroids_init": ck.CentroidInitialization.LINEAR,
              "preserve_sparsity": preserve_sparsity}

    def wrap(layer: Any) -> Any:
        if not _prunable(layer, min_weights):
            return layer
        # TF-MOT 0.8's per-channel seeding breaks on pruned channels (mismatched centroid
        # counts), so sparsity-preserving clustering is per tensor; per-channel int8 scales
        # still leave every channel with <= ``clusters`` distinct int8 values
        use_pc = per_channel and not preserve_sparsity and type(layer).__name__ == "Conv2D"
        extra = {"cluster_per_channel": True} if use_pc else {}
        return ck.cluster_weights(layer, **kwargs, **extra)

    wrapped = keras.models.clone_model(model, clone_function=wrap)
    wrapped.set_weights(_weights_for(wrapped, model))
    _compile(wrapped, keras, learning_rate)
    wrapped.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    return ck.strip_clustering(wrapped)


def _weights_for(wrapped: Any, original: Any) -> list[np.ndarray]:
    """Weights of ``original`` laid out for ``wrapped`` (wrappers add their own variables)."""
    by_name = {layer.name: layer for layer in original.layers}
    for layer in wrapped.layers:
        inner = getattr(layer, "layer", None)
        src = by_name.get(inner.name if inner is not None else layer.name)
        if src is None:
            continue
        target = inner if inner is not None else layer
        target.set_weights(src.get_weights())
    return wrapped.get_weights()


def ternarize(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    grid: str = "ternary",
    epochs: int = 5,
    learning_rate: float = 1e-3,
    min_weights: int = 0,
    keep_ends: bool = True,
) -> Any:
    """Ternary ({-a,0,+a}) or binary ({-a,+a}) weights per output channel via STE fine-tuning.

    ``keep_ends`` leaves the first and last weight layers int8, as TWN/XNOR-Net do: they hold
    few weights and carry most of the accuracy.
    """
    from edgeq.quantize.mixed import clone_keras
    from edgeq.quantize.ste import finetune_on_grid

    if grid not in ("ternary", "binary"):
        raise QuantizeError(f"grid '{grid}' is not ternary or binary")
    twin = clone_keras(model)
    names = [layer.name for layer in twin.layers if _prunable(layer, min_weights)]
    if keep_ends and len(names) > 2:
        names = names[1:-1]
    grids = dict.fromkeys(names, grid)
    if not grids:
        raise QuantizeError("the model has no Conv2D/DepthwiseConv2D/Dense layer to ternarize")
    return finetune_on_grid(twin, grids, x, y, epochs=epochs, learning_rate=learning_rate)


# --- the whole pipeline -------------------------------------------------------------------------


@dataclass
class CompressResult:
    model: bytes  # int8 .tflite
    float_accuracy: float  # the compressed float model
    int8_accuracy: float  # measured on LiteRT reference kernels
    weights: WeightReport
    steps: list[str]
    keras_model: Any = None
    epochs_used: int = 0  # fine-tuning epochs in total, recovery included
    not_pruned: dict[str, str] = field(default_factory=dict)
    validation_drop_pt: float | None = None  # float - int8 on the held-aside training tenth

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "steps": self.steps,
            "epochs_used": self.epochs_used,
            "validation_drop_pt": self.validation_drop_pt,
            "not_pruned": self.not_pruned,
            "float_accuracy": self.float_accuracy,
            "int8_accuracy": self.int8_accuracy,
            "tflite_bytes": len(self.model),
        }
        out.update(self.weights.summary())
        out["layers"] = [
            {"name": layer.name.split(";")[0], "zeros": round(layer.zeros, 3),
             "max_distinct": layer.max_distinct, "lut_bits": layer.lut_bits}
            for layer in self.weights.layers
        ]
        return out


def keras_accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    probs = model.predict(x, verbose=0, batch_size=256)
    return 100.0 * float(np.mean(np.argmax(probs, axis=1) == y))


def int8_model(keras_model: Any, calibration: np.ndarray, *, per_channel: bool = True) -> bytes:
    """Full-integer int8 with int8 I/O through the project's PTQ converter."""
    from edgeq.data.prepare import RepresentativeDataset
    from edgeq.quantize.ptq import convert_ptq

    return convert_ptq(keras_model, RepresentativeDataset(calibration), mode="int8",
                       io_dtype="int8", per_channel=per_channel)


def compress(
    keras_model: Any,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    sparsity: float = 0.75,
    clusters: int | None = 16,
    grid: str | None = None,
    epochs: int = 4,
    calibration_samples: int = 200,
    per_channel: bool | None = None,
    max_drop_pt: float | None = 1.0,
    max_epochs: int = 16,
) -> CompressResult:
    """Prune -> cluster (or ternary/binary) -> int8 PTQ; accuracy measured on the int8 model.

    ``train``/``test`` are (x, y) already shaped and normalized for the model. ``per_channel``
    int8 scales default to on, except after clustering: clusters are shared by a whole tensor,
    and one scale per tensor keeps the int8 values shared too, so edgeq-rt stores one LUT table
    per layer instead of one per output channel.
    """
    from edgeq.quantize.mixed import clone_keras
    from edgeq.quantize.sensitivity import model_probabilities

    x, y = train
    xt, yt = test
    if len(x) == 0 or len(xt) == 0:
        raise QuantizeError("compression needs training and test samples; give a dataset")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    # the stop rule looks at a held-aside tenth of the training split, never at the test split
    n_val = max(1, len(x) // 10) if max_drop_pt is not None else 0
    xv, yv = x[order[:n_val]], y[order[:n_val]]
    x, y = x[order[n_val:]], y[order[n_val:]]
    calib = x[:calibration_samples]
    if per_channel is None:
        per_channel = grid is not None or not clusters
    model = clone_keras(keras_model)
    steps: list[str] = []
    skipped = not_pruned(model) if sparsity > 0 else {}
    if sparsity > 0:
        model = prune(model, x, y, sparsity=sparsity, epochs=epochs)
        steps.append(f"prune {sparsity:.2f}")
    used = epochs if sparsity > 0 else 0

    def last_stage(m: Any, n: int) -> Any:
        if grid is not None:
            return ternarize(m, x, y, grid=grid, epochs=n)
        if clusters:
            return cluster(m, x, y, clusters=clusters, epochs=n, preserve_sparsity=sparsity > 0)
        return prune(m, x, y, sparsity=sparsity, epochs=n, constant=True)

    if grid is not None or clusters:
        n0 = epochs if grid is not None else max(1, epochs - 1)
        model = last_stage(model, n0)
        used += n0
        steps.append(grid or f"cluster {clusters}")
    tfl = int8_model(model, calib, per_channel=per_channel)
    planned = used
    val_drop = None
    if max_drop_pt is not None and n_val:
        ref = keras_accuracy(keras_model, xv, yv)

        def val_acc(t: bytes) -> float:
            return 100.0 * float(np.mean(np.argmax(model_probabilities(t, xv), axis=1) == yv))

        extra = 2
        val_drop = ref - val_acc(tfl)
        while val_drop > max_drop_pt and used + extra <= max_epochs:
            model = last_stage(model, extra)
            used += extra
            tfl = int8_model(model, calib, per_channel=per_channel)
            val_drop = ref - val_acc(tfl)
        if used > planned:
            steps.append(f"recovery fine-tune to {used} epochs")
    steps.append(f"int8 PTQ ({'per-channel' if per_channel else 'per-tensor'})")
    probs = model_probabilities(tfl, xt)
    acc = 100.0 * float(np.mean(np.argmax(probs, axis=1) == yt))
    return CompressResult(
        model=tfl,
        float_accuracy=keras_accuracy(model, xt, yt),
        int8_accuracy=acc,
        weights=weight_report(tfl),
        steps=steps,
        keras_model=model,
        epochs_used=used,
        not_pruned=skipped,
        validation_drop_pt=val_drop,
    )


def compare_rows(results: Sequence[tuple[str, CompressResult]]) -> list[dict[str, Any]]:
    """Flat rows for a table: name, accuracies and byte totals."""
    rows = []
    for name, r in results:
        s = r.weights.summary()
        rows.append({"variant": name, "int8_accuracy": r.int8_accuracy,
                     "float_accuracy": r.float_accuracy, **s})
    return rows


def compress_to_file(
    model_path: str,
    output: str,
    *,
    data: str | None = None,
    sparsity: float = 0.75,
    clusters: int | None = 16,
    grid: str | None = None,
    epochs: int = 4,
    max_drop_pt: float | None = 1.0,
    max_epochs: int = 16,
) -> dict[str, Any]:
    """The ``edgeq compress`` command: compress, quantize, measure, write .tflite + JSON."""
    from pathlib import Path

    from edgeq.fileio import atomic_write_bytes, atomic_write_json
    from edgeq.quantize.trainset import load_setup

    if not 0.0 <= sparsity < 1.0:
        raise QuantizeError(f"--prune {sparsity} must be in [0, 1), e.g. 0.75")
    setup = load_setup(model_path, data)
    result = compress(setup.model, (setup.x_train, setup.y_train),
                      (setup.x_test, setup.y_test), sparsity=sparsity, clusters=clusters,
                      grid=grid, epochs=epochs, max_drop_pt=max_drop_pt, max_epochs=max_epochs)
    out = Path(output)
    summary = result.summary()
    summary["output"] = str(out)
    summary["original_float_accuracy"] = keras_accuracy(setup.model, setup.x_test, setup.y_test)
    atomic_write_bytes(out, result.model)
    atomic_write_json(out.with_suffix(".json"), summary)
    return summary


def render_compress(s: dict[str, Any]) -> str:
    lines = [
        f"wrote {s['output']} ({s['tflite_bytes']:,} bytes): {' -> '.join(s['steps'])}",
        f"accuracy int8 {s['int8_accuracy']:.2f} % (compressed float {s['float_accuracy']:.2f} %, "
        f"original float {s['original_float_accuracy']:.2f} %)",
        f"weights+biases: float32 {s['float32_bytes']:,.0f} B, int8 {s['int8_bytes']:,.0f} B "
        f"({s['ratio_int8']:.1f}x), LUT-coded {s['lut_bytes']:,.0f} B ({s['ratio_lut']:.1f}x), "
        f"Huffman bound {s['huffman_bytes']:,.0f} B ({s['ratio_huffman']:.1f}x)",
    ]
    lines.append(f"fine-tuning: {s['epochs_used']} epochs in total")
    for name, why in s.get("not_pruned", {}).items():
        lines.append(f"  not pruned: {name} ({why})")
    for layer in s["layers"]:
        lines.append(f"  {layer['name']}: zeros {layer['zeros']:.0%}, <= {layer['max_distinct']} "
                     f"values/channel, LUT bits {layer['lut_bits'] or '-'}")
    return "\n".join(lines)
